// Throughput probe for the dense CPU kernels: SGEMM through cpu/gemm.h at 1024^3, linear forward/backward and the
// fused LM head loss at transformer shapes. Prints the BLAS core in use and a GFLOP/s table; asserts nothing.
// Usage: bench_kernels_dense [repeats]   (re-executes itself with OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs)
// Measured on the 2-core dev VM while shared (load average 8-10): SkylakeX sgemm 1024^3 41-49 GFLOP/s, linear_forward
// 1024x2048->5632 43-63 GFLOP/s; Prescott (OPENBLAS_CORETYPE unset, no re-exec) 7-8 GFLOP/s for both.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/blas.h"
#include "cpu/gemm.h"
#include "ops/dense.h"
#include "ops/loss.h"

using namespace stepwise;

namespace {

// Median seconds of `repeats` timed calls after one warm-up call.
double median_seconds(const std::function<void()>& fn, int repeats) {
  fn();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::vector<float> filled(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * (static_cast<float>((i * 2654435761u) % 2001) / 1000.0f - 1.0f);
  return v;
}

struct Row {
  std::string what;
  double flops, seconds;
};

}  // namespace

int main(int argc, char** argv) {
  ensure_fast_blas(argc, argv);
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::vector<Row> rows;

  {  // SGEMM 1024^3 through the gemm helper: C = A B^T
    const int64_t n = 1024;
    auto a = filled(n * n, 1), b = filled(n * n, 1);
    std::vector<float> c(n * n);
    const double s = median_seconds(
        [&] { cpu::gemm<float>(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); }, repeats);
    rows.push_back({"sgemm 1024x1024x1024 (cpu::gemm<float>)", 2.0 * n * n * n, s});
  }
  {  // linear at an FFN shape: N tokens, I hidden, O ffn width
    const int64_t N = 1024, I = 2048, O = 5632;
    auto x = filled(N * I, 1), w = filled(O * I, 0.02f), dy = filled(N * O, 1);
    std::vector<float> y(N * O), dx(N * I), dw(O * I, 0.0f);
    LinearParams<float> p{.out = y.data(), .inp = x.data(), .weight = w.data(), .dinp = dx.data(),
                          .dweight = dw.data(), .dout = dy.data(), .N = N, .I = I, .O = O};
    rows.push_back({"linear_forward  N=1024 I=2048 O=5632", 2.0 * N * I * O,
                    median_seconds([&] { cpu::linear_forward(p); }, repeats)});
    rows.push_back({"linear_backward N=1024 I=2048 O=5632", 4.0 * N * I * O,
                    median_seconds([&] { cpu::linear_backward(p); }, repeats)});
  }
  {  // fused LM head loss: N tokens, C hidden, V vocabulary
    const int64_t N = 512, C = 2048, V = 32000;
    auto h = filled(N * C, 1), w = filled(V * C, 0.02f), dloss = std::vector<float>(N, 1.0f / N);
    std::vector<int32_t> targets(N);
    for (int64_t n = 0; n < N; ++n) targets[n] = static_cast<int32_t>((n * 7919) % V);
    std::vector<float> loss(N), lse(N), dh(N * C), dw(V * C, 0.0f);
    LmHeadLossParams<float> p{.loss = loss.data(), .lse = lse.data(), .h = h.data(), .weight = w.data(),
                              .targets = targets.data(), .dh = dh.data(), .dweight = dw.data(),
                              .dloss = dloss.data(), .N = N, .C = C, .V = V};
    rows.push_back({"lm_head_loss_forward  N=512 C=2048 V=32000", 2.0 * N * C * V,
                    median_seconds([&] { cpu::lm_head_loss_forward(p); }, 1)});
    rows.push_back({"lm_head_loss_backward N=512 C=2048 V=32000", 6.0 * N * C * V,
                    median_seconds([&] { cpu::lm_head_loss_backward(p); }, 1)});
  }

  std::printf("OpenBLAS core: %s   OpenMP threads: %d   OPENBLAS_CORETYPE=%s\n", blas_core_name().c_str(),
              omp_get_max_threads(), std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "(unset)");
  std::printf("%-44s %10s %10s\n", "kernel", "ms", "GFLOP/s");
  for (const auto& r : rows) std::printf("%-44s %10.2f %10.1f\n", r.what.c_str(), 1e3 * r.seconds, r.flops / r.seconds / 1e9);
  return 0;
}
