// q4_0 weights x q8 activations, AVX2 (scheme: simd_avx2_q8.h).
#include "kernels/simd_avx2_q8.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmQ4_0Avx2{TensorType::Q4_0, Isa::kAvx2, ActivationKind::kQ8,
                               tile<Q4Format<false>>};

}  // namespace memwall::kernels
