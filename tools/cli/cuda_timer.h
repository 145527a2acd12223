// Timing of CUDA work for the benchmarks: a pair of cudaEvents around a batch of launches on one stream, the median
// over timed repetitions after warm-up. Batches and repetitions adapt to the op's cost: short ops are launched many
// times per sample (so launch gaps and event resolution do not dominate), slow ones get fewer samples (time budget).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "cuda/device.h"

namespace stepwise::cli {

struct TimingPlan {
  int warmup = 1;            // untimed calls first (cuBLASLt plans, lazy module loading); then one call is
                             // timed to size the samples, and is not a sample itself
  int max_samples = 10;      // timed samples; the median is reported
  double sample_ms = 1.0;    // each sample batches enough calls to last about this long
  double budget_ms = 3000;   // timed GPU time allowed for all samples; a slow op gets fewer (at least one)
};

struct Timing {
  double median_ms = 0;      // one call
  int samples = 0;           // timed samples behind the median
  int calls_per_sample = 0;
};

// Owns a CUDA event (timing enabled).
class CudaEvent {
 public:
  CudaEvent() { STEPWISE_CUDA_CHECK(cudaEventCreate(&event_)); }
  ~CudaEvent() { (void)cudaEventDestroy(event_); }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record(cudaStream_t stream) { STEPWISE_CUDA_CHECK(cudaEventRecord(event_, stream)); }
  void synchronize() { STEPWISE_CUDA_CHECK(cudaEventSynchronize(event_)); }
  // Milliseconds from `start` to this event; both must have completed.
  float since(const CudaEvent& start) const {
    float ms = 0;
    STEPWISE_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
    return ms;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

// GPU milliseconds of `calls` back-to-back calls of `launch` (which enqueues its work on `stream`).
inline double time_calls(const std::function<void()>& launch, cudaStream_t stream, int calls) {
  CudaEvent start, stop;
  start.record(stream);
  for (int i = 0; i < calls; ++i) launch();
  stop.record(stream);
  stop.synchronize();
  return stop.since(start);
}

// Median GPU time of one call of `launch`. Faults inside the timed work surface here as exceptions (the event
// synchronisation reports them), so a broken kernel fails its own measurement.
inline Timing median_time(const std::function<void()>& launch, cudaStream_t stream, const TimingPlan& plan = {}) {
  for (int i = 0; i < plan.warmup; ++i) launch();
  STEPWISE_CUDA_CHECK(cudaStreamSynchronize(stream));
  STEPWISE_CUDA_CHECK(cudaGetLastError());
  const double one_ms = std::max(time_calls(launch, stream, 1), 1e-4);
  Timing t;
  t.calls_per_sample = static_cast<int>(std::clamp(std::ceil(plan.sample_ms / one_ms), 1.0, 1000.0));
  const double sample_cost = one_ms * t.calls_per_sample;
  t.samples = static_cast<int>(std::clamp(std::floor(plan.budget_ms / sample_cost), 1.0, double(plan.max_samples)));
  std::vector<double> per_call;
  for (int s = 0; s < t.samples; ++s)
    per_call.push_back(time_calls(launch, stream, t.calls_per_sample) / t.calls_per_sample);
  std::sort(per_call.begin(), per_call.end());
  const size_t n = per_call.size();
  t.median_ms = n % 2 ? per_call[n / 2] : 0.5 * (per_call[n / 2 - 1] + per_call[n / 2]);
  return t;
}

}  // namespace stepwise::cli
