// Writes a float32 array as a NumPy .npy file (format 1.0), for handing
// logits to Python tools and tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memwall {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace memwall
