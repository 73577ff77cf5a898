// Instruction-set targets for the SIMD kernels, detected at run time so one
// binary runs on every x86-64 (and later ARM) machine and uses what it finds.
#pragma once

#include <string_view>

namespace memwall::kernels {

// Ordered: each target implies the ones before it.
enum class Isa {
  kScalar,      // portable C++, the reference every other target is tested against
  kAvx2,        // AVX2 + FMA + F16C
  kAvx512,      // AVX-512 F/BW/VL/DQ
  kAvx512Vnni,  // AVX-512 plus VNNI (int8 dot) and BF16
};

std::string_view isa_name(Isa isa);
bool isa_from_name(std::string_view name, Isa& out);
bool isa_supported(Isa isa);  // by this CPU and this build
Isa detected_isa();           // the best supported target

// The target kernels use: detected_isa(), or MEMWALL_ISA from the environment
// (scalar, avx2, avx512, avx512vnni), or force_isa(). Throws Error when the
// requested target is not supported here.
Isa active_isa();
void force_isa(Isa isa);  // tests and benchmarks
void reset_isa();         // back to the environment/detected choice

}  // namespace memwall::kernels
