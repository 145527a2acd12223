// Grouped per-expert linears on the device (semantics in kernels/ops/moe.h, oracle kernels/cpu/grouped_linear.cpp):
// out = inp W_e^T, dinp = dout W_e, dweight_e += dout_e^T inp_e, each ONE launch for all experts. The rows per expert
// are read from the device offsets inside the kernel (no host synchronisation): a persistent grid walks a tile list
// every block derives from the offsets (grouped_gemm.cuh). bf16 uses tensor cores (WMMA, fp32 accumulation); fp32
// uses exact fp32 FMAs on CUDA cores (the check path).
#include <algorithm>

#include "cpu/check.h"
#include "cuda/grouped_gemm.cuh"
#include "cuda/moe.h"

namespace stepwise::cuda {
namespace {

using cpu::kernel_fail;
using cpu::require_pointer;

template <class T>
bool vector_loads_ok(const T* base, int64_t ld) {
  return ld % grouped_gemm::kVec<T> == 0 && reinterpret_cast<uintptr_t>(base) % 16 == 0;
}

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

}  // namespace

// out (R, O) = inp (R, I) W_e^T per expert: A = inp (k-contiguous), B(k, n) = W_e[n, k] (k-contiguous).
template <class T>
void grouped_linear_forward(const GroupedLinearParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::grouped_linear_forward";
  if (!check_grouped(p, op)) return;
  require_pointer(p.inp, op, "inp");
  require_pointer(p.out, op, "out");
  grouped_gemm::Problem g;
  g.a = p.inp, g.b = p.weight, g.c = p.out, g.offsets = p.offsets, g.E = static_cast<int>(p.E);
  g.N = p.O, g.K = p.I;
  g.lda = p.I, g.ldb = p.I, g.ldc = p.O, g.b_expert_stride = p.O * p.I;
  g.a_vec = vector_loads_ok(p.inp, p.I), g.b_vec = vector_loads_ok(p.weight, p.I);
  grouped_gemm::launch<T, /*rows_in_k=*/false, /*a_k_contig=*/true, /*b_k_contig=*/true>(g, stream);
}

// dinp (R, I) = dout (R, O) W_e: A = dout (k-contiguous), B(k, n) = W_e[k, n] (n-contiguous).
// dweight_e (O, I) += dout_e^T inp_e: A(m, k) = dout[row0 + k, m] (m-contiguous), B(k, n) = inp[row0 + k, n].
template <class T>
void grouped_linear_backward(const GroupedLinearParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::grouped_linear_backward";
  if (!check_grouped(p, op)) return;
  if (!p.dinp && !p.dweight) return;
  require_pointer(p.dout, op, "dout");
  if (p.dinp) {
    grouped_gemm::Problem g;
    g.a = p.dout, g.b = p.weight, g.c = p.dinp, g.offsets = p.offsets, g.E = static_cast<int>(p.E);
    g.N = p.I, g.K = p.O;
    g.lda = p.O, g.ldb = p.I, g.ldc = p.I, g.b_expert_stride = p.O * p.I;
    g.a_vec = vector_loads_ok(p.dout, p.O), g.b_vec = vector_loads_ok(p.weight, p.I);
    grouped_gemm::launch<T, /*rows_in_k=*/false, /*a_k_contig=*/true, /*b_k_contig=*/false>(g, stream);
  }
  if (p.dweight) {
    require_pointer(p.inp, op, "inp");
    grouped_gemm::Problem g;
    g.a = p.dout, g.b = p.inp, g.c = p.dweight, g.offsets = p.offsets, g.E = static_cast<int>(p.E);
    g.M = p.O, g.N = p.I;
    g.lda = p.O, g.ldb = p.I, g.ldc = p.I, g.c_expert_stride = p.O * p.I;
    g.a_vec = vector_loads_ok(p.dout, p.O), g.b_vec = vector_loads_ok(p.inp, p.I);
    grouped_gemm::launch<T, /*rows_in_k=*/true, /*a_k_contig=*/false, /*b_k_contig=*/false>(g, stream);
  }
}

template void grouped_linear_forward<float>(const GroupedLinearParams<float, float>&, cudaStream_t);
template void grouped_linear_forward<bf16>(const GroupedLinearParams<bf16, float>&, cudaStream_t);
template void grouped_linear_backward<float>(const GroupedLinearParams<float, float>&, cudaStream_t);
template void grouped_linear_backward<bf16>(const GroupedLinearParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
