// k-quant and ternary weights x BlockQ8K / BlockQ16K activations, AVX-512 VNNI: vpmaddubsw +
// vpdpwssd (vpdpbusd for the ternary formats) (scheme: simd_avx512_kquant.h).
#include "kernels/kquant_kernels.h"
#include "kernels/simd_avx512_kquant.h"

namespace memwall::kernels {

const GemmKernel kGemmKQuantAvx512Vnni[kKQuantKernels] = {
    kquant_kernel<FormatK4<false>, ActQ8K, DotVnni>(TensorType::Q4_K, Isa::kAvx512Vnni),
    kquant_kernel<FormatK4<false>, ActQ16K, DotVnni>(TensorType::Q4_K, Isa::kAvx512Vnni),
    kquant_kernel<FormatK4<true>, ActQ8K, DotVnni>(TensorType::Q5_K, Isa::kAvx512Vnni),
    kquant_kernel<FormatK4<true>, ActQ16K, DotVnni>(TensorType::Q5_K, Isa::kAvx512Vnni),
    kquant_kernel<FormatQ6K, ActQ8K, DotVnni>(TensorType::Q6_K, Isa::kAvx512Vnni),
    kquant_kernel<FormatQ6K, ActQ16K, DotVnni>(TensorType::Q6_K, Isa::kAvx512Vnni),
    kquant_kernel<FormatTQ1, ActQ8K, DotVnni>(TensorType::TQ1_0, Isa::kAvx512Vnni),
    kquant_kernel<FormatTQ1, ActQ16K, DotVnni>(TensorType::TQ1_0, Isa::kAvx512Vnni),
    kquant_kernel<FormatTQ2, ActQ8K, DotVnni>(TensorType::TQ2_0, Isa::kAvx512Vnni),
    kquant_kernel<FormatTQ2, ActQ16K, DotVnni>(TensorType::TQ2_0, Isa::kAvx512Vnni),
};

}  // namespace memwall::kernels
