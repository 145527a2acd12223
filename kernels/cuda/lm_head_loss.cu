// CUDA fused LM head + cross-entropy, chunked over the vocabulary: per chunk one cuBLASLt GEMM writes the fp32 logits
// of that chunk only (scratch (N, chunk) fp32, stream-ordered allocation per call), and a row kernel folds them into an
// online max / sum of exponentials per row; the last chunk writes lse and loss (fp32). The backward recomputes each
// chunk's logits, forms dlogits = dloss * (softmax - onehot) and runs two GEMMs: dh (fp32 accumulator, = on the first
// chunk and += after; rounded to T at the end) and dweight (fp32 +=). The (N, V) logits never exist at once.
// Targets are device data: a target outside [0, V) that is not ignore_index gives a NaN loss (no host check).
#include <algorithm>
#include <type_traits>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/gemm.h"
#include "cuda/grid_stride.cuh"
#include "cuda/loss.h"

namespace stepwise::cuda {
namespace {

constexpr int kRowThreads = 256;   // threads per row block (a multiple of 32, as block_sum needs)

template <class T>
constexpr GemmType gemm_type() {
  return std::is_same_v<T, float> ? GemmType::f32 : GemmType::bf16;
}

// Device scratch allocated on the stream (cudaMallocAsync) and released on it when the op returns or throws, so the
// host never waits. The default pool (release threshold 0) hands idle memory back at the next synchronisation, so a
// call after a sync maps its scratch again (cheap next to the GEMMs); back-to-back calls reuse it.
class StreamScratch {
 public:
  StreamScratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes > 0) STEPWISE_CUDA_CHECK(cudaMallocAsync(&ptr_, bytes, stream));
  }
  ~StreamScratch() {
    if (ptr_ != nullptr) (void)cudaFreeAsync(ptr_, stream_);
  }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  template <class U>
  U* at(size_t byte_offset) const {
    return reinterpret_cast<U*>(static_cast<char*>(ptr_) + byte_offset);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

// Byte offsets rounded up to 256 so every sub-buffer of a scratch allocation is aligned for any element type.
size_t aligned_bytes(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Thread mapping: block n reduces row n of the chunk's logits (cw values from column v0) into the running max and sum
// of exponentials of that row; the first chunk starts the state, the last one writes lse[n] and loss[n].
__global__ void lse_chunk_kernel(const float* __restrict__ logits, float* __restrict__ run_max,
                                 float* __restrict__ run_sum, float* __restrict__ target_logit,
                                 const int32_t* __restrict__ targets, float* __restrict__ lse,
                                 float* __restrict__ loss, int64_t cw, int64_t v0, int64_t V, int32_t ignore_index,
                                 bool first, bool last) {
  const int64_t n = blockIdx.x;
  const float* row = logits + n * cw;   // (cw)
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cw; j += blockDim.x) m = fmaxf(m, row[j]);
  const float old_max = first ? -INFINITY : run_max[n];
  const float new_max = fmaxf(old_max, block_max(m));
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < cw; j += blockDim.x) s += expf(row[j] - new_max);
  s = block_sum(s);
  if (threadIdx.x != 0) return;
  const float sum = (first ? 0.f : run_sum[n] * expf(old_max - new_max)) + s;
  const int32_t t = targets[n];
  float t_logit = first ? 0.f : target_logit[n];
  if (t >= v0 && t < v0 + cw) t_logit = row[t - v0];
  if (last) {
    const float l = new_max + logf(sum);
    lse[n] = l;
    loss[n] = t == ignore_index ? 0.f : (t >= 0 && t < V ? l - t_logit : NAN);
  } else {
    run_max[n] = new_max, run_sum[n] = sum, target_logit[n] = t_logit;
  }
}

// Thread mapping: one thread per element i = n * cw + j of the chunk (grid-stride loop over N * cw).
// dlogits[n, j] = dloss[n] * (exp(logit - lse[n]) - [v0 + j == target]), 0 for ignored rows. dlogits may alias logits
// (T = float): each element is read and then written by the same thread.
template <class T>
__global__ void dlogits_chunk_kernel(T* dlogits, const float* logits, const int32_t* __restrict__ targets,
                                     const float* __restrict__ lse, const float* __restrict__ dloss, int64_t N,
                                     int64_t cw, int64_t v0, int32_t ignore_index) {
  for (int64_t i = global_thread_index(); i < N * cw; i += global_thread_count()) {
    const int64_t n = i / cw, j = i - n * cw;
    const int32_t t = targets[n];
    float d = 0.f;
    if (t != ignore_index) {
      const float scale = dloss[n];
      d = scale * expf(logits[i] - lse[n]);
      if (t == v0 + j) d -= scale;
    }
    dlogits[i] = from_float<T>(d);
  }
}

// Thread mapping: one thread per element (grid-stride loop).
template <class T>
__global__ void round_kernel(T* __restrict__ out, const float* __restrict__ in, int64_t n) {
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) out[i] = from_float<T>(in[i]);
}

template <class T>
void check_lm_head(const LmHeadLossParams<T, float>& p, const char* op) {
  cpu::require_nonnegative(p.N, op, "N");
  if (p.C <= 0) cpu::kernel_fail(op, "C = ", p.C, " must be positive");
  if (p.V <= 0) cpu::kernel_fail(op, "V = ", p.V, " must be positive");
  if (p.V > 0x7fffffff) cpu::kernel_fail(op, "V = ", p.V, " does not fit the int32 targets");
  if (p.chunk <= 0) cpu::kernel_fail(op, "chunk = ", p.chunk, " must be positive");
  if (p.N > 0x7fffffff) cpu::kernel_fail(op, "N = ", p.N, " exceeds the grid limit of 2^31 - 1 rows");
  if (p.N == 0) return;
  cpu::require_pointer(p.h, op, "h");
  cpu::require_pointer(p.weight, op, "weight");
  cpu::require_pointer(p.targets, op, "targets");
  cpu::require_pointer(p.lse, op, "lse");
}

// logits (N, cw) fp32 = h (N, C) * weight[v0 : v0 + cw]^T (C, cw)
template <class T>
void chunk_logits(const LmHeadLossParams<T, float>& p, int64_t v0, int64_t cw, float* logits, cudaStream_t stream) {
  GemmArgs g;
  g.a = p.h, g.b = p.weight + v0 * p.C, g.c = logits;
  g.ab_type = gemm_type<T>(), g.c_type = GemmType::f32;
  g.trans_b = true;
  g.M = p.N, g.N = cw, g.K = p.C;
  gemm(g, stream);
}

}  // namespace

template <class T>
void lm_head_loss_forward(const LmHeadLossParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::lm_head_loss_forward";
  check_lm_head(p, op);
  if (p.N == 0) return;
  cpu::require_pointer(p.loss, op, "loss");
  const int64_t chunk = std::min(p.chunk, p.V);
  const size_t logits_bytes = aligned_bytes(sizeof(float) * p.N * chunk);
  const size_t row_bytes = aligned_bytes(sizeof(float) * p.N);
  StreamScratch scratch(logits_bytes + 3 * row_bytes, stream);
  float* logits = scratch.at<float>(0);                                     // (N, chunk)
  float* run_max = scratch.at<float>(logits_bytes);                         // (N)
  float* run_sum = scratch.at<float>(logits_bytes + row_bytes);             // (N)
  float* target_logit = scratch.at<float>(logits_bytes + 2 * row_bytes);    // (N)
  for (int64_t v0 = 0; v0 < p.V; v0 += chunk) {
    const int64_t cw = std::min(chunk, p.V - v0);
    chunk_logits(p, v0, cw, logits, stream);
    lse_chunk_kernel<<<static_cast<unsigned>(p.N), kRowThreads, 0, stream>>>(
        logits, run_max, run_sum, target_logit, p.targets, p.lse, p.loss, cw, v0, p.V, p.ignore_index, v0 == 0,
        v0 + cw >= p.V);
    STEPWISE_CUDA_LAUNCH_CHECK("lse_chunk_kernel");
  }
}

template <class T>
void lm_head_loss_backward(const LmHeadLossParams<T, float>& p, cudaStream_t stream) {
  const char* op = "cuda::lm_head_loss_backward";
  check_lm_head(p, op);
  if (p.N == 0) return;
  cpu::require_pointer(p.dloss, op, "dloss");
  cpu::require_pointer(p.dh, op, "dh");
  constexpr bool kFloat = std::is_same_v<T, float>;
  const int64_t chunk = std::min(p.chunk, p.V);
  // fp32 logits (N, chunk); for bf16 also their T copy (N, chunk) as the GEMM input and an fp32 dh accumulator (N, C).
  const size_t logits_bytes = aligned_bytes(sizeof(float) * p.N * chunk);
  const size_t dlogits_bytes = kFloat ? 0 : aligned_bytes(sizeof(T) * p.N * chunk);
  const size_t dh_bytes = kFloat ? 0 : aligned_bytes(sizeof(float) * p.N * p.C);
  StreamScratch scratch(logits_bytes + dlogits_bytes + dh_bytes, stream);
  float* logits = scratch.at<float>(0);
  T* dlogits = kFloat ? reinterpret_cast<T*>(logits) : scratch.at<T>(logits_bytes);
  float* dh_acc = kFloat ? reinterpret_cast<float*>(p.dh) : scratch.at<float>(logits_bytes + dlogits_bytes);
  for (int64_t v0 = 0; v0 < p.V; v0 += chunk) {
    const int64_t cw = std::min(chunk, p.V - v0);
    chunk_logits(p, v0, cw, logits, stream);
    dlogits_chunk_kernel<<<grid_stride_blocks(p.N * cw), kElementwiseThreads, 0, stream>>>(
        dlogits, logits, p.targets, p.lse, p.dloss, p.N, cw, v0, p.ignore_index);
    STEPWISE_CUDA_LAUNCH_CHECK("dlogits_chunk_kernel");
    GemmArgs dh;   // dh (N, C) (= on the first chunk, += after) dlogits (N, cw) * weight[v0 : v0 + cw] (cw, C)
    dh.a = dlogits, dh.b = p.weight + v0 * p.C, dh.c = dh_acc;
    dh.ab_type = gemm_type<T>(), dh.c_type = GemmType::f32;
    dh.M = p.N, dh.N = p.C, dh.K = cw;
    dh.beta = v0 == 0 ? 0.f : 1.f;
    gemm(dh, stream);
    if (p.dweight != nullptr) {
      GemmArgs dw;   // dweight[v0 : v0 + cw] (cw, C) += dlogits^T (cw, N) * h (N, C)
      dw.a = dlogits, dw.b = p.h, dw.c = p.dweight + v0 * p.C;
      dw.ab_type = gemm_type<T>(), dw.c_type = GemmType::f32;
      dw.trans_a = true;
      dw.M = cw, dw.N = p.C, dw.K = p.N;
      dw.beta = 1.f;
      gemm(dw, stream);
    }
  }
  if constexpr (!kFloat) {
    round_kernel<<<grid_stride_blocks(p.N * p.C), kElementwiseThreads, 0, stream>>>(p.dh, dh_acc, p.N * p.C);
    STEPWISE_CUDA_LAUNCH_CHECK("round_kernel");
  }
}

template void lm_head_loss_forward<float>(const LmHeadLossParams<float, float>&, cudaStream_t);
template void lm_head_loss_forward<bf16>(const LmHeadLossParams<bf16, float>&, cudaStream_t);
template void lm_head_loss_backward<float>(const LmHeadLossParams<float, float>&, cudaStream_t);
template void lm_head_loss_backward<bf16>(const LmHeadLossParams<bf16, float>&, cudaStream_t);

}  // namespace stepwise::cuda
