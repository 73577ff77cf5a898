// Run-time choice of the SIMD target. Detection asks the CPU (and, through
// libgcc's cpu model, the OS's XSAVE state) once; the active target is cached
// in an atomic so the hot path's active_isa() is a single relaxed load.
#include "kernels/isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdlib>
#include <string>

#include "base/error.h"

namespace memwall::kernels {
namespace {

constexpr Isa kAll[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni};

#if defined(__x86_64__) || defined(__i386__)
// F16C and AVX512_BF16 straight from CPUID: clang 14's __builtin_cpu_supports
// does not know their names (the fuzz and sanitizer builds use clang).
bool cpuid_bit(unsigned leaf, unsigned subleaf, int reg, int bit) {
  unsigned r[4] = {0, 0, 0, 0};
  if (!__get_cpuid_count(leaf, subleaf, &r[0], &r[1], &r[2], &r[3])) return false;
  return (r[reg] >> bit) & 1u;
}
// ECX bit 29
bool has_f16c() {
  return cpuid_bit(1, 0, 2, 29);
}
// Leaf 7.1 EAX bit 5
bool has_avx512bf16() {
  return cpuid_bit(7, 1, 0, 5);
}
#endif

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // Each target implies the previous ones (see isa.h), so stop at the first gap.
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())) {
    return Isa::kScalar;
  }
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))) {
    return Isa::kAvx2;
  }
  if (!(__builtin_cpu_supports("avx512vnni") && has_avx512bf16())) {
    return Isa::kAvx512;
  }
  return Isa::kAvx512Vnni;
#else
  return Isa::kScalar;  // no SIMD targets are compiled for this architecture yet
#endif
}

std::string all_names() {
  std::string s;
  for (Isa i : kAll) {
    if (!s.empty()) s += ", ";
    s += isa_name(i);
  }
  return s;
}

// The environment's or the detected choice; throws on a bad MEMWALL_ISA.
Isa default_isa() {
  const char* env = std::getenv("MEMWALL_ISA");
  if (env == nullptr || *env == '\0') return detected_isa();
  Isa isa;
  if (!isa_from_name(env, isa)) {
    fail("MEMWALL_ISA=", env, " is not a target; use one of: ", all_names());
  }
  if (!isa_supported(isa)) {
    fail("MEMWALL_ISA=", env,
         " is not supported by this CPU (best here: ", isa_name(detected_isa()),
         "); unset it or choose a lower target");
  }
  return isa;
}

constexpr int kUnset = -1;
std::atomic<int> g_active{kUnset};

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
  }
  return "unknown";
}

bool isa_from_name(std::string_view name, Isa& out) {
  for (Isa i : kAll) {
    if (isa_name(i) == name) {
      out = i;
      return true;
    }
  }
  return false;
}

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

bool isa_supported(Isa isa) {
  return static_cast<int>(isa) <= static_cast<int>(detected_isa());
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v != kUnset) return static_cast<Isa>(v);
  // Racing first calls compute the same value, so a plain store is enough.
  const Isa isa = default_isa();
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa;
}

void force_isa(Isa isa) {
  if (!isa_supported(isa)) {
    fail("cannot force ISA target ", isa_name(isa), ": this CPU supports up to ",
         isa_name(detected_isa()));
  }
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void reset_isa() {
  g_active.store(kUnset, std::memory_order_relaxed);
}

}  // namespace memwall::kernels
