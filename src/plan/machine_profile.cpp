// Measuring the machine profile. Every number is what the engine would see:
// bandwidth with the pool's threads and wide loads, kernels through the same
// kernels::matmul the forward pass calls (dispatch included), decode over
// weights too large for the caches, prefill over weights that stay in them.
// Each measurement keeps the fastest of a few short runs, so a moment of
// interference from another process costs accuracy less than averaging would.
#include "plan/machine_profile.h"

#include <fcntl.h>
#include <immintrin.h>
#include <pwd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/error.h"
#include "base/splitmix64.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "kernels/matrix_view.h"
#include "kernels/packed_weights.h"
#include "kernels/weight_format.h"

namespace memwall::plan {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxAgeSeconds = int64_t(30) * 24 * 3600;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t unix_now() {
  return int64_t(std::time(nullptr));
}

void report(const ProfileProgress& progress, const std::string& line) {
  if (progress) progress(line);
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "unknown" : line.substr(start);
  }
  return "unknown";
}

// CPU time so far, in clock ticks: busy time of every CPU (steal included:
// time the hypervisor gave to other guests) and this process's own.
struct CpuTicks {
  uint64_t all_busy = 0;
  uint64_t self = 0;
  bool valid = false;
};

CpuTicks cpu_ticks() {
  CpuTicks t;
  std::ifstream stat("/proc/stat");
  std::string cpu;
  uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
  if (!(stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      cpu != "cpu") {
    return t;
  }
  t.all_busy = user + nice + system + irq + softirq + steal;
  std::ifstream self("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces): state is field 3,
  // utime and stime are fields 14 and 15.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return t;
  std::istringstream rest(text.substr(paren + 1));
  std::string skip;
  for (int field = 3; field <= 13; ++field) rest >> skip;
  uint64_t utime, stime;
  if (!(rest >> utime >> stime)) return t;
  t.self = utime + stime;
  t.valid = true;
  return t;
}

// The share of all CPUs' time that other processes (or other guests) took
// between `before` and now, over `seconds`; -1 when it cannot be told.
double others_share(const CpuTicks& before, double seconds) {
  const CpuTicks after = cpu_ticks();
  const long hz = ::sysconf(_SC_CLK_TCK);
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (!before.valid || !after.valid || hz <= 0 || cpus <= 0 || seconds <= 0) return -1;
  const double others = double(after.all_busy - before.all_busy) - double(after.self - before.self);
  return std::max(0.0, others / (seconds * double(hz) * double(cpus)));
}

// Filler data: only its spread matters.
struct Rng : SplitMix64 {
  float uniform() { return float(next() >> 40) / float(1 << 24) * 2.0f - 1.0f; }  // [-1, 1)
};

void fill_random(uint8_t* p, size_t bytes, uint64_t seed) {
  Rng rng{seed};
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    const uint64_t v = rng.next();
    std::memcpy(p + i, &v, 8);
  }
  for (; i < bytes; ++i) p[i] = uint8_t(rng.next());
}

// Seconds per call: the fastest of a few timed runs of `seconds` in total,
// after one untimed call that pays first-touch costs. call(i) gets a running
// index so decode can rotate through its copies. A call slower than the whole
// budget is timed once more and not repeated: a slow path needs no precision.
double seconds_per_call(double seconds, const std::function<void(int64_t)>& call) {
  constexpr int kRuns = 3;
  int64_t i = 0;
  const Clock::time_point w0 = Clock::now();
  call(i++);
  if (seconds_since(w0) >= seconds) {
    const Clock::time_point t0 = Clock::now();
    call(i++);
    return seconds_since(t0);
  }
  double best = std::numeric_limits<double>::infinity();
  for (int run = 0; run < kRuns; ++run) {
    const Clock::time_point t0 = Clock::now();
    int64_t n = 0;
    double elapsed = 0;
    do {
      call(i++);
      ++n;
      elapsed = seconds_since(t0);
    } while (elapsed < seconds / kRuns);
    best = std::min(best, elapsed / double(n));
  }
  return best;
}

// ---- DRAM read bandwidth ---------------------------------------------------

// Each thread reads its range as kStreams interleaved address streams (the
// hardware prefetchers track each one), 128 bytes per stream per iteration,
// into independent accumulators so the adds never wait on each other.
constexpr size_t kStreams = 4;
constexpr size_t kStep = 128;
constexpr size_t kReadUnit = size_t(1) << 20;  // work unit: a multiple of kStreams * kStep

__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint8_t* p, size_t bytes) {
  const size_t per = bytes / kStreams;
  __m512i acc[2 * kStreams];
  for (__m512i& a : acc) a = _mm512_setzero_si512();
  for (size_t i = 0; i < per; i += kStep) {
    for (size_t s = 0; s < kStreams; ++s) {
      const uint8_t* q = p + s * per + i;
      acc[2 * s] = _mm512_add_epi64(acc[2 * s], _mm512_load_si512(q));
      acc[2 * s + 1] = _mm512_add_epi64(acc[2 * s + 1], _mm512_load_si512(q + 64));
    }
  }
  for (size_t k = 1; k < 2 * kStreams; ++k) acc[0] = _mm512_add_epi64(acc[0], acc[k]);
  // A plain store, not _mm512_reduce_add_epi64: GCC 12 warns inside that one.
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, acc[0]);
  uint64_t sum = 0;
  for (uint64_t v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* p, size_t bytes) {
  const size_t per = bytes / kStreams;
  __m256i acc[4 * kStreams];
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  for (size_t i = 0; i < per; i += kStep) {
    for (size_t s = 0; s < kStreams; ++s) {
      const uint8_t* q = p + s * per + i;
      for (size_t k = 0; k < 4; ++k) {
        acc[4 * s + k] = _mm256_add_epi64(
            acc[4 * s + k], _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * k)));
      }
    }
  }
  for (size_t k = 1; k < 4 * kStreams; ++k) acc[0] = _mm256_add_epi64(acc[0], acc[k]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t sum_scalar(const uint8_t* p, size_t bytes) {
  const size_t per = bytes / kStreams;
  uint64_t acc[kStreams * 2] = {};
  for (size_t i = 0; i < per; i += kStep) {
    for (size_t s = 0; s < kStreams; ++s) {
      for (size_t k = 0; k < kStep; k += 16) {
        uint64_t a, b;
        std::memcpy(&a, p + s * per + i + k, 8);
        std::memcpy(&b, p + s * per + i + k + 8, 8);
        acc[2 * s] += a;
        acc[2 * s + 1] += b;
      }
    }
  }
  uint64_t sum = 0;
  for (uint64_t v : acc) sum += v;
  return sum;
}

using SumFn = uint64_t (*)(const uint8_t*, size_t);

// The widest loads the CPU has, whatever MEMWALL_ISA says: DRAM bandwidth is
// the hardware's limit, and the kernel rates already show what a target gets.
SumFn pick_sum() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return sum_avx512;
  if (__builtin_cpu_supports("avx2")) return sum_avx2;
  return sum_scalar;
}

// Seconds of one pass over data[0, units * kReadUnit) on every thread.
double read_pass_seconds(ThreadPool& pool, const uint8_t* data, int64_t units) {
  const SumFn sum = pick_sum();
  std::vector<uint64_t> sink(size_t(pool.size()) * 8, 0);  // a cache line per thread
  const Clock::time_point t0 = Clock::now();
  pool.parallel_for(units, [&](int64_t b, int64_t e, int t) {
    sink[size_t(t) * 8] += sum(data + size_t(b) * kReadUnit, size_t(e - b) * kReadUnit);
  });
  const double seconds = seconds_since(t0);
  // Consumes the sums so the loads cannot be optimized away.
  volatile uint64_t keep = 0;
  for (uint64_t s : sink) keep = keep + s;
  return seconds;
}

double measure_read_gbps(ThreadPool& pool, size_t bytes) {
  const int64_t units = std::max<int64_t>(1, int64_t(bytes / kReadUnit));
  bytes = size_t(units) * kReadUnit;
  AlignedBuffer buf(bytes);  // 2 MiB aligned (huge pages where THP allows)
  // Written so every page is backed by its own memory, not the shared zero page.
  std::memset(buf.data(), 1, bytes);
  double best = std::numeric_limits<double>::infinity();
  for (int pass = 0; pass < 3; ++pass) {
    best = std::min(best, read_pass_seconds(pool, buf.data(), units));
  }
  return double(bytes) / best / 1e9;
}

// Reading a file's pages in the page cache through a memory map, as mapped
// weights are read (4 KiB page-table entries over page-cache memory: more TLB
// misses, prefetchers stopping at page boundaries), against reading the same
// bytes from anonymous huge pages as resident weights are: the ratio of the
// two speeds (<= 1), passes interleaved so a burst of other load on the
// machine slows both alike, the best of five each. 0 if the file cannot be
// mapped.
double measure_mapped_read_ratio(ThreadPool& pool, int fd, size_t bytes) {
  const int64_t units = int64_t(bytes / kReadUnit);
  if (units < 1) return 0;
  bytes = size_t(units) * kReadUnit;
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return 0;
  const uint8_t* mapped = static_cast<const uint8_t*>(map);
  AlignedBuffer anon(bytes);
  std::memset(anon.data(), 1, bytes);
  read_pass_seconds(pool, mapped, units);  // maps every page (minor faults)
  double best_anon = std::numeric_limits<double>::infinity(), best_mapped = best_anon;
  for (int pass = 0; pass < 5; ++pass) {
    best_anon = std::min(best_anon, read_pass_seconds(pool, anon.data(), units));
    best_mapped = std::min(best_mapped, read_pass_seconds(pool, mapped, units));
  }
  ::munmap(map, bytes);
  return std::min(1.0, best_anon / best_mapped);
}

// ---- Disk and page-cache reads ---------------------------------------------

struct DiskResult {
  double disk_gbps = 0;
  double cached_gbps = 0;
  double mapped_ratio = 0;  // mapped page-cache reads / anonymous memory reads
  std::string note;
};

// Closes the probe file and deletes it however the measurement ends.
struct ProbeFile {
  std::string path;
  int fd = -1;
  ~ProbeFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

bool pread_all(int fd, uint8_t* p, size_t n, off_t offset) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, offset);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
    offset += r;
  }
  return true;
}

// Fraction of the file's pages in the page cache, or -1 if it cannot be told.
double cached_fraction(int fd, size_t bytes) {
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return -1;
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((bytes + page - 1) / page);
  double fraction = -1;
  if (::mincore(map, bytes, resident.data()) == 0) {
    size_t n = 0;
    for (unsigned char r : resident) n += r & 1;
    fraction = double(n) / double(resident.size());
  }
  ::munmap(map, bytes);
  return fraction;
}

DiskResult measure_disk(ThreadPool& pool, const std::string& dir, size_t bytes) {
  constexpr size_t kChunk = size_t(4) << 20;
  bytes = std::max(kChunk, bytes / kChunk * kChunk);
  DiskResult out;
  auto not_measured = [&](const std::string& what) {
    out = {};
    out.note = "disk reads not measured: " + what + ": " + std::strerror(errno);
    return out;
  };
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    out.note = "disk reads not measured: cannot create " + dir + ": " + ec.message();
    return out;
  }
  ProbeFile file;
  file.path = dir + "/disk-probe." + std::to_string(::getpid()) + ".tmp";
  file.fd = ::open(file.path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  if (file.fd < 0) {
    file.path.clear();  // not ours to delete
    return not_measured("cannot create a test file in " + dir);
  }
  AlignedBuffer chunk(kChunk);
  // Random bytes, so a compressing or deduplicating store cannot shortcut the I/O.
  fill_random(chunk.data(), kChunk, 0x5eed);
  for (size_t off = 0; off < bytes; off += kChunk) {
    std::memcpy(chunk.data(), &off, sizeof off);  // every chunk distinct
    if (!write_all(file.fd, chunk.data(), kChunk)) return not_measured("cannot write " + file.path);
  }
  // Only clean pages can be dropped: fsync first, then ask the kernel to evict.
  if (::fsync(file.fd) != 0) return not_measured("cannot fsync " + file.path);
  ::posix_fadvise(file.fd, 0, 0, POSIX_FADV_DONTNEED);
  const double cached = cached_fraction(file.fd, bytes);
  if (cached < 0) {
    out.note =
        "could not check that the test file left the page cache (mincore failed); "
        "disk_read_gbps may be the page cache's speed";
  } else if (cached > 0.10) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%.0f%% of the test file stayed in the page cache after fsync and "
                  "POSIX_FADV_DONTNEED (this filesystem ignores the advice); disk_read_gbps "
                  "may be the page cache's speed",
                  cached * 100);
    out.note = buf;
  }
  auto read_pass = [&](double& gbps) {
    const Clock::time_point t0 = Clock::now();
    for (size_t off = 0; off < bytes; off += kChunk) {
      if (!pread_all(file.fd, chunk.data(), kChunk, off_t(off))) return false;
    }
    gbps = double(bytes) / seconds_since(t0) / 1e9;
    return true;
  };
  double disk = 0, cached1 = 0, cached2 = 0;
  if (!read_pass(disk)) return not_measured("cannot read " + file.path);
  // Now in the page cache: a read costs a copy. The better of two passes.
  if (!read_pass(cached1) || !read_pass(cached2)) return not_measured("cannot read " + file.path);
  out.disk_gbps = disk;
  out.cached_gbps = std::max(cached1, cached2);
  // The file is in the page cache now: read it mapped, as mapped weights are.
  out.mapped_ratio = measure_mapped_read_ratio(pool, file.fd, bytes);
  return out;
}

// ---- Weights ---------------------------------------------------------------

// `rows` rows of `cols` weights in `type`, valid for the codec (finite f16
// scales): a few distinct quantized random rows, repeated. Kernel speed does
// not depend on the values, and quantizing every row would cost more time
// than the measurements.
void fill_matrix(TensorType type, uint8_t* dst, int64_t rows, int64_t cols, uint64_t seed) {
  constexpr int64_t kDistinct = 16;
  const kernels::WeightCodec& codec = kernels::codec_for(type, "profile");
  const size_t rb = row_bytes(type, uint64_t(cols));
  std::vector<float> x(static_cast<size_t>(cols));
  Rng rng{seed};
  for (int64_t r = 0; r < std::min(rows, kDistinct); ++r) {
    for (float& v : x) v = rng.uniform();
    codec.quantize_row(x.data(), dst + size_t(r) * rb, cols);
  }
  for (int64_t r = kDistinct; r < rows; ++r) {
    std::memcpy(dst + size_t(r) * rb, dst + size_t(r % kDistinct) * rb, rb);
  }
}

kernels::MatrixView make_view(TensorType type, const uint8_t* data, int64_t rows, int64_t cols) {
  kernels::MatrixView m;
  m.name = "profile." + std::string(tensor_type_name(type));
  m.type = type;
  m.codec = &kernels::codec_for(type, m.name);
  m.data = data;
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = row_bytes(type, uint64_t(cols));
  return m;
}

double measure_pack_gbps(double seconds) {
  constexpr int64_t kRows = 2048, kCols = 8192;
  const TensorType type = TensorType::Q4_0;
  const size_t rb = row_bytes(type, kCols);
  AlignedBuffer src(size_t(kRows) * rb);
  fill_matrix(type, src.data(), kRows, kCols, 7);
  const kernels::PackedShape shape = kernels::packed_shape(type, kRows, kCols);
  AlignedBuffer dst(shape.total_bytes());
  const double s = seconds_per_call(seconds, [&](int64_t) {
    kernels::pack_groups(type, src.data(), rb, kRows, kCols, 0, shape.groups, dst.data());
  });
  return double(src.size()) / s / 1e9;
}

// ---- Kernels -----------------------------------------------------------------

struct PrecisionCase {
  const char* name;
  kernels::Precision precision;
  kernels::ActivationKind activation;  // what its packed kernels take
};
constexpr PrecisionCase kPrecisions[] = {
    {"exact", kernels::Precision::kExact, kernels::ActivationKind::kF32},
    {"fast", kernels::Precision::kFast, kernels::ActivationKind::kQ16},
    {"int8", kernels::Precision::kInt8, kernels::ActivationKind::kQ8},
};
// Every format with a codec is measured (kernels::codec_types()): one left
// out would be planned on MachineProfile::rate's guess, which for q5_0/q5_1
// (exact path only) was 20x too fast at decode and 60x too slow at prefill.
// kCols below is a multiple of 256, as the k-quant and ternary formats need.
constexpr int64_t kDecodeRows = 2048, kPrefillRows = 1024, kCols = 2048, kPrefillT = 64;

bool is_float(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

// Packed paths exist only where matmul would take them: a non-scalar packed
// kernel for the precision's activations (exact never packs).
bool has_packed_path(TensorType type, kernels::Isa isa, const PrecisionCase& p) {
  if (p.precision == kernels::Precision::kExact || !kernels::packable(type)) return false;
  const kernels::GemmKernel* k =
      kernels::find_gemm_kernel(type, isa, kernels::WeightLayout::kPacked16, p.activation);
  return k != nullptr && k->isa != kernels::Isa::kScalar;
}

// Which kernel each measured path of every format dispatches to in this
// build on `isa` (target, activations, layout; "codec" for the exact codec
// path), as a 64-bit FNV-1a hash in hex. A profile cached by a build with
// other kernels (a format that gained SIMD kernels since, as q5_0/q5_1 did,
// and was measured on its codec at a twentieth of their speed) is measured
// again. A kernel made faster on the same path changes nothing here:
// `memwall profile --force` then.
std::string kernel_paths_id(kernels::Isa isa) {
  std::string paths;
  for (TensorType type : kernels::codec_types()) {
    kernels::MatrixView v;
    v.type = type;
    v.rows = kDecodeRows;
    v.cols = kCols;
    for (const PrecisionCase& p : kPrecisions) {
      for (bool packed : {false, true}) {
        if (packed && !has_packed_path(type, isa, p)) continue;
        const kernels::GemmKernel* k = kernels::choose_kernel(v, isa, p.precision, packed);
        paths += kernel_key(std::string(tensor_type_name(type)), p.name, packed) + "=";
        if (k == nullptr) {
          paths += "codec;";
          continue;
        }
        paths += std::string(kernels::isa_name(k->isa)) + "," +
                 std::to_string(static_cast<int>(k->activation)) + "," +
                 std::to_string(static_cast<int>(k->layout)) + ";";
      }
    }
  }
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : paths) h = (h ^ c) * 0x100000001b3ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// One format's test matrices: decode copies (together larger than the last
// level cache, so each call reads DRAM), their packed twins, and activations.
struct FormatBench {
  std::vector<kernels::MatrixView> rows;    // decode copies, row layout
  std::vector<kernels::MatrixView> packed;  // the same with packed set (empty if none)
  AlignedBuffer row_data, packed_data;
  std::vector<float> x, y;

  FormatBench(ThreadPool& pool, TensorType t, size_t decode_bytes, bool with_packed) {
    const size_t bytes = size_t(kDecodeRows) * row_bytes(t, kCols);
    const int copies = int(std::max<size_t>(1, (decode_bytes + bytes - 1) / bytes));
    row_data = AlignedBuffer(bytes * size_t(copies));
    fill_matrix(t, row_data.data(), kDecodeRows, kCols, 11 + uint64_t(t));
    for (int c = 1; c < copies; ++c)
      std::memcpy(row_data.data() + bytes * size_t(c), row_data.data(), bytes);
    for (int c = 0; c < copies; ++c) {
      rows.push_back(make_view(t, row_data.data() + bytes * size_t(c), kDecodeRows, kCols));
    }
    if (with_packed) {
      const kernels::PackedShape shape = kernels::packed_shape(t, kDecodeRows, kCols);
      const size_t pbytes = shape.total_bytes();
      packed_data = AlignedBuffer(pbytes * size_t(copies));
      // Packed as a model's matrices are at load, on every thread.
      pool.parallel_for(shape.groups, [&](int64_t g0, int64_t g1, int) {
        kernels::pack_groups(t, row_data.data(), rows[0].row_bytes, kDecodeRows, kCols, g0, g1,
                             packed_data.data());
      });
      for (int c = 1; c < copies; ++c) {
        std::memcpy(packed_data.data() + pbytes * size_t(c), packed_data.data(), pbytes);
      }
      for (int c = 0; c < copies; ++c) {
        kernels::MatrixView v = rows[size_t(c)];
        v.packed = packed_data.data() + pbytes * size_t(c);
        v.packed_group_bytes = shape.group_bytes;
        packed.push_back(v);
      }
    }
    x.resize(size_t(kPrefillT * kCols));
    Rng rng{99};
    for (float& v : x) v = rng.uniform();
    y.resize(size_t(kPrefillT * kDecodeRows));
  }

  KernelRate measure(ThreadPool& pool, kernels::Precision precision, bool use_packed,
                     double seconds) {
    const std::vector<kernels::MatrixView>& views = use_packed ? packed : rows;
    KernelRate rate;
    const double decode = seconds_per_call(seconds, [&](int64_t i) {
      kernels::matmul(pool, views[size_t(i) % views.size()], x.data(), 1, y.data(), precision);
    });
    rate.decode_gbps = double(views[0].bytes()) / decode / 1e9;
    // The first kPrefillRows rows of one copy: 16-row groups, so the packed
    // twin's first groups are exactly those rows.
    kernels::MatrixView hot = views[0];
    hot.rows = kPrefillRows;
    const double prefill = seconds_per_call(seconds, [&](int64_t) {
      kernels::matmul(pool, hot, x.data(), kPrefillT, y.data(), precision);
    });
    rate.prefill_gops =
        2.0 * double(kPrefillRows) * double(kCols) * double(kPrefillT) / prefill / 1e9;
    return rate;
  }
};

// Keeps the faster of what `r` and an earlier pass measured for one path.
void keep_best(MachineProfile& profile, const std::string& key, const KernelRate& r) {
  auto [it, fresh] = profile.kernels.try_emplace(key, r);
  if (fresh) return;
  it->second.decode_gbps = std::max(it->second.decode_gbps, r.decode_gbps);
  it->second.prefill_gops = std::max(it->second.prefill_gops, r.prefill_gops);
}

// Every format's paths, in options.kernel_passes passes over all of them
// that each take a share of seconds_per_kernel, keeping each path's best.
void measure_kernels(ThreadPool& pool, const MeasureOptions& options,
                     const ProfileProgress& progress, MachineProfile& profile) {
  const kernels::Isa isa = kernels::active_isa();
  const int passes = std::max(1, options.kernel_passes);
  const double seconds = options.seconds_per_kernel / passes;
  for (int pass = 0; pass < passes; ++pass) {
    if (pass > 0) {
      report(progress, "measuring every matmul path again (pass " + std::to_string(pass + 1) +
                           " of " + std::to_string(passes) + ")...");
    }
    for (TensorType type : kernels::codec_types()) {
      const std::string format(tensor_type_name(type));
      if (is_float(type)) {
        // Float weights meet f32 activations under every precision: one path.
        if (pass == 0) report(progress, "measuring " + format + " matmul (1 path)...");
        FormatBench bench(pool, type, options.decode_bytes, false);
        const KernelRate r = bench.measure(pool, kernels::Precision::kExact, false, seconds);
        for (const PrecisionCase& p : kPrecisions)
          keep_best(profile, kernel_key(format, p.name, false), r);
        continue;
      }
      int paths = 0;
      bool any_packed = false;
      for (const PrecisionCase& p : kPrecisions) {
        const bool packed = has_packed_path(type, isa, p);
        any_packed = any_packed || packed;
        paths += packed ? 2 : 1;
      }
      if (pass == 0) {
        report(progress,
               "measuring " + format + " matmul (" + std::to_string(paths) + " paths)...");
      }
      FormatBench bench(pool, type, options.decode_bytes, any_packed);
      for (const PrecisionCase& p : kPrecisions) {
        keep_best(profile, kernel_key(format, p.name, false),
                  bench.measure(pool, p.precision, false, seconds));
        if (has_packed_path(type, isa, p)) {
          keep_best(profile, kernel_key(format, p.name, true),
                    bench.measure(pool, p.precision, true, seconds));
        }
      }
    }
  }
}

// ---- JSON --------------------------------------------------------------------

const nlohmann::json& field(const nlohmann::json& j, const char* name, const char* where) {
  if (!j.is_object()) fail("machine profile: ", where, " must be a JSON object");
  auto it = j.find(name);
  if (it == j.end()) fail("machine profile: ", where, " has no field '", name, "'");
  return *it;
}

double rate_field(const nlohmann::json& j, const char* name, const char* where) {
  const nlohmann::json& v = field(j, name, where);
  if (!v.is_number()) fail("machine profile: ", where, " field '", name, "' must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < 0) {
    fail("machine profile: ", where, " field '", name, "' must be >= 0, not ", d);
  }
  return d;
}

int64_t int_field(const nlohmann::json& j, const char* name, const char* where) {
  const nlohmann::json& v = field(j, name, where);
  if (!v.is_number_integer()) {
    fail("machine profile: ", where, " field '", name, "' must be an integer");
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) {
    fail("machine profile: ", where, " field '", name, "' is out of range");
  }
  return v.get<int64_t>();
}

std::string string_field(const nlohmann::json& j, const char* name, const char* where) {
  const nlohmann::json& v = field(j, name, where);
  if (!v.is_string()) fail("machine profile: ", where, " field '", name, "' must be a string");
  return v.get<std::string>();
}

// ---- Cache -------------------------------------------------------------------

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string describe_age(int64_t seconds) {
  const int64_t days = seconds / 86400;
  return std::to_string(days) + (days == 1 ? " day" : " days");
}

// Why the cached profile at `path` cannot be used ("" when it can); fills `out`.
std::string check_cache(const std::string& path, ThreadPool& pool, MachineProfile& out) {
  std::ifstream in(path);
  if (!in) return "no machine profile cached at " + path + "; measuring it once";
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    return "the cached machine profile " + path + " is not valid JSON (" + e.what() +
           "); measuring again";
  }
  if (j.is_object() && j.contains("version") && j["version"] != MachineProfile::kVersion) {
    return "the cached machine profile " + path + " is of another version; measuring again";
  }
  try {
    out = MachineProfile::from_json(j);
  } catch (const Error& e) {
    return std::string("the cached machine profile is unreadable (") + e.what() +
           "); measuring again";
  }
  const std::string isa(kernels::isa_name(kernels::active_isa()));
  if (out.cpu_model != cpu_model_name() || out.isa != isa || out.threads != pool.size()) {
    auto machine = [](const std::string& cpu, const std::string& target, int threads) {
      return cpu + " (" + target + ", " + std::to_string(threads) +
             (threads == 1 ? " thread)" : " threads)");
    };
    return "the cached machine profile is for " + machine(out.cpu_model, out.isa, out.threads) +
           "; measuring for " + machine(cpu_model_name(), isa, pool.size());
  }
  if (out.kernel_paths != kernel_paths_id(kernels::active_isa())) {
    return "the cached machine profile was measured with other matmul kernels than this "
           "build's; measuring again";
  }
  const int64_t age = unix_now() - out.measured_at;
  if (age < 0) return "the cached machine profile is dated in the future; measuring again";
  if (age > kMaxAgeSeconds) {
    return "the cached machine profile is " + describe_age(age) + " old; measuring again";
  }
  return "";
}

// Writes the profile atomically: a reader sees the old file or the new one,
// never half of one. Returns "" or what went wrong.
std::string save_profile(const MachineProfile& profile, const std::string& dir,
                         const std::string& path) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << profile.to_json().dump(2) << '\n';
    out.close();
    if (!out) {
      fs::remove(tmp, ec);
      return "cannot write " + tmp;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return "cannot rename " + tmp + " to " + path + ": " + ec.message();
  }
  return "";
}

}  // namespace

// ---- Public ------------------------------------------------------------------

std::string kernel_key(const std::string& format, const std::string& precision, bool packed) {
  return format + "/" + precision + "/" + (packed ? "packed" : "rows");
}

KernelRate MachineProfile::rate(const std::string& key) const {
  auto it = kernels.find(key);
  if (it != kernels.end()) return it->second;
  // Unmeasured: assume a slow path, so a plan is never chosen on a guess.
  KernelRate r;
  r.decode_gbps = read_gbps > 0 ? read_gbps * 0.3 : 1.0;
  r.prefill_gops = 1.0;
  return r;
}

nlohmann::json MachineProfile::to_json() const {
  nlohmann::json k = nlohmann::json::object();
  for (const auto& [key, r] : kernels) {
    k[key] = {{"decode_gbps", r.decode_gbps}, {"prefill_gops", r.prefill_gops}};
  }
  return {{"version", version},
          {"cpu_model", cpu_model},
          {"isa", isa},
          {"threads", threads},
          {"measured_at", measured_at},
          {"read_gbps", read_gbps},
          {"disk_read_gbps", disk_read_gbps},
          {"cached_read_gbps", cached_read_gbps},
          {"mapped_read_gbps", mapped_read_gbps},
          {"pack_gbps", pack_gbps},
          {"kernel_paths", kernel_paths},
          {"disk_note", disk_note},
          {"kernels", k}};
}

MachineProfile MachineProfile::from_json(const nlohmann::json& j) {
  constexpr const char* kTop = "the document";
  MachineProfile p;
  const int64_t version = int_field(j, "version", kTop);
  if (version < 1 || version > INT32_MAX) fail("machine profile: bad version ", version);
  p.version = int(version);
  p.cpu_model = string_field(j, "cpu_model", kTop);
  p.isa = string_field(j, "isa", kTop);
  const int64_t threads = int_field(j, "threads", kTop);
  if (threads < 1 || threads > 65536) {
    fail("machine profile: field 'threads' must be in 1..65536, not ", threads);
  }
  p.threads = int(threads);
  p.measured_at = int_field(j, "measured_at", kTop);
  p.read_gbps = rate_field(j, "read_gbps", kTop);
  p.disk_read_gbps = rate_field(j, "disk_read_gbps", kTop);
  p.cached_read_gbps = rate_field(j, "cached_read_gbps", kTop);
  p.mapped_read_gbps = rate_field(j, "mapped_read_gbps", kTop);
  p.pack_gbps = rate_field(j, "pack_gbps", kTop);
  p.kernel_paths = string_field(j, "kernel_paths", kTop);
  // Optional: a note says nothing when there is nothing to say.
  if (j.contains("disk_note")) p.disk_note = string_field(j, "disk_note", kTop);
  const nlohmann::json& k = field(j, "kernels", kTop);
  if (!k.is_object()) fail("machine profile: field 'kernels' must be an object");
  for (const auto& [key, v] : k.items()) {
    const std::string where = "kernel '" + key + "'";
    KernelRate r;
    r.decode_gbps = rate_field(v, "decode_gbps", where.c_str());
    r.prefill_gops = rate_field(v, "prefill_gops", where.c_str());
    p.kernels[key] = r;
  }
  return p;
}

MeasureOptions MeasureOptions::quick() {
  MeasureOptions o;
  o.read_bytes = size_t(32) << 20;
  o.disk_bytes = size_t(8) << 20;
  o.decode_bytes = size_t(4) << 20;
  o.seconds_per_kernel = 0.003;
  o.kernel_passes = 1;
  return o;
}

MachineProfile measure_profile(ThreadPool& pool, const std::string& scratch_dir,
                               const ProfileProgress& progress) {
  return measure_profile(pool, scratch_dir, progress, MeasureOptions{});
}

MachineProfile measure_profile(ThreadPool& pool, const std::string& scratch_dir,
                               const ProfileProgress& progress, const MeasureOptions& options) {
  const Clock::time_point t0 = Clock::now();
  const CpuTicks ticks0 = cpu_ticks();
  MachineProfile p;
  p.cpu_model = cpu_model_name();
  p.isa = std::string(kernels::isa_name(kernels::active_isa()));
  p.kernel_paths = kernel_paths_id(kernels::active_isa());
  p.threads = pool.size();
  p.measured_at = unix_now();

  report(progress, "measuring DRAM read bandwidth (" + std::to_string(options.read_bytes >> 20) +
                       " MiB, " + std::to_string(pool.size()) + " threads)...");
  p.read_gbps = measure_read_gbps(pool, options.read_bytes);

  report(progress, "measuring disk reads (" + std::to_string(options.disk_bytes >> 20) +
                       " MiB file in " + scratch_dir + ")...");
  const DiskResult disk = measure_disk(pool, scratch_dir, options.disk_bytes);
  p.disk_read_gbps = disk.disk_gbps;
  p.cached_read_gbps = disk.cached_gbps;
  p.mapped_read_gbps = p.read_gbps * disk.mapped_ratio;
  p.disk_note = disk.note;
  if (!disk.note.empty()) report(progress, "note: " + disk.note);

  report(progress, "measuring weight repacking (one thread)...");
  p.pack_gbps = measure_pack_gbps(options.seconds_per_kernel);

  measure_kernels(pool, options, progress, p);

  const double seconds = seconds_since(t0);
  char line[256];
  std::snprintf(line, sizeof line, "machine profile measured in %.1f s", seconds);
  report(progress, line);
  // Other work on the machine slows every number; the planner would then
  // underestimate it until the profile is measured again.
  const double busy = others_share(ticks0, seconds);
  if (busy > 0.15) {
    std::snprintf(line, sizeof line,
                  "note: other processes used %.0f%% of the CPUs while measuring, so these "
                  "numbers may be low; run `memwall profile --force` on an idle machine",
                  busy * 100);
    report(progress, line);
  }
  return p;
}

std::string cache_dir() {
  if (std::string d = env_or_empty("MEMWALL_CACHE_DIR"); !d.empty()) return d;
  // XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (std::string d = env_or_empty("XDG_CACHE_HOME"); !d.empty() && d[0] == '/') {
    return d + "/memwall";
  }
  if (std::string d = env_or_empty("HOME"); !d.empty()) return d + "/.cache/memwall";
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    return std::string(pw->pw_dir) + "/.cache/memwall";
  }
  fail("no cache directory: HOME is not set; set MEMWALL_CACHE_DIR to a writable directory");
}

std::string profile_path() {
  return cache_dir() + "/profile.json";
}

MachineProfile load_or_measure_profile(ThreadPool& pool, bool force,
                                       const ProfileProgress& progress) {
  return load_or_measure_profile(pool, force, progress, MeasureOptions{});
}

MachineProfile load_or_measure_profile(ThreadPool& pool, bool force,
                                       const ProfileProgress& progress,
                                       const MeasureOptions& options) {
  std::string dir, path;
  try {
    dir = cache_dir();
    path = dir + "/profile.json";
  } catch (const Error& e) {
    report(progress, std::string("note: ") + e.what() + "; the profile will not be saved");
  }
  if (!path.empty() && !force) {
    MachineProfile cached;
    const std::string why = check_cache(path, pool, cached);
    if (why.empty()) return cached;
    report(progress, why);
  }
  // The disk test wants the disk the cache (and usually the models) live on;
  // without a usable cache directory, the temporary directory will do.
  std::string scratch = dir;
  std::error_code ec;
  if (!scratch.empty()) fs::create_directories(scratch, ec);
  if (scratch.empty() || ec) {
    scratch = fs::temp_directory_path(ec).string();
    if (ec || scratch.empty()) scratch = "/tmp";
  }
  MachineProfile p = measure_profile(pool, scratch, progress, options);
  if (!path.empty()) {
    const std::string err = save_profile(p, dir, path);
    if (!err.empty()) {
      report(progress, "note: the machine profile was not saved (" + err +
                           "); it will be measured again next time");
    }
  }
  return p;
}

}  // namespace memwall::plan
