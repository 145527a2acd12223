// Device weight handles of the Step-3 decoder shared by the CUDA training pass (step3_cuda_pass.cpp) and the CUDA
// serving model (src/serve/cuda/cuda_step_model.cpp): views into one parameter arena in ParamTable<float> layout,
// bound to their HF names by bind_decoder_weights (layer_binding.h). Host-only header (no CUDA headers).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "model/layer_binding.h"
#include "model/param_table.h"
#include "model/step3_config.h"

namespace stepwise {

// A parameter's compute copy (T) and its fp32 gradient (null when the model has none), views into device arenas.
template <class T>
struct CudaWeight {
  const T* w = nullptr;
  float* g = nullptr;
};

template <class T>
using CudaLayerWeights = DecoderLayerWeights<CudaWeight<T>>;

template <class T>
struct CudaDecoderWeights {
  CudaWeight<T> embed, final_norm, lm_head;
  std::vector<CudaLayerWeights<T>> layers;   // [layer]
};

// Binds every decoder weight to `values` + spec.offset (and `grads` + spec.offset when grads is not null).
template <class T>
CudaDecoderWeights<T> bind_cuda_weights(const Step3Config& cfg, const std::vector<ParamSpec>& specs, const T* values,
                                        float* grads) {
  std::unordered_map<std::string, const ParamSpec*> by_name;
  for (const ParamSpec& p : specs) by_name[p.name] = &p;
  auto ref = [&](const std::string& name) {
    auto it = by_name.find(name);
    if (it == by_name.end()) fail("CUDA model: no parameter named ", name);
    return CudaWeight<T>{values + it->second->offset, grads ? grads + it->second->offset : nullptr};
  };
  CudaDecoderWeights<T> out;
  bind_decoder_weights(cfg, ref, out.embed, out.final_norm, out.lm_head, out.layers);
  return out;
}

}  // namespace stepwise
