// cuBLASLt row-major GEMM with a per-thread plan cache (see gemm.h). Row-major C = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T: the row-major storage of each matrix is its column-major transpose.
#include "cuda/gemm.h"

#include <cublasLt.h>

#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "cuda/device.h"

namespace stepwise::cuda {
namespace {

void lt_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string("cuBLASLt: ") + what + " failed (status " +
                                                           std::to_string(static_cast<int>(s)) + ")");
}

cudaDataType_t data_type(GemmType t) { return t == GemmType::bf16 ? CUDA_R_16BF : CUDA_R_32F; }

using PlanKey = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, uint32_t, uint32_t, uint32_t>;

// Largest power of two (at most 256) dividing the address. cuBLASLt's heuristic assumes 256-byte aligned operands
// unless told otherwise, so an operand that starts inside a larger buffer (a vocabulary chunk of the LM head, a
// parameter in an arena) must announce its alignment or it may get an algorithm that faults on it.
uint32_t alignment_bytes(const void* p) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && address % align != 0) align /= 2;
  return align;
}

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;   // column-major operands: a = B^T, b = A^T, c = C^T
  cublasLtMatmulAlgo_t algo{};
};

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

struct LtContext {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::map<PlanKey, Plan> plans;
  LtContext() {
    lt_check(cublasLtCreate(&handle), "cublasLtCreate");
    workspace = device_alloc(kWorkspaceBytes);
  }
  ~LtContext() {
    for (auto& [key, p] : plans) {
      cublasLtMatrixLayoutDestroy(p.a), cublasLtMatrixLayoutDestroy(p.b), cublasLtMatrixLayoutDestroy(p.c);
      cublasLtMatmulDescDestroy(p.desc);
    }
    device_free(workspace);
    cublasLtDestroy(handle);
  }
};

LtContext& context() {
  thread_local LtContext ctx;
  return ctx;
}

cublasLtMatrixLayout_t layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  lt_check(cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld),
           "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)), "batch");
    lt_check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)),
             "batch stride");
  }
  return l;
}

Plan make_plan(LtContext& ctx, const GemmArgs& g, int64_t lda, int64_t ldb, int64_t ldc, uint32_t align_a,
               uint32_t align_b, uint32_t align_c) {
  Plan p;
  lt_check(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t op_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // column-major A operand = row-major B
  const cublasOperation_t op_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;   // column-major B operand = row-major A
  lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)), "transa");
  lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)), "transb");
  const cudaDataType_t ab = data_type(g.ab_type), ct = data_type(g.c_type);
  // Column-major shapes (rows, cols) of the stored operands.
  p.a = g.trans_b ? layout(ab, g.K, g.N, ldb, g.batch, g.stride_b) : layout(ab, g.N, g.K, ldb, g.batch, g.stride_b);
  p.b = g.trans_a ? layout(ab, g.M, g.K, lda, g.batch, g.stride_a) : layout(ab, g.K, g.M, lda, g.batch, g.stride_a);
  p.c = layout(ct, g.N, g.M, ldc, g.batch, g.stride_c);

  cublasLtMatmulPreference_t pref = nullptr;
  lt_check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = kWorkspaceBytes;
  lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
           "workspace preference");
  // Column-major operand a is row-major B, b is row-major A; C is both input and output (D).
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b}, {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c}, {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
  for (const auto& [attribute, bytes] : alignments)
    lt_check(cublasLtMatmulPreferenceSetAttribute(pref, attribute, &bytes, sizeof(bytes)), "alignment preference");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(ctx.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0)
    throw std::runtime_error("cuBLASLt: no algorithm for GEMM M=" + std::to_string(g.M) + " N=" + std::to_string(g.N) +
                             " K=" + std::to_string(g.K));
  p.algo = result.algo;
  return p;
}

}  // namespace

void gemm(const GemmArgs& g, cudaStream_t stream) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  if (g.K <= 0) throw std::runtime_error("cuda::gemm: K must be > 0 (cuBLASLt rejects an empty reduction)");
  const int64_t lda = g.lda ? g.lda : (g.trans_a ? g.M : g.K);
  const int64_t ldb = g.ldb ? g.ldb : (g.trans_b ? g.K : g.N);
  const int64_t ldc = g.ldc ? g.ldc : g.N;
  LtContext& ctx = context();
  const uint32_t align_a = alignment_bytes(g.a), align_b = alignment_bytes(g.b), align_c = alignment_bytes(g.c);
  const PlanKey key{static_cast<int>(g.ab_type), static_cast<int>(g.c_type), g.trans_a, g.trans_b, g.M, g.N, g.K,
                    lda, ldb, ldc, g.batch, g.stride_a, g.stride_b, g.stride_c, align_a, align_b, align_c};
  auto it = ctx.plans.find(key);
  if (it == ctx.plans.end())
    it = ctx.plans.emplace(key, make_plan(ctx, g, lda, ldb, ldc, align_a, align_b, align_c)).first;
  const Plan& p = it->second;
  lt_check(cublasLtMatmul(ctx.handle, p.desc, &g.alpha, g.b, p.a, g.a, p.b, &g.beta, g.c, p.c, g.c, p.c, &p.algo,
                          ctx.workspace, kWorkspaceBytes, stream),
           "cublasLtMatmul");
}

}  // namespace stepwise::cuda
