// q4_0 weights x q8 activations, AVX-512 VNNI (scheme: simd_avx512_q8.h).
// vpdpbusd multiplies unsigned by signed bytes, so the unsigned nibbles go in
// as they are and the -8 offset becomes the per-block term -8 * d_x * sum_x.
#include "kernels/simd_avx512_q8.h"
#include "kernels/simd_avx512_vnni_dot.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {

const GemmKernel kGemmQ4_0Avx512Vnni{TensorType::Q4_0, Isa::kAvx512Vnni, ActivationKind::kQ8,
                                     tile<Q4Format<false, DotVnni>>};

}  // namespace memwall::kernels
