// Tests of the safetensors reader/writer: round trips, and every kind of corrupt or hostile file gives a clear error
// naming the file and the problem (never a crash or an out-of-bounds read).
#include <gtest/gtest.h>

#include <cstring>

#include "ckpt/safetensors.h"
#include "core/error.h"

using namespace stepwise;

namespace {
fs::path tmp_path(const std::string& name) { return fs::temp_directory_path() / ("stepwise_st_" + name); }

// Writes an 8-byte header length followed by `header` and `data_bytes` zero bytes.
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes, int64_t header_len_override = -1) {
  std::string s(8, '\0');
  uint64_t n = header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header.size();
  std::memcpy(s.data(), &n, 8);
  s += header;
  s.append(data_bytes, '\0');
  write_file_atomic(p, s);
}

std::string error_of(const fs::path& p) {
  try {
    SafetensorsFile::open(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Safetensors, RoundTrip) {
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {f32_to_bf16(0.5f), f32_to_bf16(-2.0f)};
  fs::path p = tmp_path("ok.safetensors");
  write_safetensors(p, {{"model.embed_tokens.weight", DType::f32, {2, 3}, a.data()}, {"x", DType::bf16, {2}, b.data()}},
                    {{"format", "pt"}});
  EXPECT_EQ(error_of(p), "");
  auto f = SafetensorsFile::open(p);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorInfo& t = f.at("model.embed_tokens.weight");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> back(6);
  f.read_f32("model.embed_tokens.weight", {2, 3}, back.data());
  EXPECT_EQ(back, a);
  std::vector<float> xb(2);
  f.read_f32("x", {2}, xb.data());
  EXPECT_EQ(xb, (std::vector<float>{0.5f, -2.0f}));
  try {
    f.read_f32("x", {3}, xb.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x': shape [2], expected [3]"), std::string::npos) << e.what();
  }
  try {
    f.at("missing.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'missing.weight'"), std::string::npos);
  }
  fs::remove(p);
}

TEST(Safetensors, CorruptFilesGiveClearErrors) {
  struct Case {
    std::string name, header;
    size_t data;
    int64_t len_override;
    std::string expect;
  };
  const std::string good = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::vector<Case> cases = {
      {"short", "", 0, -2, "truncated"},
      {"hugelen", good, 8, int64_t(1) << 40, "exceeds"},
      {"lenpastend", good, 8, 100000, "truncated: header length"},
      {"badjson", "{\"w\": [", 0, -1, "not valid JSON"},
      {"notobject", "[1,2]", 0, -1, "not a JSON object"},
      {"baddtype", R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", 8, -1, "unknown dtype 'F99'"},
      {"offsets", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})", 8, -1, "out of range"},
      {"reversed", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, -1, "out of range"},
      {"size", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, -1, "needs 12"},
      {"negshape", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, -1, "negative dimension"},
      {"noffsets", R"({"w":{"dtype":"F32","shape":[2]}})", 8, -1, "data_offsets"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, -1, "overlap"},
      {"meta", R"({"__metadata__":{"k":1}})", 0, -1, "not a string"},
  };
  for (const Case& c : cases) {
    fs::path p = tmp_path(c.name + ".safetensors");
    if (c.len_override == -2)
      write_file_atomic(p, "abc");
    else
      write_raw(p, c.header, c.data, c.len_override);
    std::string err = error_of(p);
    EXPECT_NE(err.find(p.string()), std::string::npos) << c.name << ": " << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
    fs::remove(p);
  }
}

TEST(Safetensors, TruncatedRealFile) {
  std::vector<float> a(1000, 1.0f);
  fs::path p = tmp_path("trunc.safetensors");
  write_safetensors(p, {{"w", DType::f32, {1000}, a.data()}});
  fs::resize_file(p, fs::file_size(p) - 100);
  EXPECT_NE(error_of(p).find("out of range"), std::string::npos) << error_of(p);
  fs::remove(p);
}
