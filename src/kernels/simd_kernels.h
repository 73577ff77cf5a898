// Internal: the per-ISA entry points behind activations.h and gemm.h. Each is
// defined in a file compiled for its target (activations_avx2.cpp,
// gemm_q4_0_avx512vnni.cpp, ...); only the dispatchers and tests name them, and
// only after isa_supported() says the CPU can run them.
#pragma once

#include <cstdint>

#include "kernels/activations.h"
#include "kernels/gemm.h"

namespace memwall::kernels {

void quantize_activations_q8_scalar(const float* x, BlockQ8x* out, int64_t n);
void quantize_activations_q8_avx2(const float* x, BlockQ8x* out, int64_t n);
void quantize_activations_q8_avx512(const float* x, BlockQ8x* out, int64_t n);
void quantize_activations_q16_scalar(const float* x, BlockQ16x* out, int64_t n);
void quantize_activations_q16_avx2(const float* x, BlockQ16x* out, int64_t n);
void quantize_activations_q16_avx512(const float* x, BlockQ16x* out, int64_t n);
void quantize_activations_q8_row_scalar(const float* x, uint8_t* out, int64_t cols);
void quantize_activations_q8_row_avx2(const float* x, uint8_t* out, int64_t cols);
void quantize_activations_q8_row_avx512(const float* x, uint8_t* out, int64_t cols);

// Every kernel, one per (format, ISA). gemm.cpp lists them in its registry.
extern const GemmKernel kGemmF32Scalar, kGemmF16Scalar, kGemmBf16Scalar;
extern const GemmKernel kGemmQ8_0Scalar, kGemmQ4_0Scalar, kGemmQ4_1Scalar;
extern const GemmKernel kGemmF32Avx2, kGemmF16Avx2, kGemmBf16Avx2;
extern const GemmKernel kGemmQ8_0Avx2, kGemmQ4_0Avx2, kGemmQ4_1Avx2;
// GGUF rows with BlockQ16x activations (the fast path where AVX-512 VNNI is missing).
extern const GemmKernel kGemmQ8_0Q16Avx2, kGemmQ4_0Q16Avx2, kGemmQ4_1Q16Avx2;
extern const GemmKernel kGemmF32Avx512, kGemmF16Avx512, kGemmBf16Avx512;
extern const GemmKernel kGemmQ8_0Avx512, kGemmQ4_0Avx512, kGemmQ4_1Avx512;
extern const GemmKernel kGemmQ8_0Avx512Vnni, kGemmQ4_0Avx512Vnni, kGemmQ4_1Avx512Vnni;
// Packed layout (packed_weights.h), with BlockQ8x and with BlockQ16x activations.
extern const GemmKernel kGemmQ8_0PackedScalar, kGemmQ4_0PackedScalar, kGemmQ4_1PackedScalar;
extern const GemmKernel kGemmQ8_0PackedAvx2, kGemmQ4_0PackedAvx2, kGemmQ4_1PackedAvx2;
extern const GemmKernel kGemmQ8_0PackedAvx512Vnni, kGemmQ4_0PackedAvx512Vnni,
    kGemmQ4_1PackedAvx512Vnni;
extern const GemmKernel kGemmQ8_0Q16PackedScalar, kGemmQ4_0Q16PackedScalar,
    kGemmQ4_1Q16PackedScalar;
extern const GemmKernel kGemmQ8_0Q16PackedAvx2, kGemmQ4_0Q16PackedAvx2, kGemmQ4_1Q16PackedAvx2;
extern const GemmKernel kGemmQ8_0Q16PackedAvx512Vnni, kGemmQ4_0Q16PackedAvx512Vnni,
    kGemmQ4_1Q16PackedAvx512Vnni;
// w8a8 rows with per-token int8 activations (kQ8Row).
extern const GemmKernel kGemmW8A8Scalar, kGemmW8A8Avx2, kGemmW8A8Avx512Vnni;

}  // namespace memwall::kernels
