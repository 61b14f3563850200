// Log lines: format, rank filter (info from rank 0, warnings from every rank) and the per-run file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "vesseltune/core/log.h"

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Log, RankZeroWritesInfoToTheRunFile) {
  const std::string file = (std::filesystem::temp_directory_path() / "vt_log_rank0.log").string();
  std::filesystem::remove(file);
  vesseltune::log::Options options;
  options.rank = 0;
  options.file = file;
  vesseltune::log::init(options);
  VT_LOG(info) << "iter: 10, loss_mask: 1.8";
  VT_LOG(debug) << "not shown";
  vesseltune::log::init(vesseltune::log::Options{});  // closes the file
  const std::string text = read(file);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ info \[rank 0\] iter: 10, loss_mask: 1.8)")))
      << text;
  EXPECT_EQ(text.find("not shown"), std::string::npos);
  std::filesystem::remove(file);
}

TEST(Log, OtherRanksWriteOnlyWarningsToTheirOwnFile) {
  const std::string file = (std::filesystem::temp_directory_path() / "vt_log_rank3.log").string();
  std::filesystem::remove(file + ".rank3");
  vesseltune::log::Options options;
  options.rank = 3;
  options.file = file;
  vesseltune::log::init(options);
  VT_LOG(info) << "progress that rank 0 reports";
  VT_LOG(warning) << "step 7 skipped";
  vesseltune::log::init(vesseltune::log::Options{});
  const std::string text = read(file + ".rank3");
  EXPECT_EQ(text.find("progress"), std::string::npos) << text;
  EXPECT_NE(text.find("warning [rank 3] step 7 skipped"), std::string::npos) << text;
  std::filesystem::remove(file + ".rank3");
}

}  // namespace
