// The CUDA op catalogue: the same params structs as kernels/ops.h, run on the device (namespace stepwise::cuda).
// Every pointer is a device pointer; every op takes a stream and launches asynchronously. Compiles without nvcc.
#pragma once
#include "cuda/attention.h"
#include "cuda/dense.h"
#include "cuda/device.h"
#include "cuda/gemm.h"
#include "cuda/loss.h"
#include "cuda/moe.h"
#include "cuda/optim.h"
#include "cuda/paged_attention.h"
#include "cuda/sampling.h"
