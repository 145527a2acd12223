// CPU reference of the bias-free linear layer y = x W^T with W stored (O, I), all three products through BLAS.
// Backward: dinp = dout W (= or +=), dweight += dout^T inp; a null gradient pointer skips that product.
#include "cpu/check.h"
#include "cpu/gemm.h"
#include "ops/dense.h"

namespace stepwise::cpu {

template <class T>
static void check_linear(const LinearParams<T>& p, const char* op) {
  require_nonnegative(p.N, op, "N");
  require_nonnegative(p.I, op, "I");
  require_nonnegative(p.O, op, "O");
}

template <class T>
void linear_forward(const LinearParams<T>& p) {
  check_linear(p, "linear_forward");
  if (p.N == 0 || p.O == 0) return;
  require_pointer(p.out, "linear_forward", "out");
  if (p.I > 0) {
    require_pointer(p.inp, "linear_forward", "inp");
    require_pointer(p.weight, "linear_forward", "weight");
  }
  // out (N, O) = inp (N, I) * weight^T (I, O)
  gemm<T>(false, true, p.N, p.O, p.I, T(1), p.inp, p.I, p.weight, p.I, T(0), p.out, p.O);
}

template <class T>
void linear_backward(const LinearParams<T>& p) {
  check_linear(p, "linear_backward");
  if (p.dinp == nullptr && p.dweight == nullptr) return;
  if (p.N == 0 || p.I == 0) return;
  if (p.O > 0) require_pointer(p.dout, "linear_backward", "dout");
  if (p.dinp != nullptr) {
    if (p.O > 0) require_pointer(p.weight, "linear_backward", "weight");
    // dinp (N, I) = dout (N, O) * weight (O, I)  [+ dinp]
    gemm<T>(false, false, p.N, p.I, p.O, T(1), p.dout, p.O, p.weight, p.I, p.accumulate_dinp ? T(1) : T(0), p.dinp,
            p.I);
  }
  if (p.dweight != nullptr && p.O > 0) {
    require_pointer(p.inp, "linear_backward", "inp");
    // dweight (O, I) += dout^T (O, N) * inp (N, I)
    gemm<T>(true, false, p.O, p.I, p.N, T(1), p.dout, p.O, p.inp, p.I, T(1), p.dweight, p.I);
  }
}

template void linear_forward<float>(const LinearParams<float>&);
template void linear_forward<double>(const LinearParams<double>&);
template void linear_backward<float>(const LinearParams<float>&);
template void linear_backward<double>(const LinearParams<double>&);

}  // namespace stepwise::cpu
