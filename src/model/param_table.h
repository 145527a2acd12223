// ParamTable: every parameter of a Step-3 model in one contiguous arena (and a matching gradient arena), named as in
// the public checkpoint (REFERENCE.md), generated from ONE list (step3_param_specs) so names, shapes and offsets
// cannot drift. Carries per-tensor flags (weight decay, AFD side). Knows nothing about the forward pass.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/step3_config.h"

namespace stepwise {

// Attention-FFN disaggregation: which serving instance holds a tensor.
enum class ParamSide : uint8_t { attention, ffn };   // attention: embeddings, norms, attention, router, lm_head

enum class ParamInit : uint8_t { normal, ones };

struct ParamSpec {
  std::string name;              // HF name, e.g. "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;    // [out, in] for linears; [E, out, in] for routed experts
  int64_t offset = 0;            // elements from the arena start (multiple of kParamAlign); kNotHeld in a table of
                                 // the other AFD side
  int64_t count = 0;             // product of shape
  int64_t layer = -1;            // decoder layer, -1 for embed_tokens / model.norm / lm_head
  ParamSide side = ParamSide::attention;
  ParamInit init = ParamInit::normal;
  double init_std = 0;           // for ParamInit::normal
  bool weight_decay = false;     // true for matrices except embeddings; false for norms and embeddings
  bool routed_expert = false;    // moe.{gate,up,down}_proj: only top_k of E experts are active per token
};

constexpr int64_t kParamAlign = 16;   // elements; every tensor starts 64-byte aligned for fp32
constexpr int64_t kNotHeld = -1;      // ParamSpec::offset of a tensor this table does not hold

// The one list: every tensor of the model in checkpoint order (embed, layers 0..L-1, norm, lm_head) with offsets.
// Allocates nothing, so it is cheap even for the full 316B configuration. With score_head (reward models) a last
// tensor "score.weight" [1, C] follows lm_head (as HF's *ForSequenceClassification names it).
std::vector<ParamSpec> step3_param_specs(const Step3Config& cfg, bool score_head = false);

inline constexpr const char* kScoreHeadName = "score.weight";

// Arena size in elements (end of the last held tensor, rounded up to kParamAlign).
int64_t param_arena_size(const std::vector<ParamSpec>& specs);

template <class T>
class ParamTable {
 public:
  // Zero-filled values (call init()); the gradient arena exists only when with_grad. score_head: see step3_param_specs.
  // only_side: hold just that AFD side's tensors, packed (a serving rank of one side); the other side's specs stay
  // listed with offset kNotHeld, and value() / grad() of them are null.
  explicit ParamTable(const Step3Config& cfg, bool with_grad = true, bool score_head = false,
                      std::optional<ParamSide> only_side = std::nullopt);

  const Step3Config& config() const { return cfg_; }
  const std::vector<ParamSpec>& specs() const { return specs_; }
  int64_t arena_size() const { return static_cast<int64_t>(values_.size()); }   // elements incl. padding
  int64_t num_params() const;                                                     // sum of held counts
  std::optional<ParamSide> only_side() const { return only_side_; }
  static bool holds(const ParamSpec& s) { return s.offset != kNotHeld; }
  bool has_grad() const { return with_grad_; }

  T* data() { return values_.data(); }              // (arena_size)
  const T* data() const { return values_.data(); }
  T* grad_data() { return grads_.data(); }          // (arena_size), null without gradients
  const T* grad_data() const { return grads_.data(); }

  const ParamSpec* find(std::string_view name) const;   // null when unknown
  const ParamSpec& spec(std::string_view name) const;   // throws Error naming the unknown tensor
  T* value(const ParamSpec& s) { return holds(s) ? values_.data() + s.offset : nullptr; }
  const T* value(const ParamSpec& s) const { return holds(s) ? values_.data() + s.offset : nullptr; }
  T* grad(const ParamSpec& s) { return grads_.empty() || !holds(s) ? nullptr : grads_.data() + s.offset; }
  T* value(std::string_view name) { return value(spec(name)); }
  const T* value(std::string_view name) const { return value(spec(name)); }
  T* grad(std::string_view name) { return grad(spec(name)); }

  // Seeded init: normal(0, init_std) for matrices (0.02; output projections 0.02/sqrt(2L)), ones for norms.
  // Each tensor draws from its own stream (seed, tensor index), so float and double tables get equal values.
  void init(uint64_t seed);
  void zero_grad();

  // Copies values (not gradients) from a table of the same config and side in another precision.
  template <class U>
  void copy_values_from(const ParamTable<U>& other) {
    if (other.arena_size() != arena_size()) fail_layout_mismatch(other.arena_size());
    for (int64_t i = 0; i < arena_size(); ++i) values_[i] = static_cast<T>(other.data()[i]);
  }

 private:
  Step3Config cfg_;
  std::vector<ParamSpec> specs_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<T> values_;
  std::vector<T> grads_;
  bool with_grad_ = false;
  std::optional<ParamSide> only_side_;
  void fail_layout_mismatch(int64_t other_size) const;
};

extern template class ParamTable<float>;
extern template class ParamTable<double>;

}  // namespace stepwise
