// MFA attention core: many query heads attend to one shared K head and one shared V head (MQA), causal,
// optionally restricted to packed segments. Memory-efficient: forward saves only the log-sum-exp per (query, head);
// backward recomputes the probabilities tile by tile. See kernels/ops.h for conventions.
#pragma once
#include <cstdint>

namespace stepwise {

// Query i of sequence b sits at position q_offset + i and sees key j iff j <= q_offset + i, and, when seg is given,
// seg[b, j] == seg[b, q_offset + i] (packed documents never attend across their boundary).
// Training: Tq == Tk, q_offset = 0. Inference with a KV cache: Tq new tokens, Tk = cached + new, q_offset = cached.
template <class T, class S = T>
struct AttentionParams {
  T* out = nullptr;              // (B, Tq, H, D)
  S* lse = nullptr;              // (B, H, Tq)    saved: log-sum-exp of the scaled scores of each query row
  const T* q = nullptr;          // (B, Tq, H, D)
  const T* k = nullptr;          // (B, Tk, D)
  const T* v = nullptr;          // (B, Tk, D)
  const int32_t* seg = nullptr;  // (B, Tk) segment id of each position, or null
  T* dq = nullptr;               // (B, Tq, H, D) backward: =
  T* dk = nullptr;               // (B, Tk, D)    backward: =
  T* dv = nullptr;               // (B, Tk, D)    backward: =
  const T* dout = nullptr;       // (B, Tq, H, D)
  int64_t B = 0, Tq = 0, Tk = 0, H = 0, D = 0, q_offset = 0;
  double scale = 0;              // score scale; 0 means 1/sqrt(D)
};

namespace cpu {
template <class T> void attention_forward(const AttentionParams<T>& p);
template <class T> void attention_backward(const AttentionParams<T>& p);  // needs q, k, v, out, lse, dout
}  // namespace cpu

}  // namespace stepwise
