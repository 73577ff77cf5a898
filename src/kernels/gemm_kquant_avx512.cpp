// k-quant and ternary weights x BlockQ8K / BlockQ16K activations, AVX-512 without VNNI: vpmaddubsw
// + vpmaddwd (scheme: simd_avx512_kquant.h).
#include "kernels/kquant_kernels.h"
#include "kernels/simd_avx512_kquant.h"

namespace memwall::kernels {

const GemmKernel kGemmKQuantAvx512[kKQuantKernels] = {
    kquant_kernel<FormatK4<false>, ActQ8K, DotMaddubs>(TensorType::Q4_K, Isa::kAvx512),
    kquant_kernel<FormatK4<false>, ActQ16K, DotMaddubs>(TensorType::Q4_K, Isa::kAvx512),
    kquant_kernel<FormatK4<true>, ActQ8K, DotMaddubs>(TensorType::Q5_K, Isa::kAvx512),
    kquant_kernel<FormatK4<true>, ActQ16K, DotMaddubs>(TensorType::Q5_K, Isa::kAvx512),
    kquant_kernel<FormatQ6K, ActQ8K, DotMaddubs>(TensorType::Q6_K, Isa::kAvx512),
    kquant_kernel<FormatQ6K, ActQ16K, DotMaddubs>(TensorType::Q6_K, Isa::kAvx512),
    kquant_kernel<FormatTQ1, ActQ8K, DotMaddubs>(TensorType::TQ1_0, Isa::kAvx512),
    kquant_kernel<FormatTQ1, ActQ16K, DotMaddubs>(TensorType::TQ1_0, Isa::kAvx512),
    kquant_kernel<FormatTQ2, ActQ8K, DotMaddubs>(TensorType::TQ2_0, Isa::kAvx512),
    kquant_kernel<FormatTQ2, ActQ16K, DotMaddubs>(TensorType::TQ2_0, Isa::kAvx512),
};

}  // namespace memwall::kernels
