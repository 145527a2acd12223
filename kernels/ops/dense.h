// Dense ops: embedding, RMSNorm, RoPE, linear (BLAS), SwiGLU, residual add. See kernels/ops.h for conventions.
#pragma once
#include <cstdint>

namespace stepwise {

template <class T, class S = T>
struct EmbeddingParams {
  T* out = nullptr;             // (N, C)   forward output
  S* dtable = nullptr;          // (V, C)   backward: += rows of dout
  const T* table = nullptr;     // (V, C)
  const T* dout = nullptr;      // (N, C)
  const int32_t* ids = nullptr; // (N)      each in [0, V)
  int64_t N = 0, C = 0, V = 0;
};

template <class T, class S = T>
struct RmsNormParams {
  T* out = nullptr;             // (N, C)   out = inp * rstd * weight
  S* rstd = nullptr;            // (N)      saved for backward: 1 / sqrt(mean(inp^2) + eps)
  const T* inp = nullptr;       // (N, C)
  const T* weight = nullptr;    // (C)
  T* dinp = nullptr;            // (N, C)   backward: = (or += when accumulate_dinp)
  S* dweight = nullptr;         // (C)      backward: +=
  const T* dout = nullptr;      // (N, C)
  int64_t N = 0, C = 0;
  S eps = S(1e-5);
  bool accumulate_dinp = false;
};

// Rotary embedding, rotate-half (NeoX) pairing (i, i + D/2) over all D dims, applied in place to x (N, H, D).
// Angle of pair i at position p: p * theta^(-2i/D). Backward rotates dx by the negative angle, in place.
template <class T>
struct RopeParams {
  T* x = nullptr;                     // (N, H, D) forward: rotated in place; backward: dx rotated back in place
  const int32_t* pos = nullptr;       // (N)       position of each token
  int64_t N = 0, H = 0, D = 0;
  double theta = 500000.0;
};

// y = x W^T, W stored (O, I) as in HF checkpoints. Null gradient pointers skip that gradient (frozen weights).
template <class T, class S = T>
struct LinearParams {
  T* out = nullptr;             // (N, O)
  const T* inp = nullptr;       // (N, I)
  const T* weight = nullptr;    // (O, I)
  T* dinp = nullptr;            // (N, I)   backward: = (or += when accumulate_dinp); may be null
  S* dweight = nullptr;         // (O, I)   backward: +=; may be null
  const T* dout = nullptr;      // (N, O)
  int64_t N = 0, I = 0, O = 0;
  bool accumulate_dinp = false;
};

// out = silu(gate) * up, elementwise over (N, F).
template <class T>
struct SwigluParams {
  T* out = nullptr;             // (N, F)
  const T* gate = nullptr;      // (N, F)
  const T* up = nullptr;        // (N, F)
  T* dgate = nullptr;           // (N, F)   backward: =
  T* dup = nullptr;             // (N, F)   backward: =
  const T* dout = nullptr;      // (N, F)
  int64_t N = 0, F = 0;
};

namespace cpu {
template <class T> void embedding_forward(const EmbeddingParams<T>& p);
template <class T> void embedding_backward(const EmbeddingParams<T>& p);
template <class T> void rmsnorm_forward(const RmsNormParams<T>& p);
template <class T> void rmsnorm_backward(const RmsNormParams<T>& p);
template <class T> void rope_forward(const RopeParams<T>& p);
template <class T> void rope_backward(const RopeParams<T>& p);
template <class T> void linear_forward(const LinearParams<T>& p);
template <class T> void linear_backward(const LinearParams<T>& p);
template <class T> void swiglu_forward(const SwigluParams<T>& p);
template <class T> void swiglu_backward(const SwigluParams<T>& p);
template <class T> void add_inplace(T* y, const T* x, int64_t n);   // y += x
}  // namespace cpu

}  // namespace stepwise
