// What goes with the weights: the tokenizer and its companions, Sa2VA's remote code, the shard size's spelling,
// and the output folder's refusals.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "error_message.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/export/byte_size.h"
#include "vesseltune/export/model_files.h"
#include "vesseltune/text/tokenizer_files.h"
#include "vesseltune/export/output_folder.h"

namespace vesseltune::exporting {
namespace {

namespace fs = std::filesystem;
using testing_support::error_message;

class ModelFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vt_model_files_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    remove_tree(dir_.string());
    fs::create_directories(dir_ / "from");
    fs::create_directories(dir_ / "to");
  }
  void TearDown() override { remove_tree(dir_.string()); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(dir_ / "from" / name) << text; }
  std::string read(const std::string& name) const {
    std::ifstream in(dir_ / "to" / name);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  std::vector<std::string> copied() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_ / "to")) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

TEST_F(ModelFiles, TheTokenizerGoesWithTheHuggingFaceFilesBesideIt) {
  write("qwen_tokenizer.json", "{\"model\": {}}");
  write("tokenizer_config.json", "{\"chat_template\": \"x\"}");
  write("merges.txt", "a b");
  write("generation_config.json", "{}");
  write("notes.txt", "not a tokenizer file");
  const std::vector<std::string> names = text::copy_tokenizer_files((dir_ / "from" / "qwen_tokenizer.json").string(), (dir_ / "to").string());
  EXPECT_EQ(names, (std::vector<std::string>{"tokenizer.json", "tokenizer_config.json", "merges.txt", "generation_config.json"}));
  EXPECT_EQ(copied(), (std::vector<std::string>{"generation_config.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"}));
  EXPECT_EQ(read("tokenizer.json"), "{\"model\": {}}");
  EXPECT_EQ(read("merges.txt"), "a b");

  const std::string missing = (dir_ / "moved" / "tokenizer.json").string();
  const std::string message = error_message([&] { text::copy_tokenizer_files(missing, (dir_ / "to").string()); });
  EXPECT_NE(message.find("tokenizer '" + missing + "' does not exist (set model.tokenizer"), std::string::npos) << message;
}

TEST_F(ModelFiles, TheRemoteCodeBesideTheConfigIsCopied) {
  write("config.json", "{}");
  write("modeling_sa2va_chat.py", "class Sa2VAChatModel: pass");
  write("configuration_sa2va_chat.py", "class Sa2VAChatConfig: pass");
  write("README.md", "readme");
  std::vector<std::string> names = copy_remote_code((dir_ / "from" / "config.json").string(), dir_ / "to");
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"configuration_sa2va_chat.py", "modeling_sa2va_chat.py"}));
  EXPECT_EQ(copied(), names);
  EXPECT_EQ(read("modeling_sa2va_chat.py"), "class Sa2VAChatModel: pass");
  // model.config_json may name the folder instead of the file.
  remove_tree((dir_ / "to").string());
  fs::create_directories(dir_ / "to");
  EXPECT_EQ(copy_remote_code((dir_ / "from").string(), dir_ / "to").size(), 2u);
}

TEST_F(ModelFiles, TheOutputFolderAppearsOnlyOnCommit) {
  const std::string out = (dir_ / "out").string();
  {
    OutputFolder folder(out + "/", false);  // a trailing slash names the same folder
    EXPECT_EQ(folder.staging(), fs::path(out + ".tmp"));
    std::ofstream(folder.staging() / "a.txt") << "a";
    EXPECT_FALSE(fs::exists(out));
  }  // no commit: an error on the way
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  {
    OutputFolder folder(out, false);
    std::ofstream(folder.staging() / "b.txt") << "b";
    folder.commit();
  }
  EXPECT_TRUE(fs::exists(fs::path(out) / "b.txt"));
  EXPECT_NE(error_message([&] { OutputFolder again(out, false); }).find("exists already"), std::string::npos);
  for (const char* unnamed : {"/", ".", "..", "a/.."}) {
    EXPECT_NE(error_message([&] { OutputFolder folder(unnamed, false); }).find("must name a folder"), std::string::npos)
        << unnamed;
  }
}

TEST(ByteSize, SpelledAsHuggingFaceDoes) {
  EXPECT_EQ(parse_byte_size("5GB"), 5'000'000'000u);
  EXPECT_EQ(parse_byte_size("500MB"), 500'000'000u);
  EXPECT_EQ(parse_byte_size("10kb"), 10'000u);
  EXPECT_EQ(parse_byte_size("2GiB"), 2'147'483'648u);
  EXPECT_EQ(parse_byte_size("3MiB"), 3'145'728u);
  EXPECT_EQ(parse_byte_size("1024"), 1024u);
  EXPECT_EQ(parse_byte_size("7B"), 7u);
  for (const char* bad : {"", "GB", "5TB", "-1GB", "1.5GB", "0", "99999999999999GiB"}) {
    const std::string message = error_message([&] { parse_byte_size(bad); });
    EXPECT_NE(message.find(std::string("size '") + bad + "'"), std::string::npos) << bad << ": " << message;
  }
}

}  // namespace
}  // namespace vesseltune::exporting
