// q4_1 weights x BlockQ8x or BlockQ16x activations, AVX2 (scheme: simd_avx2_q8.h).
#include "kernels/simd_avx2_q8.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmQ4_1Avx2{TensorType::Q4_1, Isa::kAvx2, ActivationKind::kQ8,
                               tile<Q4Format<true>>};
const GemmKernel kGemmQ4_1Q16Avx2{TensorType::Q4_1, Isa::kAvx2, ActivationKind::kQ16,
                                  tile<Q4Format<true>, ActQ16>};

}  // namespace memwall::kernels
