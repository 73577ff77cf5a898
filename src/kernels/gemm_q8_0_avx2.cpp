// q8_0 weights x BlockQ8x or BlockQ16x activations, AVX2 (scheme: simd_avx2_q8.h).
#include "kernels/simd_avx2_q8.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmQ8_0Avx2{TensorType::Q8_0, Isa::kAvx2, ActivationKind::kQ8, tile<Q8_0Format>};
const GemmKernel kGemmQ8_0Q16Avx2{TensorType::Q8_0, Isa::kAvx2, ActivationKind::kQ16,
                                  tile<Q8_0Format, ActQ16>};

}  // namespace memwall::kernels
