// `stepwise bench train --device cuda`: the CUDA part of the training benchmark (cmd_bench_train_cuda.cpp).
#pragma once
#include <cstdint>
#include <string>

namespace stepwise::cli {

// Times forward + backward + AdamW steps of Step3CudaModel (dtype "bf16" or "fp32") on random tokens (batch, T) for
// each T of seqs_text (comma-separated), and prints tokens/s, model FLOP/s, the bf16 GEMM rate measured in the same
// run, their ratio (GPU.md target: >= 45%) and the device memory in use. Error without a CUDA build or device.
void bench_train_cuda(const std::string& model_path, const std::string& seqs_text, int64_t batch, int steps,
                      const std::string& dtype);

}  // namespace stepwise::cli
