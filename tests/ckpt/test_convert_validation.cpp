// Validation errors of the checkpoint readers and the converter: a missing, unexpected or misshapen tensor, a missing
// shard, an index that disagrees with its shards, a config mismatch, a bad serving manifest, an existing output and
// a failed conversion. Every error must name the tensor or file at fault; nothing half-written may remain.
#include <gtest/gtest.h>

#include "ckpt/convert.h"
#include "ckpt/convert_load.h"
#include "convert_fixture.h"

using namespace stepwise;
using namespace stepwise::test;
using nlohmann::json;

namespace {
bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string load_error(const fs::path& dir, const SmallModel& m, const LoadOptions& opt = {}) {
  std::vector<float> arena(static_cast<size_t>(param_arena_size(m.table.specs())));
  return error_of([&] { load_checkpoint_f32(dir, m.cfg, m.table.specs(), arena.data(), opt); });
}

void drop_tensor(std::vector<TensorToWrite>& tensors, const std::string& name) {
  std::erase_if(tensors, [&](const TensorToWrite& t) { return t.name == name; });
}

// A training checkpoint converted to HF shards (several), returned as the HF directory.
fs::path hf_checkpoint(const fs::path& root, const SmallModel& m) {
  write_training_checkpoint(root / "train", m);
  convert_checkpoint(root / "train", root / "hf", ConvertOptions{ConvertFormat::hf, WeightDType::fp32, 60'000});
  return root / "hf";
}
}  // namespace

TEST(ConvertValidation, MissingTensorNamesTensorAndFile) {
  const fs::path root = fresh_dir("v_missing");
  SmallModel m(1);
  const std::string gone = "model.layers.1.moe.down_proj.weight";
  write_training_checkpoint(root / "train", m, [&](auto& t) { drop_tensor(t, gone); });
  const std::string e = load_error(root / "train", m);
  EXPECT_TRUE(contains(e, "missing tensor '" + gone + "'")) << e;
  EXPECT_TRUE(contains(e, (root / "train" / "model.safetensors").string())) << e;
  const std::string c = error_of([&] { convert_checkpoint(root / "train", root / "out", ConvertOptions{}); });
  EXPECT_TRUE(contains(c, gone)) << c;
  EXPECT_FALSE(fs::exists(root / "out"));
  fs::remove_all(root);
}

TEST(ConvertValidation, ExtraTensorNamesTensorAndFile) {
  const fs::path root = fresh_dir("v_extra");
  SmallModel m(1);
  std::vector<float> junk(8, 1.0f);
  write_training_checkpoint(root / "train", m,
                            [&](auto& t) { t.push_back({"model.layers.0.mlp.bias", DType::f32, {8}, junk.data()}); });
  const std::string e = load_error(root / "train", m);
  EXPECT_TRUE(contains(e, "unexpected tensor 'model.layers.0.mlp.bias'")) << e;
  EXPECT_TRUE(contains(e, "model.safetensors")) << e;
  // An expert bias on a dense layer is not a parameter either.
  write_training_checkpoint(root / "train2", m, [&](auto& t) {
    t.push_back({"model.layers.0.moe.gate.expert_bias", DType::f32, {4}, junk.data()});
  });
  EXPECT_TRUE(contains(load_error(root / "train2", m), "unexpected tensor 'model.layers.0.moe.gate.expert_bias'"));
  fs::remove_all(root);
}

TEST(ConvertValidation, WrongShapeNamesTensorAndShapes) {
  const fs::path root = fresh_dir("v_shape");
  SmallModel m(1);
  const std::string name = "model.layers.0.self_attn.q_proj.weight";   // [24, 136], stored transposed
  write_training_checkpoint(root / "train", m, [&](auto& t) {
    for (TensorToWrite& w : t)
      if (w.name == name) w.shape = {136, 24};
  });
  const std::string e = load_error(root / "train", m);
  EXPECT_TRUE(contains(e, "tensor '" + name + "': shape [136, 24], expected [24, 136]")) << e;
  fs::remove_all(root);
}

TEST(ConvertValidation, ConfigMismatchNamesKeyAndFile) {
  const fs::path root = fresh_dir("v_config");
  SmallModel m(1);
  write_training_checkpoint(root / "train", m);
  SmallModel other(1);
  other.cfg.rope_theta = 10000.0;
  const std::string e = load_error(root / "train", other);
  EXPECT_TRUE(contains(e, "config mismatch: rope_theta")) << e;
  EXPECT_TRUE(contains(e, (root / "train" / "config.json").string())) << e;
  fs::remove_all(root);
}

TEST(ConvertValidation, MissingShardNamesTheShard) {
  const fs::path root = fresh_dir("v_shard");
  SmallModel m(1);
  const fs::path hf = hf_checkpoint(root, m);
  const json index = json::parse(read_file(hf / "model.safetensors.index.json"));
  const std::string shard = index["weight_map"]["lm_head.weight"].get<std::string>();
  fs::remove(hf / shard);
  const std::string e = load_error(hf, m);
  EXPECT_TRUE(contains(e, "shard '" + shard + "'")) << e;
  EXPECT_TRUE(contains(e, "does not exist")) << e;
  fs::remove_all(root);
}

TEST(ConvertValidation, IndexMustAgreeWithShards) {
  const fs::path root = fresh_dir("v_index");
  SmallModel m(1);
  const fs::path hf = hf_checkpoint(root, m);
  const fs::path index_path = hf / "model.safetensors.index.json";
  const json index = json::parse(read_file(index_path));

  json unlisted = index;   // a shard holds a tensor the map does not list
  unlisted["weight_map"].erase("model.norm.weight");
  write_file_atomic(index_path, unlisted.dump());
  std::string e = load_error(hf, m);
  EXPECT_TRUE(contains(e, "holds tensor 'model.norm.weight'") && contains(e, "does not list")) << e;

  json moved = index;   // the map points a tensor at the wrong shard
  const std::string real = index["weight_map"]["model.embed_tokens.weight"];
  const std::string wrong = index["weight_map"]["lm_head.weight"];
  ASSERT_NE(real, wrong);
  moved["weight_map"]["model.embed_tokens.weight"] = wrong;
  write_file_atomic(index_path, moved.dump());
  e = load_error(hf, m);
  // (the embedding fills a shard alone, so its real shard is no longer opened: the wrong one lacks it)
  EXPECT_TRUE(contains(e, "maps tensor 'model.embed_tokens.weight' to " + wrong) && contains(e, "does not hold it"))
      << e;

  json swapped = index;   // two tensors of different shards mapped to each other's shard
  const std::string norm_shard = index["weight_map"]["model.norm.weight"];
  const std::string layer0_shard = index["weight_map"]["model.layers.0.input_layernorm.weight"];
  ASSERT_NE(norm_shard, layer0_shard);
  swapped["weight_map"]["model.norm.weight"] = layer0_shard;
  swapped["weight_map"]["model.layers.0.input_layernorm.weight"] = norm_shard;
  write_file_atomic(index_path, swapped.dump());
  e = load_error(hf, m);
  EXPECT_TRUE(contains(e, "but it is stored in")) << e;

  json sized = index;   // a wrong total_size
  sized["metadata"]["total_size"] = 12;
  write_file_atomic(index_path, sized.dump());
  EXPECT_TRUE(contains(load_error(hf, m), "metadata.total_size is 12")) << load_error(hf, m);

  json hostile = index;   // a shard outside the directory
  hostile["weight_map"]["lm_head.weight"] = "../train/model.safetensors";
  write_file_atomic(index_path, hostile.dump());
  EXPECT_TRUE(contains(load_error(hf, m), "weight_map entry 'lm_head.weight' must name a shard file"));
  fs::remove_all(root);
}

TEST(ConvertValidation, DuplicateTensorAcrossShards) {
  const fs::path root = fresh_dir("v_dup");
  SmallModel m(1);
  const fs::path hf = hf_checkpoint(root, m);
  const json index = json::parse(read_file(hf / "model.safetensors.index.json"));
  const std::string shard = index["weight_map"]["model.norm.weight"];
  std::string other;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it)
    if (it.value() != shard) other = it.value();
  ASSERT_FALSE(other.empty());
  // Rewrite `other` with an extra copy of model.norm.weight.
  const SafetensorsFile f = SafetensorsFile::open(hf / other);
  std::vector<std::vector<std::byte>> keep;
  std::vector<TensorToWrite> tensors;
  for (const TensorInfo& t : f.tensors()) {
    auto b = f.bytes(t);
    keep.emplace_back(b.begin(), b.end());
    tensors.push_back({t.name, t.dtype, t.shape, keep.back().data()});
  }
  std::vector<float> norm(136, 1.0f);
  tensors.push_back({"model.norm.weight", DType::f32, {136}, norm.data()});
  write_safetensors(hf / (other + ".new"), tensors);
  fs::rename(hf / (other + ".new"), hf / other);
  const std::string e = load_error(hf, m);
  EXPECT_TRUE(contains(e, "tensor 'model.norm.weight' is also stored in")) << e;
  fs::remove_all(root);
}

TEST(ConvertValidation, ServingManifestAndPartsAreChecked) {
  const fs::path root = fresh_dir("v_serve");
  SmallModel m(1);
  write_training_checkpoint(root / "train", m);
  convert_checkpoint(root / "train", root / "serve", ConvertOptions{});
  const fs::path manifest = root / "serve" / "ffn" / "serve.json";
  const std::string original = read_file(manifest);

  json v = json::parse(original);
  v["version"] = 9;
  write_file_atomic(manifest, v.dump());
  EXPECT_TRUE(contains(load_error(root / "serve", m), "serve.json: unsupported version 9"));

  json dropped = json::parse(original);
  dropped["tensors"].erase(dropped["tensors"].begin());
  write_file_atomic(manifest, dropped.dump());
  std::string e = load_error(root / "serve", m);
  EXPECT_TRUE(contains(e, "ffn/model.safetensors: holds tensor 'model.layers.0.mlp.gate_proj.weight'")) << e;

  write_file_atomic(manifest, original);
  json cfg = json::parse(read_file(root / "serve" / "ffn" / "config.json"));
  cfg["vocab_size"] = 151;
  write_file_atomic(root / "serve" / "ffn" / "config.json", cfg.dump());
  e = load_error(root / "serve", m);
  EXPECT_TRUE(contains(e, "ffn/config.json: differs from")) << e;

  fs::remove_all(root / "serve" / "ffn");
  e = load_error(root / "serve", m);   // both parts are needed unless one side is asked for
  EXPECT_TRUE(contains(e, "ffn/serve.json: missing")) << e;
  EXPECT_EQ(load_error(root / "serve", m, LoadOptions{ParamSide::attention}), "");
  fs::remove_all(root);
}

TEST(ConvertValidation, OutputIsAtomicAndNeverClobbered) {
  const fs::path root = fresh_dir("v_atomic");
  SmallModel m(1);
  write_training_checkpoint(root / "train", m);
  fs::create_directories(root / "taken");
  std::string e = error_of([&] { convert_checkpoint(root / "train", root / "taken", ConvertOptions{}); });
  EXPECT_TRUE(contains(e, "already exists")) << e;
  e = error_of([&] { convert_checkpoint(root / "train", root / "train", ConvertOptions{}); });
  EXPECT_TRUE(contains(e, "--to is the --from directory")) << e;
  e = error_of([&] {
    convert_checkpoint(root / "train", root / "t2", ConvertOptions{ConvertFormat::train, WeightDType::bf16});
  });
  EXPECT_TRUE(contains(e, "--format train writes fp32")) << e;

  // A NaN weight makes fp8 quantisation fail half-way: no output directory and no temporary leftovers.
  m.table.value("model.layers.2.share_expert.up_proj.weight")[5] = std::nanf("");
  write_training_checkpoint(root / "nan", m);
  e = error_of([&] {
    convert_checkpoint(root / "nan", root / "serve8", ConvertOptions{ConvertFormat::serve, WeightDType::fp8});
  });
  EXPECT_TRUE(contains(e, "tensor 'model.layers.2.share_expert.up_proj.weight': element 5 is nan")) << e;
  EXPECT_FALSE(fs::exists(root / "serve8"));
  for (const auto& entry : fs::directory_iterator(root))
    EXPECT_FALSE(contains(entry.path().filename().string(), ".tmp-convert")) << entry.path();
  // With --overwrite an existing directory is replaced once the new one is complete.
  ConvertOptions overwrite;
  overwrite.overwrite = true;
  convert_checkpoint(root / "train", root / "taken", overwrite);
  EXPECT_TRUE(fs::exists(root / "taken" / "attention" / "serve.json"));
  fs::remove_all(root);
}

TEST(ConvertValidation, NotACheckpoint) {
  const fs::path root = fresh_dir("v_none");
  SmallModel m(1);
  EXPECT_TRUE(contains(load_error(root, m), "not a checkpoint")) << load_error(root, m);
  EXPECT_TRUE(contains(load_error(root / "absent", m), "not a directory"));
  fs::remove_all(root);
}

TEST(ConvertValidation, CliReportsBadInputWithExitCode2) {
  if (!fs::exists(STEPWISE_BINARY)) GTEST_SKIP() << "stepwise binary not built: " << STEPWISE_BINARY;
  const fs::path root = fresh_dir("v_cli");
  SmallModel m(1);
  write_training_checkpoint(root / "train", m);
  const std::string bin = STEPWISE_BINARY;
  const std::string ok = bin + " convert --from " + (root / "train").string() + " --to " + (root / "hf").string() +
                         " --format hf --shard-size 50kB > " + (root / "log.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(ok.c_str()), 0) << read_file(root / "log.txt");
  EXPECT_TRUE(contains(read_file(root / "log.txt"), "model-00001-of-"));
  EXPECT_EQ(load_error(root / "hf", m), "");
  const std::string bad = bin + " convert --from " + (root / "train").string() + " --to " + (root / "x").string() +
                          " --format serve --dtype int4 > " + (root / "err.txt").string() + " 2>&1";
  const int status = std::system(bad.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_TRUE(contains(read_file(root / "err.txt"), "error: unknown dtype 'int4'"));
  fs::remove_all(root);
}
