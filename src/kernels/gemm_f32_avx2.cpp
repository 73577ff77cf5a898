// f32 weights x f32 activations, AVX2 + FMA + F16C (scheme: simd_avx2_float.h).
#include "kernels/simd_avx2_float.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmF32Avx2{TensorType::F32, Isa::kAvx2, ActivationKind::kF32,
                              float_tile<LoadF32>};

}  // namespace memwall::kernels
