// The op catalogue of stepwise: one params struct and a *_forward / *_backward pair per op.
// Kernels are pure: they take pointers and dims, allocate nothing the caller sees, own nothing.
// Forward saves only what backward needs; parameter gradients accumulate (+=), activation gradients overwrite (=)
// unless a params field says otherwise. The CPU versions (namespace stepwise::cpu, kernels/cpu/) are the oracle:
// templated on T = float (training) and T = double (finite-difference gradient checks).
//
// Dimension letters used in shape comments:
//   N tokens (= B*T)   B sequences   T, Tq, Tk sequence lengths   C hidden size (d)   H query heads   D head_dim
//   Q share_q_dim      V vocabulary  F ffn width   E experts   K experts per token (top_k)   R = N*K routed rows
//
// Precision: params structs are templated on T, the element type of activations and weights, and S (default T), the
// type of saved statistics (rstd, lse), losses, routing probabilities/weights and parameter gradients. The CPU uses
// S = T; the CUDA bf16 path (kernels/cuda/ops_cuda.h) uses T = bf16 with S = float (fp32 gradients and statistics).
#pragma once
#include "ops/attention.h"
#include "ops/dense.h"
#include "ops/loss.h"
#include "ops/moe.h"
#include "ops/optim.h"
