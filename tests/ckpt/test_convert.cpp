// Round trips of `stepwise convert` on real files: training -> HF (sharded) -> training is bit-identical in fp32;
// the serving split partitions every tensor exactly once by ParamSpec::side; bf16 and block-fp8 serving weights load
// back within their rounding bounds; loading one side of a serving checkpoint touches only that side.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ckpt/convert.h"
#include "ckpt/convert_load.h"
#include "ckpt/fp8.h"
#include "convert_fixture.h"

using namespace stepwise;
using namespace stepwise::test;
using nlohmann::json;

namespace {
// Every tensor of a training checkpoint (fp32) by name.
std::map<std::string, std::vector<float>> read_all(const fs::path& file) {
  const SafetensorsFile f = SafetensorsFile::open(file);
  std::map<std::string, std::vector<float>> out;
  for (const TensorInfo& t : f.tensors()) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    f.read_f32(t.name, t.shape, v.data());
    out[t.name] = std::move(v);
  }
  return out;
}

std::vector<float> load_arena(const fs::path& dir, const SmallModel& m, const LoadOptions& opt = {},
                              LoadedCheckpoint* info = nullptr) {
  std::vector<float> arena(static_cast<size_t>(param_arena_size(m.table.specs())), 7.0f);
  LoadedCheckpoint loaded = load_checkpoint_f32(dir, m.cfg, m.table.specs(), arena.data(), opt);
  if (info) *info = std::move(loaded);
  return arena;
}
}  // namespace

TEST(Convert, TrainToShardedHfToTrainIsBitIdentical) {
  const fs::path root = fresh_dir("hf_roundtrip");
  SmallModel m(42);
  write_training_checkpoint(root / "train", m);
  ConvertOptions to_hf;
  to_hf.format = ConvertFormat::hf;
  to_hf.shard_bytes = 60'000;   // forces several shards
  const ConvertSummary s = convert_checkpoint(root / "train", root / "hf", to_hf);
  EXPECT_EQ(s.source_layout, CheckpointLayout::training);
  EXPECT_EQ(s.dtype, WeightDType::fp32);
  ASSERT_GT(s.weight_files.size(), 2u);

  const json index = json::parse(read_file(root / "hf" / "model.safetensors.index.json"));
  uint64_t total = 0;
  const int64_t shards = static_cast<int64_t>(s.weight_files.size());
  for (int64_t k = 1; k <= shards; ++k) {
    const fs::path shard = root / "hf" / hf_shard_name(k, shards);
    ASSERT_TRUE(fs::exists(shard)) << shard;
    const SafetensorsFile f = SafetensorsFile::open(shard);
    for (const TensorInfo& t : f.tensors()) {
      EXPECT_EQ(index["weight_map"][t.name], hf_shard_name(k, shards)) << t.name;
      total += t.end - t.begin;
    }
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), m.table.specs().size() + m.biases.size());
  for (const char* f : {"config.json", "tokenizer.model", "tokenizer.json", "generation_config.json"})
    EXPECT_TRUE(fs::exists(root / "hf" / f)) << f;
  EXPECT_EQ(read_file(root / "hf" / "tokenizer.model"), read_file(root / "train" / "tokenizer.model"));

  ConvertOptions to_train;
  to_train.format = ConvertFormat::train;
  convert_checkpoint(root / "hf", root / "back", to_train);
  EXPECT_FALSE(fs::exists(root / "back" / "optimizer.safetensors"));
  EXPECT_FALSE(fs::exists(root / "back" / "trainer_state.json"));
  EXPECT_TRUE(fs::exists(root / "back" / "generation_config.json"));
  EXPECT_EQ(read_file(root / "back" / "tokenizer.json"), read_file(root / "train" / "tokenizer.json"));
  EXPECT_EQ(Step3Config::load(root / "back").to_json(), m.cfg.to_json());
  const auto original = read_all(root / "train" / "model.safetensors");
  const auto back = read_all(root / "back" / "model.safetensors");
  ASSERT_EQ(back.size(), original.size());
  for (const auto& [name, v] : original) {
    ASSERT_TRUE(back.count(name)) << name;
    ASSERT_EQ(std::memcmp(v.data(), back.at(name).data(), v.size() * sizeof(float)), 0) << name;
  }
  // The loader reads the HF layout directly, bit-identically too, including the expert biases.
  LoadedCheckpoint info;
  const std::vector<float> arena = load_arena(root / "hf", m, {}, &info);
  EXPECT_EQ(info.layout, CheckpointLayout::hf);
  for (const ParamSpec& p : m.table.specs())
    ASSERT_EQ(std::memcmp(arena.data() + p.offset, m.table.value(p), p.count * sizeof(float)), 0) << p.name;
  ASSERT_EQ(info.expert_bias.size(), 2u);
  EXPECT_EQ(info.expert_bias.at(2), m.biases.at("model.layers.2.moe.gate.expert_bias"));
  fs::remove_all(root);
}

TEST(Convert, ServeSplitPartitionsEveryTensorOnceBySide) {
  const fs::path root = fresh_dir("split");
  SmallModel m(1);
  write_training_checkpoint(root / "train", m);
  convert_checkpoint(root / "train", root / "serve", ConvertOptions{});   // serve, bf16
  std::map<std::string, std::string> part_of;   // tensor -> part it is stored in
  for (const char* part : {"attention", "ffn"}) {
    const fs::path dir = root / "serve" / part;
    const json manifest = json::parse(read_file(dir / "serve.json"));
    EXPECT_EQ(manifest["part"], part);
    EXPECT_EQ(manifest["dtype"], "bf16");
    EXPECT_EQ(read_file(dir / "config.json"), read_file(root / "serve" / "config.json"));
    const SafetensorsFile f = SafetensorsFile::open(dir / "model.safetensors");
    EXPECT_EQ(manifest["tensors"].size(), f.tensors().size());
    for (const TensorInfo& t : f.tensors()) EXPECT_TRUE(part_of.emplace(t.name, part).second) << "twice: " << t.name;
  }
  for (const ParamSpec& s : m.table.specs()) {
    ASSERT_TRUE(part_of.count(s.name)) << "missing: " << s.name;
    EXPECT_EQ(part_of[s.name], param_side_name(s.side)) << s.name;
  }
  for (const auto& [name, b] : m.biases) EXPECT_EQ(part_of[name], "attention") << name;
  EXPECT_EQ(part_of.size(), m.table.specs().size() + m.biases.size());
  // Spot checks of the side rule: router and lm_head with attention, experts and dense MLPs with FFN.
  EXPECT_EQ(part_of["model.layers.1.moe.gate.weight"], "attention");
  EXPECT_EQ(part_of["lm_head.weight"], "attention");
  EXPECT_EQ(part_of["model.layers.1.moe.up_proj.weight"], "ffn");
  EXPECT_EQ(part_of["model.layers.2.share_expert.down_proj.weight"], "ffn");
  EXPECT_EQ(part_of["model.layers.0.mlp.gate_proj.weight"], "ffn");
  for (const char* f : {"config.json", "tokenizer.model", "tokenizer.json", "generation_config.json"})
    EXPECT_TRUE(fs::exists(root / "serve" / f)) << f;
  EXPECT_EQ(Step3Config::load(root / "serve").to_json(), m.cfg.to_json());
  fs::remove_all(root);
}

TEST(Convert, ServeBf16BackToTrainWithinBf16Rounding) {
  const fs::path root = fresh_dir("bf16");
  SmallModel m(2);
  write_training_checkpoint(root / "train", m);
  convert_checkpoint(root / "train", root / "serve", ConvertOptions{ConvertFormat::serve, WeightDType::bf16});
  ConvertOptions to_train;
  to_train.format = ConvertFormat::train;
  convert_checkpoint(root / "serve", root / "back", to_train);
  const auto back = read_all(root / "back" / "model.safetensors");
  for (const ParamSpec& s : m.table.specs()) {
    const float* x = m.table.value(s);
    const std::vector<float>& y = back.at(s.name);
    for (int64_t i = 0; i < s.count; ++i) {
      ASSERT_LE(std::fabs(y[i] - x[i]), std::ldexp(std::fabs(x[i]), -8)) << s.name << "[" << i << "]";
      ASSERT_EQ(y[i], bf16_to_f32(f32_to_bf16(x[i]))) << s.name << "[" << i << "]";   // round to nearest even
    }
  }
  for (const auto& [name, b] : m.biases) EXPECT_EQ(back.at(name), b) << "expert biases stay fp32";
  fs::remove_all(root);
}

TEST(Convert, ServeFp8BlockScalesAndErrorBound) {
  const fs::path root = fresh_dir("fp8");
  SmallModel m(3);
  write_training_checkpoint(root / "train", m);
  convert_checkpoint(root / "train", root / "serve", ConvertOptions{ConvertFormat::serve, WeightDType::fp8});
  const json manifest = json::parse(read_file(root / "serve" / "ffn" / "serve.json"));
  EXPECT_EQ(manifest["weight_block_size"], json::array({128, 128}));

  const SafetensorsFile ffn = SafetensorsFile::open(root / "serve" / "ffn" / "model.safetensors");
  const SafetensorsFile attn = SafetensorsFile::open(root / "serve" / "attention" / "model.safetensors");
  // Per-expert 3-D weight [E=4, 40, 136] -> scales [4, 1, 2]; dense down_proj [136, 48] -> [2, 1].
  EXPECT_EQ(ffn.at("model.layers.1.moe.gate_proj.weight").dtype, DType::f8_e4m3);
  EXPECT_EQ(ffn.at("model.layers.1.moe.gate_proj.weight_scale_inv").shape, (std::vector<int64_t>{4, 1, 2}));
  EXPECT_EQ(ffn.at("model.layers.0.mlp.down_proj.weight_scale_inv").shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(attn.at("model.layers.0.self_attn.o_proj.weight").dtype, DType::f8_e4m3);
  EXPECT_EQ(attn.at("model.layers.0.self_attn.o_proj.weight_scale_inv").dtype, DType::f32);
  for (const char* bf16 : {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                           "model.layers.1.moe.gate.weight", "model.layers.0.self_attn.inter_norm.weight"})
    EXPECT_EQ(attn.at(bf16).dtype, DType::bf16) << bf16;
  EXPECT_EQ(attn.at("model.layers.1.moe.gate.expert_bias").dtype, DType::f32);

  const std::vector<float> arena = load_arena(root / "serve", m);
  int64_t fp8_tensors = 0;
  for (const ParamSpec& s : m.table.specs()) {
    const float* x = m.table.value(s);
    const float* y = arena.data() + s.offset;
    if (!fp8_block_quantized(s)) {
      for (int64_t i = 0; i < s.count; ++i) ASSERT_EQ(y[i], bf16_to_f32(f32_to_bf16(x[i]))) << s.name;
      continue;
    }
    ++fp8_tensors;
    const int64_t rows = s.shape[s.shape.size() - 2], cols = s.shape.back();
    for (int64_t mat = 0; mat < s.count / (rows * cols); ++mat)
      for (int64_t br = 0; br < rows; br += 128)
        for (int64_t bc = 0; bc < cols; bc += 128) {
          float amax = 0;   // the block's scale, from the original weights: amax / 448
          for (int64_t r = br; r < std::min(rows, br + 128); ++r)
            for (int64_t c = bc; c < std::min(cols, bc + 128); ++c)
              amax = std::max(amax, std::fabs(x[(mat * rows + r) * cols + c]));
          const float scale = amax / kFp8E4M3Max;
          for (int64_t r = br; r < std::min(rows, br + 128); ++r)
            for (int64_t c = bc; c < std::min(cols, bc + 128); ++c) {
              const int64_t i = (mat * rows + r) * cols + c;
              const float bound = (std::ldexp(std::fabs(x[i]), -4) + std::ldexp(scale, -10)) * 1.0001f;
              ASSERT_LE(std::fabs(y[i] - x[i]), bound) << s.name << "[" << i << "]";
            }
        }
  }
  EXPECT_EQ(fp8_tensors, 3 * 5 + 3 + 2 * 6);   // attention projections, dense MLP, experts + shared experts
  fs::remove_all(root);
}

TEST(Convert, LoadsOneSideOfAServingCheckpoint) {
  const fs::path root = fresh_dir("one_side");
  SmallModel m(4);
  write_training_checkpoint(root / "train", m);
  convert_checkpoint(root / "train", root / "serve", ConvertOptions{ConvertFormat::serve, WeightDType::fp32});
  fs::remove_all(root / "serve" / "ffn");   // the attention instance never needs the FFN part
  LoadedCheckpoint info;
  const std::vector<float> arena = load_arena(root / "serve", m, LoadOptions{ParamSide::attention}, &info);
  EXPECT_EQ(info.layout, CheckpointLayout::serving);
  EXPECT_EQ(info.expert_bias.size(), 2u);
  for (const ParamSpec& s : m.table.specs())
    for (int64_t i = 0; i < s.count; ++i)
      ASSERT_EQ(arena[s.offset + i], s.side == ParamSide::attention ? m.table.value(s)[i] : 7.0f) << s.name;
  // A part directory on its own loads too, and only as its own side.
  const std::vector<float> part = load_arena(root / "serve" / "attention", m, LoadOptions{ParamSide::attention});
  EXPECT_EQ(part, arena);
  EXPECT_NE(error_of([&] { load_arena(root / "serve" / "attention", m, LoadOptions{ParamSide::ffn}); })
                .find("part is 'attention' but the 'ffn' part was expected"),
            std::string::npos);
  fs::remove_all(root);
}

TEST(Convert, Fp8HfShardsDequantiseToTraining) {
  const fs::path root = fresh_dir("fp8_hf");
  SmallModel m(5);
  write_training_checkpoint(root / "train", m);
  ConvertOptions to_hf{ConvertFormat::hf, WeightDType::fp8, 40'000};
  convert_checkpoint(root / "train", root / "hf8", to_hf);
  const json index = json::parse(read_file(root / "hf8" / "model.safetensors.index.json"));
  EXPECT_TRUE(index["weight_map"].contains("model.layers.2.moe.down_proj.weight_scale_inv"));
  ConvertOptions to_train;
  to_train.format = ConvertFormat::train;
  convert_checkpoint(root / "hf8", root / "back", to_train);
  // The training checkpoint holds exactly the fp8 dequantisation the loader gives for the HF directory.
  const std::vector<float> from_hf = load_arena(root / "hf8", m);
  const std::vector<float> from_back = load_arena(root / "back", m);
  EXPECT_EQ(from_hf, from_back);
  EXPECT_EQ(SafetensorsFile::open(root / "back" / "model.safetensors").tensors().size(),
            m.table.specs().size() + m.biases.size());
  fs::remove_all(root);
}

TEST(Convert, ParsesSizesFormatsAndDtypes) {
  EXPECT_EQ(parse_byte_size("2GB"), 2'000'000'000);
  EXPECT_EQ(parse_byte_size("500mb"), 500'000'000);
  EXPECT_EQ(parse_byte_size("64MiB"), 64ll << 20);
  EXPECT_EQ(parse_byte_size("1.5kB"), 1500);
  EXPECT_EQ(parse_byte_size("4096"), 4096);
  EXPECT_NE(error_of([] { parse_byte_size("2 parsecs"); }).find("unknown unit"), std::string::npos);
  EXPECT_NE(error_of([] { parse_byte_size("GB"); }).find("bad size"), std::string::npos);
  EXPECT_NE(error_of([] { parse_byte_size("0"); }).find("at least 1 byte"), std::string::npos);
  EXPECT_EQ(parse_convert_format("hf"), ConvertFormat::hf);
  EXPECT_NE(error_of([] { parse_convert_format("gguf"); }).find("valid: serve, hf, train"), std::string::npos);
  EXPECT_EQ(parse_weight_dtype("fp8"), WeightDType::fp8);
  EXPECT_NE(error_of([] { parse_weight_dtype("int4"); }).find("valid: bf16, fp8, fp32"), std::string::npos);
  EXPECT_EQ(hf_shard_name(2, 13), "model-00002-of-00013.safetensors");
}
