// Shared helpers of the micro-benchmarks (bench/micro/*.cpp, one binary:
// memwall_micro). Benchmarks register themselves from main() in main.cpp so
// their names can carry the ISA, size and thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace memwall::bench {

// 2 MiB-aligned memory, advised to use transparent huge pages (fewer TLB
// misses, as a STREAM-style probe should see), freed with std::free.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, FreeDeleter>;
Buffer alloc_buffer(size_t bytes);

void register_bandwidth_benchmarks();
void register_gemm_benchmarks();

// The CPU's model name from /proc/cpuinfo.
const char* cpu_model_name();

}  // namespace memwall::bench
