// nf4, nf4_dq, q2_g64, q3_g64 weights x BlockQ8x / BlockQ16x activations,
// AVX-512 VNNI (scheme: simd_avx512_lowbit.h).
#include "kernels/lowbit_kernels.h"
#include "kernels/simd_avx512_lowbit.h"

namespace memwall::kernels {

const GemmKernel kGemmLowbitAvx512Vnni[kLowbitKernels] = {
    lowbit_kernel<Nf4Bytes<Nf4Layout>, ActQ8>(TensorType::NF4, Isa::kAvx512Vnni),
    lowbit_kernel<Nf4Words<Nf4Layout>, ActQ16Words>(TensorType::NF4, Isa::kAvx512Vnni),
    lowbit_kernel<Nf4Bytes<Nf4DqLayout>, ActQ8>(TensorType::NF4_DQ, Isa::kAvx512Vnni),
    lowbit_kernel<Nf4Words<Nf4DqLayout>, ActQ16Words>(TensorType::NF4_DQ, Isa::kAvx512Vnni),
    lowbit_kernel<FormatGroup<false>, ActQ8>(TensorType::Q2_G64, Isa::kAvx512Vnni),
    lowbit_kernel<FormatGroup<false>, ActQ16>(TensorType::Q2_G64, Isa::kAvx512Vnni),
    lowbit_kernel<FormatGroup<true>, ActQ8>(TensorType::Q3_G64, Isa::kAvx512Vnni),
    lowbit_kernel<FormatGroup<true>, ActQ16>(TensorType::Q3_G64, Isa::kAvx512Vnni),
};

}  // namespace memwall::kernels
