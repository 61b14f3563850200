// save_safetensors_sharded: the split into shards worked out by hand (sizes, names, index), every tensor read back
// equal through io::Checkpoint, one file when everything fits, a folder with earlier weights refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "error_message.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/io/safetensors.h"

namespace vesseltune::io {
namespace {

namespace fs = std::filesystem;
using testing_support::error_message;

class ShardedSafetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vt_sharded_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    remove_tree(dir_.string());
  }
  void TearDown() override { remove_tree(dir_.string()); }

  // 40 + 24 + 120 + 16 + 20 = 220 bytes in five dtypes and shapes.
  static std::vector<std::pair<std::string, at::Tensor>> tensors() {
    return {{"a", torch::arange(10, torch::kFloat)},
            {"b.weight", torch::arange(12, torch::kFloat).reshape({3, 4}).to(torch::kBFloat16)},
            {"c", torch::linspace(-1, 1, 30)},
            {"d", torch::tensor({7, -8}, torch::kLong)},
            {"e", torch::full({5}, 0.25f)}};
  }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

TEST_F(ShardedSafetensors, SplitsInOrderAtTheShardSizeAndReadsBackThroughTheIndex) {
  // At most 64 bytes: {a 40, b 24} = 64; c (120) alone, larger than a shard; {d 16, e 20}.
  const std::vector<std::string> files = save_safetensors_sharded(dir_.string(), tensors(), 64, {{"format", "pt"}});
  const std::vector<std::string> expected_files = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                                   "model-00003-of-00003.safetensors", "model.safetensors.index.json"};
  EXPECT_EQ(files, expected_files);
  EXPECT_EQ(listing(), expected_files);  // no temporary file left

  std::ifstream in(dir_ / "model.safetensors.index.json");
  const nlohmann::json index = nlohmann::json::parse(in);
  EXPECT_EQ(index.at("metadata").at("total_size"), 220);
  const nlohmann::json weight_map = {{"a", "model-00001-of-00003.safetensors"},
                                     {"b.weight", "model-00001-of-00003.safetensors"},
                                     {"c", "model-00002-of-00003.safetensors"},
                                     {"d", "model-00003-of-00003.safetensors"},
                                     {"e", "model-00003-of-00003.safetensors"}};
  EXPECT_EQ(index.at("weight_map"), weight_map);
  const SafetensorsFile second((dir_ / "model-00002-of-00003.safetensors").string());
  EXPECT_EQ(second.tensors().size(), 1u);
  EXPECT_EQ(second.metadata().at("format"), "pt");

  const Checkpoint checkpoint(dir_.string());
  ASSERT_EQ(checkpoint.tensors().size(), 5u);
  for (const auto& [name, tensor] : tensors()) {
    const at::Tensor read = checkpoint.tensor(name);
    EXPECT_EQ(read.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(read, tensor)) << name;
  }
}

TEST_F(ShardedSafetensors, EverythingInOneShardIsOneModelSafetensorsWithoutIndex) {
  const std::vector<std::string> files = save_safetensors_sharded(dir_.string(), tensors(), 220);
  EXPECT_EQ(files, std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
  const Checkpoint checkpoint(dir_.string());
  for (const auto& [name, tensor] : tensors()) EXPECT_TRUE(torch::equal(checkpoint.tensor(name), tensor)) << name;
  EXPECT_EQ(shard_file_name(12, 345), "model-00012-of-00345.safetensors");
}

TEST_F(ShardedSafetensors, RefusesAFolderWithEarlierWeightsAndBadArguments) {
  save_safetensors_sharded(dir_.string(), tensors(), 64);
  const std::string again = error_message([&] { save_safetensors_sharded(dir_.string(), tensors(), 1000); });
  EXPECT_NE(again.find(dir_.string() + "' already holds weights (model-0000"), std::string::npos) << again;
  EXPECT_NE(error_message([&] { save_safetensors_sharded((dir_ / "x").string(), {}, 64); }).find("no tensors"),
            std::string::npos);
  EXPECT_NE(error_message([&] { save_safetensors_sharded((dir_ / "y").string(), tensors(), 0); }).find("positive"),
            std::string::npos);
}

}  // namespace
}  // namespace vesseltune::io
