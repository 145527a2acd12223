// CUDA MoE ops (see kernels/ops/moe.h): router softmax + top-k in fp32, routing plan built on the device, permute /
// combine, and grouped expert linears in one launch for all experts (variable rows per expert, read from the
// device-side offsets; no host synchronisation). All pointers, including the RoutePlan arrays, are device pointers.
#pragma once
#include "cuda/device.h"
#include "ops/moe.h"

namespace stepwise::cuda {

template <class T> void router_forward(const RouterParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void router_backward(const RouterParams<T, float>& p, cudaStream_t stream = nullptr);
void route_plan_build(const RoutePlan& plan, cudaStream_t stream = nullptr);
template <class T> void permute_forward(const PermuteParams<T>& p, cudaStream_t stream = nullptr);
template <class T> void permute_backward(const PermuteParams<T>& p, cudaStream_t stream = nullptr);
template <class T> void combine_forward(const CombineParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void combine_backward(const CombineParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void grouped_linear_forward(const GroupedLinearParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void grouped_linear_backward(const GroupedLinearParams<T, float>& p, cudaStream_t stream = nullptr);

}  // namespace stepwise::cuda
