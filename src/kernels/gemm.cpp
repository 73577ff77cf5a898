// The GEMM kernel registry: every (format, ISA) kernel, and the choice of the
// best one a target may run.
#include "kernels/gemm.h"

#include <iterator>

#include "kernels/kquant_kernels.h"
#include "kernels/lowbit_kernels.h"
#include "kernels/q5_kernels.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {
namespace {

// Any order: find_gemm_kernel picks the highest target at or below the request.
// clang-format off
const GemmKernel* const kRegistry[] = {
    &kGemmF32Scalar, &kGemmF16Scalar, &kGemmBf16Scalar,
    &kGemmQ8_0Scalar, &kGemmQ4_0Scalar, &kGemmQ4_1Scalar,
    &kGemmF32Avx2, &kGemmF16Avx2, &kGemmBf16Avx2,
    &kGemmQ8_0Avx2, &kGemmQ4_0Avx2, &kGemmQ4_1Avx2,
    &kGemmQ8_0Q16Avx2, &kGemmQ4_0Q16Avx2, &kGemmQ4_1Q16Avx2,
    &kGemmF32Avx512, &kGemmF16Avx512, &kGemmBf16Avx512,
    &kGemmQ8_0Avx512, &kGemmQ4_0Avx512, &kGemmQ4_1Avx512,
    &kGemmQ8_0Avx512Vnni, &kGemmQ4_0Avx512Vnni, &kGemmQ4_1Avx512Vnni,
    &kGemmQ8_0PackedScalar, &kGemmQ4_0PackedScalar, &kGemmQ4_1PackedScalar,
    &kGemmQ8_0PackedAvx2, &kGemmQ4_0PackedAvx2, &kGemmQ4_1PackedAvx2,
    &kGemmQ8_0PackedAvx512Vnni, &kGemmQ4_0PackedAvx512Vnni, &kGemmQ4_1PackedAvx512Vnni,
    &kGemmQ8_0Q16PackedScalar, &kGemmQ4_0Q16PackedScalar, &kGemmQ4_1Q16PackedScalar,
    &kGemmQ8_0Q16PackedAvx2, &kGemmQ4_0Q16PackedAvx2, &kGemmQ4_1Q16PackedAvx2,
    &kGemmQ8_0Q16PackedAvx512Vnni, &kGemmQ4_0Q16PackedAvx512Vnni, &kGemmQ4_1Q16PackedAvx512Vnni,
    &kGemmW8A8Scalar, &kGemmW8A8Avx2, &kGemmW8A8Avx512Vnni,
};
// clang-format on

// The k-quant and ternary kernels, kKQuantKernels per target.
const GemmKernel* const kKQuantRegistry[] = {kGemmKQuantScalar, kGemmKQuantAvx2, kGemmKQuantAvx512,
                                             kGemmKQuantAvx512Vnni};

// nf4, nf4_dq, q2_g64, q3_g64: kLowbitKernels per target.
const GemmKernel* const kLowbitRegistry[] = {kGemmLowbitScalar, kGemmLowbitAvx2,
                                             kGemmLowbitAvx512Vnni};

// q5_0, q5_1: kQ5Kernels per target.
const GemmKernel* const kQ5Registry[] = {kGemmQ5Scalar, kGemmQ5Avx2, kGemmQ5Avx512Vnni};

}  // namespace

const GemmKernel* find_gemm_kernel(TensorType type, Isa isa, WeightLayout layout,
                                   ActivationKind activation) {
  const bool float_format =
      type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16;
  const GemmKernel* best = nullptr;
  const auto consider = [&](const GemmKernel* k) {
    if (!float_format && k->activation != activation) return;
    if (k->type != type || k->layout != layout || static_cast<int>(k->isa) > static_cast<int>(isa))
      return;
    if (best == nullptr || static_cast<int>(k->isa) > static_cast<int>(best->isa)) best = k;
  };
  for (const GemmKernel* k : kRegistry) consider(k);
  for (const GemmKernel* family : kKQuantRegistry) {
    for (int i = 0; i < kKQuantKernels; ++i) consider(&family[i]);
  }
  for (const GemmKernel* family : kLowbitRegistry) {
    for (int i = 0; i < kLowbitKernels; ++i) consider(&family[i]);
  }
  for (const GemmKernel* family : kQ5Registry) {
    for (int i = 0; i < kQ5Kernels; ++i) consider(&family[i]);
  }
  return best;
}

}  // namespace memwall::kernels
