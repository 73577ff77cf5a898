// Repacking a loaded model's quantized matrices into the interleaved layout
// of the fast kernels (kernels/packed_weights.h), for Precision::kFast. The
// packed copy replaces the file's pages in memory: each matrix's mapped
// pages are released once it is packed, so resident memory stays about one
// copy of the weights.
#pragma once

#include <cstddef>

#include "base/thread_pool.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "model/model.h"

namespace memwall {

// Packs every matrix that has a packed kernel for `isa`; others keep using
// the file's rows. Idempotent. Matrices are left untouched when the target
// has no packed kernels (then PackStats is zero).
PackStats pack_weights(Model& model, ThreadPool& pool, kernels::Isa isa);

// What every command runs after loading: packs for the active ISA unless the
// precision is exact (which reads the file's rows). When the CPU lacks the
// 16-bit activation kernels kFast runs the exact path: says so on stderr.
PackStats prepare_weights(Model& model, ThreadPool& pool, kernels::Precision precision);

}  // namespace memwall
