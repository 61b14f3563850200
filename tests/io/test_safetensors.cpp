// Safetensors: files written here and byte layouts written by hand (the format is simple enough to spell out),
// every kind of malformed file refused with a message, and loading into a module by name.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "vesseltune/core/remove_tree.h"
#include "vesseltune/core/check.h"
#include "vesseltune/io/safetensors.h"

using namespace vesseltune;
using namespace vesseltune::io;
namespace fs = std::filesystem;

namespace {

class Safetensors : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vt_safetensors_" + std::to_string(::getpid()) + "_" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_.string()); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write_raw(const std::string& name, const std::string& header_json, const std::string& data) {
    std::ofstream out(path(name), std::ios::binary);
    uint64_t n = header_json.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
    out << header_json << data;
  }
  std::string error_opening(const std::string& name) {
    try {
      SafetensorsFile file(path(name));
    } catch (const Error& error) {
      return error.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(Safetensors, ReadsAHandWrittenFile) {
  // Two little-endian fp32 values 1.0 (0x3F800000) and -2.0 (0xC0000000), and one bf16 0.5 (0x3F00).
  const std::string data("\x00\x00\x80\x3F\x00\x00\x00\xC0\x00\x3F", 10);
  write_raw("hand.safetensors",
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]},"__metadata__":{"format":"pt"}})",
            data);
  SafetensorsFile file(path("hand.safetensors"));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_TRUE(torch::equal(file.tensor("a"), torch::tensor({1.0f, -2.0f})));
  const auto b = file.tensor("b");
  EXPECT_EQ(b.scalar_type(), at::kBFloat16);
  EXPECT_EQ(b.sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(b.item<float>(), 0.5f);
}

TEST_F(Safetensors, RoundTripKeepsDtypesShapesAndValues) {
  const auto a = torch::randn({3, 5});
  const auto b = torch::randn({7}).to(torch::kBFloat16);
  const auto c = torch::arange(6, torch::kLong).view({2, 3});
  save_safetensors(path("round.safetensors"), {{"x.a", a}, {"x.b", b}, {"y.c", c}}, {{"format", "pt"}});
  SafetensorsFile file(path("round.safetensors"));
  EXPECT_TRUE(torch::equal(file.tensor("x.a"), a));
  EXPECT_TRUE(torch::equal(file.tensor("x.b"), b));
  EXPECT_TRUE(torch::equal(file.tensor("y.c"), c));
  EXPECT_FALSE(fs::exists(path("round.safetensors.tmp")));
}

TEST_F(Safetensors, MalformedFilesAreRefusedWithTheReason) {
  const std::string eight(8, '\0');
  {
    std::ofstream(path("short.safetensors")) << "abc";
    EXPECT_NE(error_opening("short.safetensors").find("shorter than its 8-byte header length"), std::string::npos);
  }
  {
    std::ofstream out(path("huge_header.safetensors"), std::ios::binary);
    const char length[8] = {'\xff', '\xff', '\x00', '\x00', '\x00', '\x00', '\x00', '\x00'};  // 65535 bytes
    out.write(length, 8);
    out << "{}";
  }
  EXPECT_NE(error_opening("huge_header.safetensors").find("larger than the file"), std::string::npos);
  write_raw("json.safetensors", "{not json", "");
  EXPECT_NE(error_opening("json.safetensors").find("not valid JSON"), std::string::npos);
  write_raw("range.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight);
  EXPECT_NE(error_opening("range.safetensors").find("outside the data buffer"), std::string::npos);
  write_raw("size.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight);
  EXPECT_NE(error_opening("size.safetensors").find("shape and dtype need 12"), std::string::npos);
  write_raw("overlap.safetensors",
            R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            eight);
  EXPECT_NE(error_opening("overlap.safetensors").find("overlap"), std::string::npos);
  write_raw("dtype.safetensors", R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", eight);
  EXPECT_NE(error_opening("dtype.safetensors").find("unsupported dtype 'F8_E4M3'"), std::string::npos);
  write_raw("negative.safetensors", R"({"w":{"dtype":"U8","shape":[-8],"data_offsets":[0,8]}})", eight);
  EXPECT_NE(error_opening("negative.safetensors").find("non-negative"), std::string::npos);
  EXPECT_NE(error_opening("absent.safetensors").find("cannot open"), std::string::npos);
}

TEST_F(Safetensors, ShardedCheckpointThroughItsIndex) {
  save_safetensors(path("model-00001-of-00002.safetensors"), {{"a", torch::ones({2})}});
  save_safetensors(path("model-00002-of-00002.safetensors"), {{"b", torch::zeros({3})}});
  std::ofstream(path("model.safetensors.index.json"))
      << R"({"metadata":{"total_size":20},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  Checkpoint checkpoint(dir_.string());
  EXPECT_EQ(checkpoint.tensors().size(), 2u);
  EXPECT_TRUE(torch::equal(checkpoint.tensor("b"), torch::zeros({3})));

  std::ofstream(path("model.safetensors.index.json"))
      << R"({"weight_map":{"a":"model-00002-of-00002.safetensors"}})";
  try {
    Checkpoint wrong(dir_.string());
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("lists 'a' in model-00002-of-00002.safetensors"), std::string::npos);
  }
}

struct SmallImpl : torch::nn::Module {
  SmallImpl() {
    fc = register_module("fc", torch::nn::Linear(3, 2));
    norm = register_module("norm", torch::nn::BatchNorm1d(2));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};
TORCH_MODULE(Small);

TEST_F(Safetensors, LoadIntoConvertsDtypeAndReportsNames) {
  Small source;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : source->named_parameters()) tensors.emplace_back("model." + item.key(), item.value().to(torch::kBFloat16));
  for (const auto& item : source->named_buffers()) tensors.emplace_back("model." + item.key(), item.value());
  tensors.emplace_back("model.memory_attention.w", torch::ones({1}));
  save_safetensors(path("small.safetensors"), tensors);

  Small target;
  LoadOptions options;
  options.prefix = "model.";
  options.ignore_prefixes = {"model.memory_attention."};
  const auto report = load_into(*target, Checkpoint(path("small.safetensors")), options);
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty() && report.mismatched.empty()) << report.describe();
  EXPECT_TRUE(torch::equal(target->fc->weight, source->fc->weight.to(torch::kBFloat16).to(torch::kFloat)));

  // Without the ignore list the memory weights are unexpected; a module of another shape is named.
  options.ignore_prefixes.clear();
  try {
    load_into(*target, Checkpoint(path("small.safetensors")), options);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("model.memory_attention.w"), std::string::npos) << error.what();
  }
  save_safetensors(path("other.safetensors"), {{"fc.weight", torch::zeros({4, 3})}});
  LoadOptions lenient;
  lenient.strict = false;
  const auto mismatch = load_into(*target, Checkpoint(path("other.safetensors")), lenient);
  ASSERT_EQ(mismatch.mismatched.size(), 1u);
  EXPECT_NE(mismatch.mismatched[0].find("fc.weight: checkpoint [4, 3] vs model [2, 3]"), std::string::npos);
  EXPECT_EQ(std::count(mismatch.missing.begin(), mismatch.missing.end(), "fc.bias"), 1);
}

}  // namespace
