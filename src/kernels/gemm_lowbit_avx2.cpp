// nf4, nf4_dq, q2_g64, q3_g64 weights x BlockQ8x / BlockQ16x activations,
// AVX2 (scheme: simd_avx2_lowbit.h). Also what the avx512 target runs:
// vpmaddubsw gains nothing from wider registers here that would pay for a
// third copy.
#include "kernels/lowbit_kernels.h"
#include "kernels/simd_avx2_lowbit.h"

namespace memwall::kernels {

const GemmKernel kGemmLowbitAvx2[kLowbitKernels] = {
    lowbit_kernel<Nf4Bytes<Nf4Layout>, ActQ8>(TensorType::NF4, Isa::kAvx2),
    lowbit_kernel<Nf4Words<Nf4Layout>, ActQ16Words>(TensorType::NF4, Isa::kAvx2),
    lowbit_kernel<Nf4Bytes<Nf4DqLayout>, ActQ8>(TensorType::NF4_DQ, Isa::kAvx2),
    lowbit_kernel<Nf4Words<Nf4DqLayout>, ActQ16Words>(TensorType::NF4_DQ, Isa::kAvx2),
    lowbit_kernel<FormatGroup<false>, ActQ8>(TensorType::Q2_G64, Isa::kAvx2),
    lowbit_kernel<FormatGroup<false>, ActQ16>(TensorType::Q2_G64, Isa::kAvx2),
    lowbit_kernel<FormatGroup<true>, ActQ8>(TensorType::Q3_G64, Isa::kAvx2),
    lowbit_kernel<FormatGroup<true>, ActQ16>(TensorType::Q3_G64, Isa::kAvx2),
};

}  // namespace memwall::kernels
