// q4_1 weights x q8 activations, AVX-512 without VNNI (scheme: simd_avx512_q8.h).
// The nibbles' dot is vpmaddubsw + vpmaddwd; the minimum m contributes m * d_x * sum_x per
// block, one FMA per 16 blocks.
#include "kernels/simd_avx512_q8.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmQ4_1Avx512{TensorType::Q4_1, Isa::kAvx512, ActivationKind::kQ8,
                                 tile<Q4Format<true, DotMaddubs>>};

}  // namespace memwall::kernels
