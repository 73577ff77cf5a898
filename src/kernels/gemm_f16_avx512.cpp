// f16 weights x f32 activations, AVX-512 (scheme: simd_avx512_float.h).
#include "kernels/simd_avx512_float.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmF16Avx512{TensorType::F16, Isa::kAvx512, ActivationKind::kF32,
                                float_tile<LoadF16>};

}  // namespace memwall::kernels
