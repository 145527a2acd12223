// CPU BLAS set-up: make OpenBLAS use its fast kernels on AVX-512 CPUs it misdetects (Debian's 0.3.21 says "Prescott"),
// and measure the SGEMM rate a run actually gets so benchmarks can report it beside their own numbers.
#pragma once
#include <string>

namespace stepwise {

// Call first thing in main(). OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so if the CPU has AVX-512 and the
// variable is unset, this sets OPENBLAS_CORETYPE=SkylakeX and re-executes the program (once; guarded by an env flag).
void ensure_fast_blas(int argc, char** argv);

// The OpenBLAS core name in use ("SkylakeX", "Haswell", "Prescott", ...).
std::string blas_core_name();

// Measured single-precision GEMM rate in GFLOP/s (median of a few n x n x n products, all threads).
double measure_sgemm_gflops(int n = 1024, int repeats = 5);

}  // namespace stepwise
