// memwall_micro: the micro-benchmarks of `make bench` (Google Benchmark).
//   build-bench/memwall_micro --benchmark_format=json > micro.json
//   build-bench/memwall_micro --benchmark_filter='read_bw/avx512/1024MiB/threads:2'
// Benchmarks: read_bw/... (bandwidth.cpp), gemm/... (gemm_kernels.cpp).
#include <benchmark/benchmark.h>

#include <string>

#include "kernels/isa.h"
#include "micro_common.h"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_model", memwall::bench::cpu_model_name());
  benchmark::AddCustomContext(
      "detected_isa", std::string(memwall::kernels::isa_name(memwall::kernels::detected_isa())));
  memwall::bench::register_bandwidth_benchmarks();
  memwall::bench::register_gemm_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
