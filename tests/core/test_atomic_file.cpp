// Atomic writes: the final name holds the old content or the new one, whole; never a part, never a leftover.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "vesseltune/core/atomic_file.h"

namespace fs = std::filesystem;
using namespace vesseltune;

namespace {

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vt_atomic_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_F(AtomicFile, TextReplacesTheOldContentAndLeavesNoTemporary) {
  write_text_file_atomically(path("a.json"), "old");
  write_text_file_atomically(path("a.json"), "new\n");
  EXPECT_EQ(read(path("a.json")), "new\n");
  EXPECT_FALSE(fs::exists(path("a.json.tmp")));
  EXPECT_EQ(temporary_path_for(path("a.json")), path("a.json") + ".tmp");
}

TEST_F(AtomicFile, AWriterThatFailsLeavesTheOldFileAndNoTemporary) {
  write_text_file_atomically(path("b.txt"), "complete");
  EXPECT_THROW(write_file_atomically(path("b.txt"),
                                     [](const std::string& temporary) {
                                       std::ofstream(temporary) << "half";
                                       throw std::runtime_error("disk full");
                                     }),
               std::runtime_error);
  EXPECT_EQ(read(path("b.txt")), "complete");
  EXPECT_FALSE(fs::exists(path("b.txt.tmp")));
}

TEST_F(AtomicFile, AMissingFolderIsAnErrorThatNamesTheFile) {
  try {
    write_text_file_atomically(path("missing/c.txt"), "x");
    FAIL() << "no error";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("missing/c.txt.tmp"), std::string::npos) << error.what();
  }
}

TEST_F(AtomicFile, AFolderReplacesTheOldFolderWhole) {
  fs::create_directories(path("out"));
  std::ofstream(path("out/old_only")) << "1";
  fs::create_directories(path("out.tmp"));
  std::ofstream(path("out.tmp/new_only")) << "2";
  move_folder_into_place(path("out.tmp"), path("out"));
  EXPECT_TRUE(fs::exists(path("out/new_only")));
  EXPECT_FALSE(fs::exists(path("out/old_only")));
  EXPECT_FALSE(fs::exists(path("out.tmp")));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "the old folder stayed";
}

TEST_F(AtomicFile, MovingAFolderThatIsNotThereChangesNothing) {
  fs::create_directories(path("kept"));
  EXPECT_THROW(move_folder_into_place(path("absent"), path("kept")), std::exception);
  EXPECT_TRUE(fs::is_directory(path("kept")));
}
