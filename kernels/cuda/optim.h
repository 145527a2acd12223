// CUDA optimizer ops (see kernels/ops/optim.h): AdamW over fp32 master weights with fp32 moments, optionally
// refreshing a bf16 copy of the weights in the same pass; gradient norms and clipping. Reductions write to device
// memory so a training step needs no host synchronisation until the caller reads the result.
#pragma once
#include "cuda/device.h"
#include "ops/optim.h"

namespace stepwise::cuda {

// One launch over p.n elements; param_copy (n, may be null) receives bf16(param) after the update.
void adamw_update(const AdamWParams& p, bf16* param_copy, cudaStream_t stream = nullptr);
void sum_squares(const float* x, int64_t n, float* out, cudaStream_t stream = nullptr);   // *out += sum x^2 (device)
void scale_inplace(float* x, int64_t n, float s, cudaStream_t stream = nullptr);
void count_nonfinite(const float* x, int64_t n, int32_t* out, cudaStream_t stream = nullptr);  // *out += count
// Converts n fp32 values to bf16 (weights for the forward, test inputs) and back.
void convert(const float* in, bf16* out, int64_t n, cudaStream_t stream = nullptr);
void convert(const bf16* in, float* out, int64_t n, cudaStream_t stream = nullptr);

}  // namespace stepwise::cuda
