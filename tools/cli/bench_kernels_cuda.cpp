// The measurements of `stepwise bench kernels` (CUDA builds only): the ceilings (cuBLASLt bf16 GEMM 8192^3,
// device-to-device copy), the GPU.md kernel targets (MFA attention fwd+bwd, paged decode attention, grouped expert
// GEMMs vs dense GEMMs of the same FLOPs) and the per-op bandwidth table. All work runs on the default stream and is
// timed with cudaEvents (cuda_timer.h); inputs are random bf16/fp32 values, index arrays are valid by construction.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cli/bench_kernels.h"
#include "cli/cuda_timer.h"
#include "core/error.h"
#include "cuda/ops_cuda.h"

namespace stepwise::cli {

namespace {

using cuda::bf16;
using cuda::DeviceBuffer;

// Sizes of one run. The ceilings always use the reference sizes (GEMM 8192^3, 1 GiB copy); --quick shrinks the rest.
struct Sizes {
  int64_t gemm_n = 8192;
  int64_t copy_bytes = int64_t(1) << 30;
  int64_t attention_batch = 2;              // sequences of 4096 tokens
  int64_t decode_kv_bytes = int64_t(1) << 30;  // K + V bytes read per decode call (sets the number of sequences)
  int64_t tokens = 65536;                   // rows of the per-op table (bf16 (N, 1024) = 128 MiB, well over L2)
  int64_t lm_tokens = 16384;                // LM head rows (step3-mini's micro-batch 8 x 2048)
  int64_t adamw_params = int64_t(64) << 20;
};

Sizes sizes_for(bool quick) {
  Sizes z;
  if (quick) {
    z.attention_batch = 1;
    z.decode_kv_bytes = int64_t(256) << 20;
    z.tokens = 16384;
    z.lm_tokens = 4096;
    z.adamw_params = int64_t(16) << 20;
  }
  return z;
}

// Step-3's attention shape (GPU.md) and step3-mini's FFN / MoE / vocabulary shapes (recipes/models/step3-mini.yaml).
constexpr int64_t kStep3Heads = 64, kStep3HeadDim = 256, kStep3Seq = 4096;
constexpr int64_t kMiniHidden = 1024, kMiniHeads = 16, kMiniHeadDim = 128, kMiniFfn = 2816, kMiniVocab = 32000;
constexpr int64_t kMiniExperts = 16, kMiniTopK = 3, kMiniExpertDim = 704;
constexpr int64_t kDecodeBlock = 16;   // tokens per KV block, as the serving engine's default (serve/engine.h)

// ---- device data -------------------------------------------------------------------------------------------------

// Host pool of random values in [-1, 1). A device tensor is filled by uploading one converted slice of the pool as
// often as needed (period 4M elements): values that look random to the hardware, at upload speed.
const std::vector<float>& random_pool() {
  static const std::vector<float> pool = [] {
    std::vector<float> v(size_t(1) << 22);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (float& f : v) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      f = static_cast<float>(static_cast<double>(x >> 40) * (2.0 / 16777216.0) - 1.0);
    }
    return v;
  }();
  return pool;
}

inline float to_element(float x, float) { return x; }
inline bf16 to_element(float x, bf16) { return __float2bfloat16_rn(x); }

template <class T>
DeviceBuffer<T> random_buffer(int64_t n, uint64_t salt, float scale = 1.f) {
  DeviceBuffer<T> buf(n);
  const std::vector<float>& pool = random_pool();
  const int64_t chunk = std::min<int64_t>(n, static_cast<int64_t>(pool.size()));
  std::vector<T> host(static_cast<size_t>(chunk));
  const size_t start = static_cast<size_t>(salt * 2654435761ull) % pool.size();
  for (int64_t i = 0; i < chunk; ++i) host[i] = to_element(scale * pool[(start + i) % pool.size()], T{});
  for (int64_t done = 0; done < n; done += chunk)
    cuda::copy_to_device(buf.data() + done, host.data(), sizeof(T) * static_cast<size_t>(std::min(chunk, n - done)));
  return buf;
}

template <class T>
DeviceBuffer<T> zeros(int64_t n) {
  DeviceBuffer<T> buf(n);
  if (n > 0) STEPWISE_CUDA_CHECK(cudaMemset(buf.data(), 0, sizeof(T) * static_cast<size_t>(n)));
  return buf;
}

// Expert ids (N, K): K distinct experts per token, uniformly at random (partial Fisher-Yates), fixed seed.
std::vector<int32_t> random_routing(int64_t N, int64_t E, int64_t K) {
  std::mt19937_64 rng(17);
  std::vector<int32_t> experts(static_cast<size_t>(E)), idx(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n) {
    std::iota(experts.begin(), experts.end(), 0);
    for (int64_t k = 0; k < K; ++k) {
      const int64_t j = k + static_cast<int64_t>(rng() % static_cast<uint64_t>(E - k));
      std::swap(experts[k], experts[j]);
      idx[n * K + k] = experts[k];
    }
  }
  return idx;
}

// ---- measuring ---------------------------------------------------------------------------------------------------

struct Ceiling {
  double rate = 0;      // FLOP/s or bytes/s; 0 when its measurement failed (ratios then read 0)
  std::string name;
};

void print_progress(const Measurement& m) {
  std::printf("  %-30s %-36s %9.3f ms %14s", m.name.c_str(), m.shape.c_str(), m.ms, format_rate(m).c_str());
  if (m.ceiling > 0) std::printf("  (%.1f%% of %s)", 100 * m.ratio(), m.ceiling_name.c_str());
  std::printf("\n");
  std::fflush(stdout);
}

// Times `launch` and describes the result; `work` is the FLOPs (flops) or bytes of one call.
Measurement timed(const std::string& name, const std::string& shape, bool flops, double work, const Ceiling& ceiling,
                  const std::function<void()>& launch) {
  Measurement m;
  m.name = name;
  m.shape = shape;
  m.flops = flops;
  m.work = work;
  m.ceiling = ceiling.rate;
  m.ceiling_name = ceiling.name;
  m.ms = median_time(launch, nullptr).median_ms;
  print_progress(m);
  return m;
}

// Runs `body`; when it throws, records a failed entry named `name` in `into` and goes on with the next measurement.
void guarded(std::vector<Measurement>& into, const std::string& name, const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    Measurement m;
    m.name = name;
    m.error = e.what();
    into.push_back(m);
    std::printf("  %-30s FAILED: %s\n", name.c_str(), e.what());
    std::fflush(stdout);
    (void)cudaGetLastError();   // clears a non-sticky error so the next measurement can run
  }
}

std::string describe_device() {
  int dev = 0;
  STEPWISE_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  STEPWISE_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  char gib[32];
  std::snprintf(gib, sizeof gib, "%.1f", static_cast<double>(prop.totalGlobalMem) / (1u << 30));
  return cat(prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount, " SMs, ", gib, " GiB)");
}

// ---- ceilings ----------------------------------------------------------------------------------------------------

Measurement measure_gemm_ceiling(int64_t n) {
  auto a = random_buffer<bf16>(n * n, 1), b = random_buffer<bf16>(n * n, 2);
  DeviceBuffer<bf16> c(n * n);
  cuda::GemmArgs g;
  g.a = a.data(), g.b = b.data(), g.c = c.data();
  g.ab_type = g.c_type = cuda::GemmType::bf16;
  g.M = g.N = g.K = n;
  return timed("bf16 GEMM (cuBLASLt)", cat(n, "^3, bf16 out, fp32 accumulate"), true, 2.0 * n * n * n, {},
               [&] { cuda::gemm(g, nullptr); });
}

// ---- GPU.md targets ----------------------------------------------------------------------------------------------

// MFA attention forward + backward at Step-3's shape: 64 query heads of 256 share one K/V head, causal. Useful
// FLOPs count the causal pairs (T (T + 1) / 2 per sequence): forward 2 matmuls (QK^T, PV), backward 4 (dV, dP, dQ,
// dK), 2 * D FLOPs each per pair and head; the backward's recomputation of QK^T is not counted.
void measure_attention(KernelReport& r, const Sizes& z, const Ceiling& gemm) {
  const int64_t B = z.attention_batch, T = kStep3Seq, H = kStep3Heads, D = kStep3HeadDim;
  const std::string shape = cat("B=", B, " T=", T, " H=", H, " D=", D, " causal");
  auto q = random_buffer<bf16>(B * T * H * D, 11), k = random_buffer<bf16>(B * T * D, 12);
  auto v = random_buffer<bf16>(B * T * D, 13), dout = random_buffer<bf16>(B * T * H * D, 14);
  DeviceBuffer<bf16> out(B * T * H * D), dq(B * T * H * D), dk(B * T * D), dv(B * T * D);
  DeviceBuffer<float> lse(B * H * T);
  AttentionParams<bf16, float> p;
  p.out = out.data(), p.lse = lse.data(), p.q = q.data(), p.k = k.data(), p.v = v.data();
  p.dq = dq.data(), p.dk = dk.data(), p.dv = dv.data(), p.dout = dout.data();
  p.B = B, p.Tq = T, p.Tk = T, p.H = H, p.D = D, p.q_offset = 0, p.scale = 0;
  const double pair_flops = static_cast<double>(B) * T * (T + 1) / 2 * H * D * 2;   // one matmul over the pairs
  const Measurement fwd = timed("attention fwd", shape, true, 2 * pair_flops, gemm,
                                [&] { cuda::attention_forward(p, nullptr); });
  r.details.push_back(fwd);
  const Measurement bwd = timed("attention bwd", shape, true, 4 * pair_flops, gemm,
                                [&] { cuda::attention_backward(p, nullptr); });
  r.details.push_back(bwd);
  Measurement total = fwd;
  total.name = "MFA attention fwd+bwd";
  total.ms = fwd.ms + bwd.ms;
  total.work = fwd.work + bwd.work;
  total.target = 0.55;
  r.targets.push_back(total);
}

// Paged decode attention: one query token per sequence at position ctx - 1 (it reads all ctx cached keys and values),
// 64 heads of 256 sharing one bf16 K/V head, blocks of 16 tokens scattered over the pool in random order. Bytes are
// the K and V bytes read; the number of sequences is chosen so they total decode_kv_bytes.
void measure_decode(KernelReport& r, const Sizes& z, int64_t ctx, const Ceiling& copy) {
  const int64_t H = kStep3Heads, D = kStep3HeadDim, block = kDecodeBlock;
  const int64_t kv_bytes_per_seq = ctx * D * 2 * static_cast<int64_t>(sizeof(bf16));
  const int64_t S = std::max<int64_t>(1, z.decode_kv_bytes / kv_bytes_per_seq);
  const int64_t blocks_per_seq = ctx / block, num_blocks = S * blocks_per_seq;
  std::vector<int32_t> table(static_cast<size_t>(num_blocks));   // (S, blocks_per_seq)
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937_64(7));
  std::vector<int64_t> q_start(static_cast<size_t>(S + 1)), pos0(static_cast<size_t>(S), ctx - 1);
  std::iota(q_start.begin(), q_start.end(), 0);
  DeviceBuffer<int32_t> d_table(table);
  DeviceBuffer<int64_t> d_q_start(q_start), d_pos0(pos0);
  auto k_pool = random_buffer<bf16>(num_blocks * block * D, 21);   // (num_blocks, block, D)
  auto v_pool = random_buffer<bf16>(num_blocks * block * D, 22);
  auto q = random_buffer<bf16>(S * H * D, 23);
  DeviceBuffer<bf16> out(S * H * D);
  PagedAttentionParams<bf16> p;
  p.out = out.data(), p.q = q.data(), p.k_pool = k_pool.data(), p.v_pool = v_pool.data();
  p.block_table = d_table.data(), p.q_start = d_q_start.data(), p.pos0 = d_pos0.data();
  p.S = S, p.max_blocks = blocks_per_seq, p.block_size = block, p.num_blocks = num_blocks, p.H = H, p.D = D;
  Measurement m = timed(cat("MFA decode attention, ", ctx / 1024, "K ctx"),
                        cat("S=", S, " H=", H, " D=", D, " block=", block), false,
                        static_cast<double>(S * kv_bytes_per_seq), copy,
                        [&] { cuda::paged_attention_forward(p, nullptr); });
  m.target = 0.80;
  r.targets.push_back(m);
}

// The expert FFN of one step3-mini MoE layer (gate and up: 1024 -> 704, down: 704 -> 1024; 16 experts) over
// rows_per_expert rows each, forward and backward (dinp and dweight), one grouped launch per linear and direction;
// against cuBLASLt dense GEMMs of the same shapes over all rows with one weight (the same FLOPs).
void measure_grouped(KernelReport& r, int64_t rows_per_expert, double target) {
  const int64_t E = kMiniExperts, C = kMiniHidden, F = kMiniExpertDim, R = E * rows_per_expert;
  const std::string shape = cat("E=", E, " rows/expert=", rows_per_expert, " C=", C, " F=", F);
  std::vector<int64_t> offsets(static_cast<size_t>(E + 1));
  for (int64_t e = 0; e <= E; ++e) offsets[e] = e * rows_per_expert;
  DeviceBuffer<int64_t> d_offsets(offsets);
  auto x = random_buffer<bf16>(R * C, 31), act = random_buffer<bf16>(R * F, 32);
  auto w_gate = random_buffer<bf16>(E * F * C, 33), w_up = random_buffer<bf16>(E * F * C, 34);
  auto w_down = random_buffer<bf16>(E * C * F, 35);
  auto dy_f = random_buffer<bf16>(R * F, 36), dy_c = random_buffer<bf16>(R * C, 37);
  DeviceBuffer<bf16> gate_out(R * F), up_out(R * F), down_out(R * C), dx_c(R * C), dx_f(R * F);
  auto dw_gate = zeros<float>(E * F * C), dw_up = zeros<float>(E * F * C), dw_down = zeros<float>(E * C * F);

  auto linear = [&](const DeviceBuffer<bf16>& inp, const DeviceBuffer<bf16>& w, DeviceBuffer<bf16>& out,
                    DeviceBuffer<bf16>& dinp, DeviceBuffer<float>& dw, const DeviceBuffer<bf16>& dout, int64_t I,
                    int64_t O) {
    GroupedLinearParams<bf16, float> g;
    g.out = out.data(), g.inp = inp.data(), g.weight = w.data(), g.dinp = dinp.data(), g.dweight = dw.data();
    g.dout = dout.data(), g.offsets = d_offsets.data(), g.E = E, g.I = I, g.O = O;
    return g;
  };
  const GroupedLinearParams<bf16, float> gate = linear(x, w_gate, gate_out, dx_c, dw_gate, dy_f, C, F);
  const GroupedLinearParams<bf16, float> up = linear(x, w_up, up_out, dx_c, dw_up, dy_f, C, F);
  const GroupedLinearParams<bf16, float> down = linear(act, w_down, down_out, dx_f, dw_down, dy_c, F, C);
  const GroupedLinearParams<bf16, float>* all[] = {&gate, &up, &down};

  // Dense equivalents over all R rows with expert 0's weight: out = inp W^T, dinp = dout W, dW += dout^T inp.
  auto dense_forward = [&](const GroupedLinearParams<bf16, float>& g) {
    cuda::GemmArgs a;
    a.a = g.inp, a.b = g.weight, a.c = g.out, a.ab_type = a.c_type = cuda::GemmType::bf16;
    a.trans_b = true, a.M = R, a.N = g.O, a.K = g.I;
    cuda::gemm(a, nullptr);
  };
  auto dense_backward = [&](const GroupedLinearParams<bf16, float>& g) {
    cuda::GemmArgs d;
    d.a = g.dout, d.b = g.weight, d.c = g.dinp, d.ab_type = d.c_type = cuda::GemmType::bf16;
    d.M = R, d.N = g.I, d.K = g.O;
    cuda::gemm(d, nullptr);
    cuda::GemmArgs w;
    w.a = g.dout, w.b = g.inp, w.c = g.dweight, w.ab_type = cuda::GemmType::bf16, w.c_type = cuda::GemmType::f32;
    w.trans_a = true, w.M = g.O, w.N = g.I, w.K = R, w.beta = 1;
    cuda::gemm(w, nullptr);
  };

  const double fwd_flops = 2.0 * R * (2 * C * F + F * C), bwd_flops = 2 * fwd_flops;
  const Ceiling none;
  const Measurement dense_fwd = timed("dense GEMMs fwd (same FLOPs)", shape, true, fwd_flops, none, [&] {
    for (const auto* g : all) dense_forward(*g);
  });
  r.details.push_back(dense_fwd);
  const Measurement dense_bwd = timed("dense GEMMs bwd (same FLOPs)", shape, true, bwd_flops, none, [&] {
    for (const auto* g : all) dense_backward(*g);
  });
  r.details.push_back(dense_bwd);
  const Ceiling dense{(fwd_flops + bwd_flops) / ((dense_fwd.ms + dense_bwd.ms) * 1e-3), "dense GEMM, same FLOPs"};
  const Measurement fwd = timed("grouped expert GEMMs fwd", shape, true, fwd_flops, dense, [&] {
    for (const auto* g : all) cuda::grouped_linear_forward(*g, nullptr);
  });
  r.details.push_back(fwd);
  const Measurement bwd = timed("grouped expert GEMMs bwd", shape, true, bwd_flops, dense, [&] {
    for (const auto* g : all) cuda::grouped_linear_backward(*g, nullptr);
  });
  r.details.push_back(bwd);
  Measurement total = fwd;
  total.name = cat("grouped expert GEMMs fwd+bwd, ", rows_per_expert, " rows/e");
  total.ms = fwd.ms + bwd.ms;
  total.work = fwd_flops + bwd_flops;
  total.target = target;
  r.targets.push_back(total);
}

// ---- per-op table ------------------------------------------------------------------------------------------------

constexpr double kBf16 = sizeof(bf16), kF32 = sizeof(float), kI32 = sizeof(int32_t), kI64 = sizeof(int64_t);

void measure_rmsnorm(KernelReport& r, const Sizes& z, const Ceiling& copy) {
  const int64_t N = z.tokens, C = kMiniHidden;
  const std::string shape = cat("N=", N, " C=", C);
  auto inp = random_buffer<bf16>(N * C, 41), weight = random_buffer<bf16>(C, 42), dout = random_buffer<bf16>(N * C, 43);
  auto branch = random_buffer<bf16>(N * C, 44);
  DeviceBuffer<bf16> out(N * C), dinp(N * C);
  DeviceBuffer<float> rstd(N);
  auto dweight = zeros<float>(C);
  RmsNormParams<bf16, float> p;
  p.out = out.data(), p.rstd = rstd.data(), p.inp = inp.data(), p.weight = weight.data();
  p.dinp = dinp.data(), p.dweight = dweight.data(), p.dout = dout.data(), p.N = N, p.C = C;
  const double rows = N * C * kBf16;
  r.ops.push_back(timed("rmsnorm fwd", shape, false, 2 * rows + C * kBf16 + N * kF32, copy,
                        [&] { cuda::rmsnorm_forward(p, nullptr); }));
  r.ops.push_back(timed("rmsnorm bwd", shape, false, 3 * rows + C * kBf16 + N * kF32 + 2 * C * kF32, copy,
                        [&] { cuda::rmsnorm_backward(p, nullptr); }));
  // x (N, C) += branch, then out = rmsnorm(x): x read and written, branch read, out written.
  r.ops.push_back(timed("add+rmsnorm fwd", shape, false, 4 * rows + C * kBf16 + N * kF32, copy,
                        [&] { cuda::add_rmsnorm_forward(inp.data(), branch.data(), p, nullptr); }));
}

void measure_rope(KernelReport& r, const Sizes& z, const Ceiling& copy) {
  const int64_t N = z.tokens, H = kMiniHeads, D = kMiniHeadDim;
  std::vector<int32_t> pos(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) pos[i] = static_cast<int32_t>(i % 4096);
  DeviceBuffer<int32_t> d_pos(pos);
  auto x = random_buffer<bf16>(N * H * D, 51);
  RopeParams<bf16> p;
  p.x = x.data(), p.pos = d_pos.data(), p.N = N, p.H = H, p.D = D;
  const std::string shape = cat("N=", N, " H=", H, " D=", D);
  const double bytes = 2 * N * H * D * kBf16 + N * kI32;   // x read and written in place
  r.ops.push_back(timed("rope fwd", shape, false, bytes, copy, [&] { cuda::rope_forward(p, nullptr); }));
  r.ops.push_back(timed("rope bwd", shape, false, bytes, copy, [&] { cuda::rope_backward(p, nullptr); }));
}

void measure_swiglu(KernelReport& r, const Sizes& z, const Ceiling& copy) {
  const int64_t N = z.tokens, F = kMiniFfn;
  auto gate = random_buffer<bf16>(N * F, 61), up = random_buffer<bf16>(N * F, 62);
  auto dout = random_buffer<bf16>(N * F, 63);
  DeviceBuffer<bf16> out(N * F), dgate(N * F), dup(N * F);
  SwigluParams<bf16> p;
  p.out = out.data(), p.gate = gate.data(), p.up = up.data(), p.dgate = dgate.data(), p.dup = dup.data();
  p.dout = dout.data(), p.N = N, p.F = F;
  const std::string shape = cat("N=", N, " F=", F);
  const double rows = N * F * kBf16;
  r.ops.push_back(timed("swiglu fwd", shape, false, 3 * rows, copy, [&] { cuda::swiglu_forward(p, nullptr); }));
  r.ops.push_back(timed("swiglu bwd", shape, false, 5 * rows, copy, [&] { cuda::swiglu_backward(p, nullptr); }));
}

// Fused LM head + cross-entropy: FLOP-bound (a chunked GEMM), so it is set against the GEMM rate. Useful FLOPs:
// forward 2 N C V (logits), backward 4 N C V (dh and dW; the logits' recomputation is not counted).
void measure_lm_head(KernelReport& r, const Sizes& z, const Ceiling& gemm) {
  const int64_t N = z.lm_tokens, C = kMiniHidden, V = kMiniVocab;
  std::vector<int32_t> targets(static_cast<size_t>(N));
  std::mt19937_64 rng(71);
  for (auto& t : targets) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(V));
  DeviceBuffer<int32_t> d_targets(targets);
  DeviceBuffer<float> dloss(std::vector<float>(static_cast<size_t>(N), 1.f / static_cast<float>(N)));
  auto h = random_buffer<bf16>(N * C, 72), weight = random_buffer<bf16>(V * C, 73, 0.05f);
  DeviceBuffer<float> loss(N), lse(N);
  DeviceBuffer<bf16> dh(N * C);
  auto dweight = zeros<float>(V * C);
  LmHeadLossParams<bf16, float> p;
  p.loss = loss.data(), p.lse = lse.data(), p.h = h.data(), p.weight = weight.data(), p.targets = d_targets.data();
  p.dh = dh.data(), p.dweight = dweight.data(), p.dloss = dloss.data(), p.N = N, p.C = C, p.V = V;
  const std::string shape = cat("N=", N, " C=", C, " V=", V);
  const double flops = 2.0 * N * C * V;
  r.ops.push_back(timed("lm head loss fwd", shape, true, flops, gemm, [&] { cuda::lm_head_loss_forward(p, nullptr); }));
  r.ops.push_back(timed("lm head loss bwd", shape, true, 2 * flops, gemm,
                        [&] { cuda::lm_head_loss_backward(p, nullptr); }));
}

void measure_router(KernelReport& r, const Sizes& z, const Ceiling& copy) {
  const int64_t N = z.tokens, E = kMiniExperts, K = kMiniTopK;
  auto logits = random_buffer<bf16>(N * E, 81);
  auto dweights = random_buffer<float>(N * K, 82);
  DeviceBuffer<float> probs(N * E), weights(N * K), load(E), aux(1);
  DeviceBuffer<int32_t> idx(N * K);
  DeviceBuffer<bf16> dlogits(N * E);
  RouterParams<bf16, float> p;
  p.probs = probs.data(), p.idx = idx.data(), p.weights = weights.data(), p.load = load.data();
  p.aux_loss = aux.data(), p.logits = logits.data(), p.dlogits = dlogits.data(), p.dweights = dweights.data();
  p.N = N, p.E = E, p.K = K, p.aux_coef = 0.01;
  const std::string shape = cat("N=", N, " E=", E, " K=", K);
  r.ops.push_back(timed("router fwd", shape, false, N * E * (kBf16 + kF32) + N * K * (kI32 + kF32) + E * kF32, copy,
                        [&] { cuda::router_forward(p, nullptr); }));
  r.ops.push_back(timed("router bwd", shape, false, N * E * (kF32 + kBf16) + N * K * (kI32 + 2 * kF32), copy,
                        [&] { cuda::router_backward(p, nullptr); }));
}

// Routing plan, permute and combine over step3-mini's routing (16 experts, top-3) of N tokens of width 1024. Gathered
// rows count once per use (R = N K rows of xp / yp / dyp).
void measure_permute_combine(KernelReport& r, const Sizes& z, const Ceiling& copy) {
  const int64_t N = z.tokens, E = kMiniExperts, K = kMiniTopK, C = kMiniHidden, R = N * K;
  DeviceBuffer<int32_t> idx(random_routing(N, E, K));
  DeviceBuffer<int64_t> offsets(E + 1);
  DeviceBuffer<int32_t> row_token(R), row_of_slot(R);
  RoutePlan plan;   // host struct over device arrays
  plan.offsets = offsets.data(), plan.row_token = row_token.data(), plan.row_of_slot = row_of_slot.data();
  plan.idx = idx.data(), plan.N = N, plan.E = E, plan.K = K;
  // idx read; row_token, row_of_slot and offsets written.
  r.ops.push_back(timed("route plan", cat("N=", N, " E=", E, " K=", K), false, 3 * R * kI32 + (E + 1) * kI64, copy,
                        [&] { cuda::route_plan_build(plan, nullptr); }));

  auto x = random_buffer<bf16>(N * C, 91), dxp = random_buffer<bf16>(R * C, 92);
  DeviceBuffer<bf16> xp(R * C), dx(N * C);
  PermuteParams<bf16> pp;
  pp.xp = xp.data(), pp.x = x.data(), pp.dx = dx.data(), pp.dxp = dxp.data(), pp.plan = &plan, pp.C = C;
  const std::string shape = cat("N=", N, " K=", K, " C=", C);
  const double token_rows = N * C * kBf16, slot_rows = R * C * kBf16;
  r.ops.push_back(timed("permute fwd", shape, false, 2 * slot_rows + R * kI32, copy,
                        [&] { cuda::permute_forward(pp, nullptr); }));
  r.ops.push_back(timed("permute bwd", shape, false, slot_rows + token_rows + R * kI32, copy,
                        [&] { cuda::permute_backward(pp, nullptr); }));

  auto yp = random_buffer<bf16>(R * C, 93), dy = random_buffer<bf16>(N * C, 94);
  auto weights = random_buffer<float>(N * K, 95);
  DeviceBuffer<bf16> y(N * C), dyp(R * C);
  DeviceBuffer<float> dweights(N * K);
  CombineParams<bf16, float> cp;
  cp.y = y.data(), cp.yp = yp.data(), cp.weights = weights.data(), cp.dyp = dyp.data();
  cp.dweights = dweights.data(), cp.dy = dy.data(), cp.plan = &plan, cp.C = C;
  r.ops.push_back(timed("combine fwd", shape, false, slot_rows + token_rows + N * K * kF32 + R * kI32, copy,
                        [&] { cuda::combine_forward(cp, nullptr); }));
  r.ops.push_back(timed("combine bwd", shape, false, token_rows + 2 * slot_rows + 2 * N * K * kF32 + R * kI32, copy,
                        [&] { cuda::combine_backward(cp, nullptr); }));
}

// AdamW over fp32 master weights and moments, refreshing the bf16 copy: param, m, v read and written, grad read,
// copy written (30 bytes per parameter).
void measure_adamw(KernelReport& r, const Sizes& z, const Ceiling& copy) {
  const int64_t n = z.adamw_params;
  auto param = random_buffer<float>(n, 101), grad = random_buffer<float>(n, 102);
  auto m = zeros<float>(n), v = zeros<float>(n);
  DeviceBuffer<bf16> param_copy(n);
  AdamWParams p;
  p.param = param.data(), p.m = m.data(), p.v = v.data(), p.grad = grad.data(), p.n = n;
  p.step = 1, p.lr = 1e-4f, p.weight_decay = 0.1f;
  r.ops.push_back(timed("adamw (+ bf16 copy)", cat("n=", n >> 20, "M params"), false, n * (7 * kF32 + kBf16), copy,
                        [&] { cuda::adamw_update(p, param_copy.data(), nullptr); }));
}

}  // namespace

Measurement measure_copy_ceiling(int64_t bytes) {
  DeviceBuffer<uint8_t> src(bytes), dst(bytes);
  STEPWISE_CUDA_CHECK(cudaMemset(src.data(), 1, static_cast<size_t>(bytes)));
  STEPWISE_CUDA_CHECK(cudaMemset(dst.data(), 0, static_cast<size_t>(bytes)));
  return timed("device-to-device copy", cat(bytes >> 20, " MiB, bytes = read + write"), false, 2.0 * bytes, {},
               [&] {
                 STEPWISE_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), static_cast<size_t>(bytes),
                                                     cudaMemcpyDeviceToDevice, nullptr));
               });
}

void run_kernel_benchmarks(const KernelBenchOptions& options) {
  if (cuda::device_count() == 0)
    fail("bench kernels: no CUDA device found (this build has the CUDA backend, but cudaGetDeviceCount reports no "
         "usable GPU)");
  KernelReport r;
  r.quick = options.quick;
  r.device = describe_device();
  const Sizes z = sizes_for(options.quick);
  std::printf("bench kernels on %s%s; every rate is the median of timed runs after warm-up (cudaEvents)\n",
              r.device.c_str(), options.quick ? " (--quick sizes)" : "");
  std::printf("Ceilings:\n");
  std::fflush(stdout);
  std::vector<Measurement> ceilings;   // each guarded call leaves exactly one entry: measured or failed
  guarded(ceilings, "bf16 GEMM (cuBLASLt)", [&] { ceilings.push_back(measure_gemm_ceiling(z.gemm_n)); });
  r.gemm = ceilings.back();
  guarded(ceilings, "device-to-device copy", [&] { ceilings.push_back(measure_copy_ceiling(z.copy_bytes)); });
  r.copy = ceilings.back();
  const Ceiling gemm{r.gemm.rate(), cat("bf16 GEMM ", z.gemm_n, "^3")};
  const Ceiling copy{r.copy.rate(), "copy (read+write)"};

  std::printf("GPU.md targets:\n");
  guarded(r.targets, "MFA attention fwd+bwd", [&] { measure_attention(r, z, gemm); });
  for (const int64_t ctx : {int64_t(4096), int64_t(32768)})
    guarded(r.targets, cat("MFA decode attention, ", ctx / 1024, "K ctx"), [&] { measure_decode(r, z, ctx, copy); });
  guarded(r.targets, "grouped expert GEMMs fwd+bwd, 3072 rows/e", [&] { measure_grouped(r, 3072, 0.85); });
  guarded(r.targets, "grouped expert GEMMs fwd+bwd, 400 rows/e", [&] { measure_grouped(r, 400, 0.65); });

  std::printf("Per-op rates:\n");
  guarded(r.ops, "rmsnorm", [&] { measure_rmsnorm(r, z, copy); });
  guarded(r.ops, "rope", [&] { measure_rope(r, z, copy); });
  guarded(r.ops, "swiglu", [&] { measure_swiglu(r, z, copy); });
  guarded(r.ops, "lm head loss", [&] { measure_lm_head(r, z, gemm); });
  guarded(r.ops, "router", [&] { measure_router(r, z, copy); });
  guarded(r.ops, "route plan / permute / combine", [&] { measure_permute_combine(r, z, copy); });
  guarded(r.ops, "adamw", [&] { measure_adamw(r, z, copy); });

  print_op_table(r);
  print_target_table(r);
  if (!options.json_path.empty()) {
    write_report_json(r, options.json_path);
    std::printf("wrote %s\n", options.json_path.c_str());
  }
  const int failures = r.failures();
  if (failures > 0) fail("bench kernels: ", failures, " measurement(s) failed (marked FAILED above)");
}

}  // namespace stepwise::cli
