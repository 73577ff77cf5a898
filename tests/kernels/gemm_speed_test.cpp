// Single-thread speed of every GEMM kernel on this machine. Disabled: timing
// is not a test. Run with
//   memwall_tests --gtest_also_run_disabled_tests --gtest_filter='*GemmSpeed*'
// Times are thread CPU time (this machine's 2 vCPUs are shared, and wall time
// counts the minutes other processes hold the core), best of several runs
// of at least 50 ms. Decode (T = 1) reports GB/s of weights read for an
// R = 8192 x n = 2048 matrix that stays in the 32 MiB last-level cache
// ("hot") and for a rotation of copies totalling >= 256 MiB read from DRAM
// ("cold"); prefill (T = 64) reports GFLOP/s (2 R n T flops per call). Calls
// are shaped like the matmul driver's: 16 rows per call for decode, 64 for
// prefill.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

constexpr int64_t kR = 8192, kN = 2048;

struct Data {
  TensorType type;
  std::vector<std::vector<uint8_t>> mats;  // copies to rotate through
  std::vector<float> xf;
  std::vector<BlockQ8x> xq;
};

Data make_data(TensorType type, size_t copies, int64_t T) {
  const WeightCodec& codec = *find_codec(type);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> row(static_cast<size_t>(kN));
  const size_t rb = row_bytes(type, uint64_t(kN));
  Data d{type, {}, {}, {}};
  d.mats.assign(1, std::vector<uint8_t>(rb * size_t(kR)));
  for (int64_t r = 0; r < kR; ++r) {
    for (auto& v : row) v = dist(rng);
    codec.quantize_row(row.data(), d.mats[0].data() + size_t(r) * rb, kN);
  }
  for (size_t c = 1; c < copies; ++c) d.mats.push_back(d.mats[0]);
  d.xf.resize(size_t(T * kN));
  for (auto& v : d.xf) v = dist(rng);
  d.xq.resize(size_t(T * kN / 32));
  for (int64_t t = 0; t < T; ++t) {
    quantize_activations_q8(&d.xf[size_t(t * kN)], &d.xq[size_t(t * kN / 32)], kN);
  }
  return d;
}

// Seconds per pass over one whole matrix.
double seconds_per_matrix(const GemmKernel& k, const Data& d, int64_t T) {
  const bool q8 = k.activation == ActivationKind::kQ8;
  const auto* x = q8 ? reinterpret_cast<const uint8_t*>(d.xq.data())
                     : reinterpret_cast<const uint8_t*>(d.xf.data());
  const size_t xs = q8 ? size_t(kN / 32) * sizeof(BlockQ8x) : size_t(kN) * 4;
  const size_t rb = row_bytes(d.type, uint64_t(kN));
  std::vector<float> y(size_t(T * kR));
  const int64_t rows = T == 1 ? 16 : 64;
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = cpu_seconds();
    int passes = 0;
    do {
      for (const auto& m : d.mats) {
        for (int64_t r = 0; r < kR; r += rows) {
          k.tile(m.data() + size_t(r) * rb, rb, std::min(rows, kR - r), x, xs, T, kN, y.data() + r,
                 kR);
        }
        ++passes;
      }
    } while (cpu_seconds() - t0 < 0.05);
    best = std::min(best, (cpu_seconds() - t0) / passes);
  }
  return best;
}

TEST(DISABLED_GemmSpeed, SingleThread) {
  std::printf("%-5s %-11s %9s %9s %10s\n", "type", "isa", "hot GB/s", "cold GB/s", "T=64 GF/s");
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0, TensorType::F16,
                          TensorType::BF16, TensorType::F32}) {
    const double bytes = double(row_bytes(type, kN)) * kR;
    const Data hot = make_data(type, 1, 64);
    const Data cold = make_data(type, std::max<size_t>(2, size_t((256 << 20) / bytes) + 1), 1);
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
      const GemmKernel* k = find_gemm_kernel(type, isa);
      if (!isa_supported(isa) || k == nullptr || k->isa != isa) continue;
      const double t_hot = seconds_per_matrix(*k, hot, 1);
      const double t_cold = isa == Isa::kScalar ? 0 : seconds_per_matrix(*k, cold, 1);
      const double t_64 = seconds_per_matrix(*k, hot, 64);
      std::printf("%-5s %-11s %9.1f %9.1f %10.1f\n", std::string(tensor_type_name(type)).c_str(),
                  std::string(isa_name(isa)).c_str(), bytes / t_hot / 1e9,
                  t_cold > 0 ? bytes / t_cold / 1e9 : 0.0, 2.0 * kR * kN * 64 / t_64 / 1e9);
    }
  }
}

}  // namespace
}  // namespace memwall::kernels
