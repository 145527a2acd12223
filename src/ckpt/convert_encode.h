// Encoding fp32 parameters into a checkpoint dtype: which tensors a dtype stores how (fp8 only for decoder-layer
// linear weights, with 128x128 block scales), and the stored bytes. Pure functions over a ParamSpec and its values.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "model/param_table.h"

namespace stepwise {

enum class WeightDType : uint8_t { fp32, bf16, fp8 };
std::string_view weight_dtype_name(WeightDType dtype);   // "fp32", "bf16", "fp8"
WeightDType parse_weight_dtype(std::string_view text);   // throws Error listing the valid names

// True for "model.layers.{i}.moe.gate.expert_bias" (see expert_bias_specs).
bool is_expert_bias(const ParamSpec& s);

// fp8 block quantisation applies to the linear weights inside decoder layers (attention projections, routed and
// shared experts, dense MLPs). The router and lm_head stay bf16 like embeddings and norms, as DeepSeek-V3's FP8
// release keeps them: they choose discrete experts / tokens and are a small share of the bytes.
bool fp8_block_quantized(const ParamSpec& s);

// The dtype `s` is stored in under checkpoint dtype `dtype` (expert biases always stay F32).
DType stored_dtype(const ParamSpec& s, WeightDType dtype);

struct EncodedTensor {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;   // numel * dtype_size
};

// The stored tensors of one parameter: the weight, then for fp8 its "<name>_scale_inv" F32 scales of shape
// [ceil(rows/128), ceil(cols/128)] (with a leading expert dimension for 3-D weights). values: (s.count) fp32.
// Throws Error naming the tensor when fp8 quantisation meets a non-finite value.
std::vector<EncodedTensor> encode_tensor(const ParamSpec& s, const float* values, WeightDType dtype);

// Total bytes encode_tensor would produce (for shard planning without touching data).
uint64_t encoded_bytes(const ParamSpec& s, WeightDType dtype);

}  // namespace stepwise
