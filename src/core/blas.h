// CPU BLAS set-up: make OpenBLAS use its fast kernels on AVX-512 CPUs it misdetects (Debian's 0.3.21 says "Prescott"),
// and measure the SGEMM rate a run actually gets so benchmarks can report it beside their own numbers.
#pragma once
#include <string>

namespace stepwise {

// Call first thing in main(). OpenBLAS reads OPENBLAS_CORETYPE and libgomp reads OMP_WAIT_POLICY only when they load,
// so when either needs setting (AVX-512 CPU without OPENBLAS_CORETYPE: SkylakeX; OMP_WAIT_POLICY unset: PASSIVE)
// this sets them and re-executes the program once (guarded by an env flag). Variables the user set are kept.
void ensure_fast_blas(int argc, char** argv);

// The OpenBLAS core name in use ("SkylakeX", "Haswell", "Prescott", ...).
std::string blas_core_name();

// Measured single-precision GEMM rate in GFLOP/s (median of a few n x n x n products, all threads).
double measure_sgemm_gflops(int n = 1024, int repeats = 5);

}  // namespace stepwise
