// Fused LM head + cross-entropy, chunked over the vocabulary so the (N, V) logits never exist at once.
// See kernels/ops.h for conventions.
#pragma once
#include <cstdint>

namespace stepwise {

// Forward: for each row n, logits = h[n] W^T; lse[n] = logsumexp(logits); loss[n] = lse[n] - logits[targets[n]],
// or 0 when targets[n] == ignore_index. Backward: for gradient weights dloss[n] (the caller folds in 1/num_tokens,
// DPO coefficients, ...): dh[n] = dloss[n] (softmax - onehot) W (=), dW += sum_n dloss[n] (softmax - onehot)^T h[n].
// Ignored rows contribute nothing.
template <class T, class S = T>
struct LmHeadLossParams {
  S* loss = nullptr;                 // (N)
  S* lse = nullptr;                  // (N)     saved
  const T* h = nullptr;              // (N, C)
  const T* weight = nullptr;         // (V, C)
  const int32_t* targets = nullptr;  // (N)
  T* dh = nullptr;                   // (N, C)  backward: =
  S* dweight = nullptr;              // (V, C)  backward: +=; may be null
  const S* dloss = nullptr;          // (N)
  int64_t N = 0, C = 0, V = 0;
  int64_t chunk = 4096;              // vocabulary columns per chunk
  int32_t ignore_index = -100;
};

namespace cpu {
template <class T> void lm_head_loss_forward(const LmHeadLossParams<T>& p);
template <class T> void lm_head_loss_backward(const LmHeadLossParams<T>& p);  // needs h, weight, targets, lse, dloss
}  // namespace cpu

}  // namespace stepwise
