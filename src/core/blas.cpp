// Implementation of the OpenBLAS fast-path set-up and the SGEMM rate probe (see blas.h).
#include "core/blas.h"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" char* openblas_get_corename(void);

namespace stepwise {

static bool cpu_has_avx512f() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

void ensure_fast_blas(int argc, char** argv) {
  (void)argc;
  if (std::getenv("STEPWISE_BLAS_REEXEC")) return;
  bool reexec = false;
  if (!std::getenv("OPENBLAS_CORETYPE") && cpu_has_avx512f()) {
    const std::string core = blas_core_name();
    if (core != "SkylakeX" && core != "Cooperlake" && core != "SapphireRapids") {
      ::setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
      reexec = true;
    }
  }
  // Idle OpenMP workers must sleep, not spin: they share the cores with OpenBLAS's own threads, and spinning
  // workers made a step3-tiny training step several times slower (docs/PERF.md).
  if (!std::getenv("OMP_WAIT_POLICY")) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    reexec = true;
  }
  if (!reexec) return;
  ::setenv("STEPWISE_BLAS_REEXEC", "1", 1);
  ::execv("/proc/self/exe", argv);  // only returns on failure: then carry on with the slower settings
}

std::string blas_core_name() {
  const char* name = openblas_get_corename();
  return name ? std::string(name) : std::string("unknown");
}

double measure_sgemm_gflops(int n, int repeats) {
  std::vector<float> a(static_cast<size_t>(n) * n), b(a.size()), c(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
    b[i] = static_cast<float>((i * 104729) % 1000) / 1000.0f - 0.5f;
  }
  std::vector<double> rates;
  for (int r = 0; r < repeats + 1; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) rates.push_back(2.0 * n * n * static_cast<double>(n) / s / 1e9);  // first run warms up
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace stepwise
