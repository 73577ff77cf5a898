// k-quant and ternary weights x BlockQ8K / BlockQ16K activations, AVX2:
// vpmaddubsw + vpmaddwd (scheme: simd_avx2_kquant.h).
#include "kernels/kquant_kernels.h"
#include "kernels/simd_avx2_kquant.h"

namespace memwall::kernels {

const GemmKernel kGemmKQuantAvx2[kKQuantKernels] = {
    kquant_kernel<FormatK4<false>, ActQ8K>(TensorType::Q4_K),
    kquant_kernel<FormatK4<false>, ActQ16K>(TensorType::Q4_K),
    kquant_kernel<FormatK4<true>, ActQ8K>(TensorType::Q5_K),
    kquant_kernel<FormatK4<true>, ActQ16K>(TensorType::Q5_K),
    kquant_kernel<FormatQ6K, ActQ8K>(TensorType::Q6_K),
    kquant_kernel<FormatQ6K, ActQ16K>(TensorType::Q6_K),
    kquant_kernel<FormatTQ1, ActQ8K>(TensorType::TQ1_0),
    kquant_kernel<FormatTQ1, ActQ16K>(TensorType::TQ1_0),
    kquant_kernel<FormatTQ2, ActQ8K>(TensorType::TQ2_0),
    kquant_kernel<FormatTQ2, ActQ16K>(TensorType::TQ2_0),
};

}  // namespace memwall::kernels
