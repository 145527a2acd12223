// Grouped per-expert linears on the device (semantics in kernels/ops/moe.h, oracle kernels/cpu/grouped_linear.cpp):
// out = inp W_e^T, dinp = dout W_e, dweight_e += dout_e^T inp_e, each ONE launch for all experts. The rows per expert
// are read from the device offsets inside the kernel (no host synchronisation): a persistent grid walks a tile list
// every block derives from the offsets (grouped_gemm.cuh). bf16 uses tensor cores (cp.async pipeline, ldmatrix,
// mma.sync, fp32 accumulation); fp32 uses exact fp32 FMAs on CUDA cores (the check path).
#include "cpu/check.h"
#include "cuda/grouped_gemm.cuh"
#include "cuda/moe.h"

namespace stepwise::cuda {
namespace {

using cpu::kernel_fail;
using cpu::require_pointer;

template <class T>
bool check_grouped(const GroupedLinearParams<T, float>& p, const char* op) {
  if (p.E < 0 || p.I < 0 || p.O < 0) kernel_fail(op, "E, I, O = ", p.E, ", ", p.I, ", ", p.O, " must be >= 0");
  if (p.E > grouped_gemm::kMaxExperts)
    kernel_fail(op, "E = ", p.E, " exceeds the ", grouped_gemm::kMaxExperts, " experts supported");
  if (p.E == 0 || p.I == 0 || p.O == 0) return false;
  require_pointer(p.offsets, op, "offsets");
  require_pointer(p.weight, op, "weight");
  return true;
}

// Launches the persistent grid: as many blocks as fit on the device at once (no more are useful), sized at the most
// dynamic shared memory any E needs (the bf16 pipeline needs more than the default 48 KiB; prepare_launch opts in and
// caches the occupancy per kernel and device).
template <class T, bool kRowsInK, bool kAKContig, bool kBKContig>
void launch(const grouped_gemm::Problem& g, cudaStream_t stream) {
  const auto kernel = grouped_gemm::grouped_gemm_kernel<T, kRowsInK, kAKContig, kBKContig>;
  const size_t max_smem = grouped_gemm::shared_bytes<T, kAKContig, kBKContig>(grouped_gemm::kMaxExperts);
  const int grid = multiprocessor_count() *
                   prepare_launch(kernel, grouped_gemm::kBlockThreads<T>, max_smem, "cuda::grouped_linear");
  const size_t smem = grouped_gemm::shared_bytes<T, kAKContig, kBKContig>(g.E);
  kernel<<<grid, grouped_gemm::kBlockThreads<T>, smem, stream>>>(g);
  STEPWISE_CUDA_LAUNCH_CHECK("grouped_gemm_kernel");
}

}  // namespace

template <class T>
void grouped_linear_forward(const GroupedLinearParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::grouped_linear_forward";
  if (!check_grouped(p, op)) return;
  require_pointer(p.inp, op, "inp");
  require_pointer(p.out, op, "out");
  launch<T, /*rows_in_k=*/false, /*a_k_contig=*/true, /*b_k_contig=*/true>(grouped_gemm::forward_problem(p), stream);
}

template <class T>
void grouped_linear_backward(const GroupedLinearParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::grouped_linear_backward";
  if (!check_grouped(p, op)) return;
  if (!p.dinp && !p.dweight) return;
  require_pointer(p.dout, op, "dout");
  if (p.dinp)
    launch<T, /*rows_in_k=*/false, /*a_k_contig=*/true, /*b_k_contig=*/false>(grouped_gemm::dinp_problem(p), stream);
  if (p.dweight) {
    require_pointer(p.inp, op, "inp");
    launch<T, /*rows_in_k=*/true, /*a_k_contig=*/false, /*b_k_contig=*/false>(grouped_gemm::dweight_problem(p),
                                                                              stream);
  }
}

template void grouped_linear_forward<float>(const GroupedLinearParams<float, float>&, cudaStream_t);
template void grouped_linear_forward<bf16>(const GroupedLinearParams<bf16, float>&, cudaStream_t);
template void grouped_linear_backward<float>(const GroupedLinearParams<float, float>&, cudaStream_t);
template void grouped_linear_backward<bf16>(const GroupedLinearParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
