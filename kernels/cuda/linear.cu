// CUDA bias-free linear layer y = x W^T (W stored (O, I)) as three cuBLASLt GEMMs (cuda/gemm.h), fp32 accumulation:
// forward out (T), backward dinp = dout W (T, = or +=) and dweight += dout^T inp straight into the fp32 gradient
// (GEMM with an fp32 C and beta = 1). A null gradient pointer skips that GEMM.
#include <type_traits>

#include "cpu/check.h"
#include "cuda/dense.h"
#include "cuda/gemm.h"

namespace stepwise::cuda {
namespace {

template <class T>
constexpr GemmType gemm_type() {
  return std::is_same_v<T, float> ? GemmType::f32 : GemmType::bf16;
}

template <class T>
void check_linear(const LinearParams<T, float>& p, const char* op) {
  cpu::require_nonnegative(p.N, op, "N");
  cpu::require_nonnegative(p.I, op, "I");
  cpu::require_nonnegative(p.O, op, "O");
}

}  // namespace

template <class T>
void linear_forward(const LinearParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::linear_forward";
  check_linear(p, op);
  if (p.N == 0 || p.O == 0) return;
  cpu::require_pointer(p.out, op, "out");
  if (p.I == 0) {   // an empty reduction: out = 0
    STEPWISE_CUDA_CHECK(cudaMemsetAsync(p.out, 0, sizeof(T) * p.N * p.O, stream));
    return;
  }
  cpu::require_pointer(p.inp, op, "inp");
  cpu::require_pointer(p.weight, op, "weight");
  GemmArgs g;   // out (N, O) = inp (N, I) * weight^T (I, O)
  g.a = p.inp, g.b = p.weight, g.c = p.out;
  g.ab_type = g.c_type = gemm_type<T>();
  g.trans_b = true;
  g.M = p.N, g.N = p.O, g.K = p.I;
  gemm(g, stream);
}

template <class T>
void linear_backward(const LinearParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::linear_backward";
  check_linear(p, op);
  if (p.dinp == nullptr && p.dweight == nullptr) return;
  if (p.N == 0 || p.I == 0) return;
  if (p.O == 0) {   // dout is empty: dinp = 0 (unchanged when accumulating), dweight (0, I) has nothing
    if (p.dinp != nullptr && !p.accumulate_dinp)
      STEPWISE_CUDA_CHECK(cudaMemsetAsync(p.dinp, 0, sizeof(T) * p.N * p.I, stream));
    return;
  }
  cpu::require_pointer(p.dout, op, "dout");
  if (p.dinp != nullptr) {
    cpu::require_pointer(p.weight, op, "weight");
    GemmArgs g;   // dinp (N, I) = dout (N, O) * weight (O, I) [+ dinp]
    g.a = p.dout, g.b = p.weight, g.c = p.dinp;
    g.ab_type = g.c_type = gemm_type<T>();
    g.M = p.N, g.N = p.I, g.K = p.O;
    g.beta = p.accumulate_dinp ? 1.f : 0.f;
    gemm(g, stream);
  }
  if (p.dweight != nullptr) {
    cpu::require_pointer(p.inp, op, "inp");
    GemmArgs g;   // dweight (O, I) += dout^T (O, N) * inp (N, I), fp32 C
    g.a = p.dout, g.b = p.inp, g.c = p.dweight;
    g.ab_type = gemm_type<T>(), g.c_type = GemmType::f32;
    g.trans_a = true;
    g.M = p.O, g.N = p.I, g.K = p.N;
    g.beta = 1.f;
    gemm(g, stream);
  }
}

template void linear_forward<float>(const LinearParams<float, float>&, cudaStream_t);
template void linear_forward<bf16>(const LinearParams<bf16, float>&, cudaStream_t);
template void linear_backward<float>(const LinearParams<float, float>&, cudaStream_t);
template void linear_backward<bf16>(const LinearParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
