// f16 weights x f32 activations, AVX2 + FMA + F16C (scheme: simd_avx2_float.h).
#include "kernels/simd_avx2_float.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmF16Avx2{TensorType::F16, Isa::kAvx2, ActivationKind::kF32,
                              float_tile<LoadF16>};

}  // namespace memwall::kernels
