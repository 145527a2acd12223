// `stepwise bench kernels` (CUDA builds): what one run measures and reports. Every rate is set beside a ceiling
// measured in the same run (bf16 GEMM FLOP/s or device-to-device copy bytes/s), and GPU.md targets beside their ratio.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace stepwise::cli {

struct KernelBenchOptions {
  bool quick = false;       // smaller sizes (a smoke run)
  std::string json_path;    // also write the report here when non-empty
};

// One timed quantity: `work` FLOPs (or bytes) done by one call lasting `ms`, compared with `ceiling` in the same unit.
struct Measurement {
  std::string name;         // "MFA attention fwd+bwd"
  std::string shape;        // "B=2 T=4096 H=64 D=256 causal"
  bool flops = true;        // work counts FLOPs (rates in TFLOP/s), else bytes (rates in GB/s)
  double ms = 0;            // median GPU time of one call
  double work = 0;          // FLOPs or bytes of one call
  double ceiling = 0;       // FLOP/s or bytes/s this is compared with
  std::string ceiling_name; // "bf16 GEMM 8192^3", "copy", "dense GEMM, same FLOPs"
  double target = 0;        // required rate / ceiling (GPU.md); 0 = no target
  std::string error;        // set when the measurement failed

  bool ok() const { return error.empty() && ms > 0; }
  double rate() const { return ok() ? work / (ms * 1e-3) : 0; }        // FLOP/s or bytes/s
  double ratio() const { return ok() && ceiling > 0 ? rate() / ceiling : 0; }
  bool met() const { return ok() && target > 0 && ratio() >= target; }
};

struct KernelReport {
  std::string device;                 // "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)"
  bool quick = false;
  Measurement gemm, copy;             // the ceilings
  std::vector<Measurement> targets;   // GPU.md targets, in GPU.md's order
  std::vector<Measurement> ops;       // per-op bandwidth (or FLOP rate) table
  std::vector<Measurement> details;   // parts behind the targets: fwd / bwd, dense references
  int failures() const;
};

// Runs every measurement on the current CUDA device and prints the report; throws stepwise::Error when there is no
// device or when some measurement failed (after printing and writing everything that did not).
void run_kernel_benchmarks(const KernelBenchOptions& options);

// The copy ceiling: device-to-device copies of `bytes`, work = read + write bytes (also used by bench decode).
Measurement measure_copy_ceiling(int64_t bytes);

// Printing and JSON (bench_kernels_report.cpp).
std::string format_rate(const Measurement& m);   // "412.3 TFLOP/s" or "3950 GB/s"
std::string format_ceiling(const Measurement& m);
void print_op_table(const KernelReport& report);
void print_target_table(const KernelReport& report);
void write_report_json(const KernelReport& report, const std::string& path);

}  // namespace stepwise::cli
