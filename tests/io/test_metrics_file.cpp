// The metrics file: rows read back exactly, resumes that drop the rows logged after the checkpoint, rows with other
// columns refused, a damaged file set aside, a half-appended row (a crash) dropped. Expected values are written out
// by hand in each test.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "error_message.h"
#include "hdf5_damage.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/io/metrics_file.h"

using namespace vesseltune;
using namespace vesseltune::io;
namespace fs = std::filesystem;

namespace {

using Rows = std::vector<std::vector<double>>;  // values[c][row], as MetricsTable holds them

class Metrics : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vt_metrics_" + std::to_string(::getpid()) + "_" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    path_ = (dir_ / "metrics.h5").string();
  }
  void TearDown() override { remove_tree(dir_.string()); }

  // Train rows (step, loss = 10 * step) for steps FIRST..LAST.
  void append_train(MetricsFile& file, int first, int last) {
    for (int step = first; step <= last; ++step) file.append("train", {{"step", step}, {"loss", 10.0 * step}});
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(Metrics, ReadsBackTwoTablesExactly) {
  MetricsFile file(path_, -1);
  EXPECT_EQ(file.path(), path_);
  file.append("train", {{"step", 1}, {"loss_mask", 0.75}, {"lr", 1e-4}});
  file.append("validation", {{"step", 1}, {"dice_fov", 0.125}});
  file.append("train", {{"step", 2}, {"loss_mask", 0.5}, {"lr", 2e-4}});
  // Another order of the same names is the same row.
  file.append("train", {{"lr", 3e-4}, {"step", 3}, {"loss_mask", -1.0 / 3.0}});

  const auto tables = read_metrics(path_);
  ASSERT_EQ(tables.size(), 2u);
  const MetricsTable& train = tables.at("train");
  EXPECT_EQ(train.columns, (std::vector<std::string>{"step", "loss_mask", "lr"}));
  EXPECT_EQ(train.rows(), 3);
  EXPECT_EQ(train.values, (Rows{{1, 2, 3}, {0.75, 0.5, -1.0 / 3.0}, {1e-4, 2e-4, 3e-4}}));
  EXPECT_EQ(train.column("lr"), (std::vector<double>{1e-4, 2e-4, 3e-4}));
  const MetricsTable& validation = tables.at("validation");
  EXPECT_EQ(validation.columns, (std::vector<std::string>{"step", "dice_fov"}));
  EXPECT_EQ(validation.values, (Rows{{1}, {0.125}}));
}

TEST_F(Metrics, ResumeDropsTheRowsAfterTheCheckpoint) {
  {
    MetricsFile file(path_, -1);
    append_train(file, 1, 5);
    file.append("validation", {{"step", 2}, {"dice", 0.5}});
    file.append("validation", {{"step", 4}, {"dice", 0.6}});
  }
  {
    MetricsFile file(path_, -1);  // a new run without a checkpoint keeps everything
    const auto tables = read_metrics(path_);
    EXPECT_EQ(tables.at("train").values, (Rows{{1, 2, 3, 4, 5}, {10, 20, 30, 40, 50}}));
    EXPECT_EQ(tables.at("validation").values, (Rows{{2, 4}, {0.5, 0.6}}));
  }
  {
    MetricsFile file(path_, 3);  // resumed from the checkpoint of step 3: steps 4 and 5 will be logged again
    auto tables = read_metrics(path_);
    EXPECT_EQ(tables.at("train").values, (Rows{{1, 2, 3}, {10, 20, 30}}));
    EXPECT_EQ(tables.at("validation").values, (Rows{{2}, {0.5}}));
    file.append("train", {{"step", 4}, {"loss", 41}});
    file.append("validation", {{"step", 4}, {"dice", 0.7}});
    tables = read_metrics(path_);
    EXPECT_EQ(tables.at("train").values, (Rows{{1, 2, 3, 4}, {10, 20, 30, 41}}));
    EXPECT_EQ(tables.at("validation").values, (Rows{{2, 4}, {0.5, 0.7}}));
  }
  {
    MetricsFile file(path_, 0);  // resumed from step 0: nothing stays, the columns do
    const auto tables = read_metrics(path_);
    EXPECT_EQ(tables.at("train").columns, (std::vector<std::string>{"step", "loss"}));
    EXPECT_EQ(tables.at("train").rows(), 0);
    EXPECT_EQ(tables.at("validation").rows(), 0);
    file.append("train", {{"step", 1}, {"loss", 11}});
    EXPECT_EQ(read_metrics(path_).at("train").values, (Rows{{1}, {11}}));
  }
}

TEST_F(Metrics, RefusesRowsWithOtherColumns) {
  MetricsFile file(path_, -1);
  append_train(file, 1, 1);
  const std::string other = testing_support::error_message([&] { file.append("train", {{"step", 2}, {"loss_dice", 1}}); });
  EXPECT_NE(other.find(path_), std::string::npos) << other;
  EXPECT_NE(other.find("table 'train'"), std::string::npos) << other;
  EXPECT_NE(other.find("column 'loss_dice'"), std::string::npos) << other;
  const std::string missing = testing_support::error_message([&] { file.append("train", {{"step", 2}}); });
  EXPECT_NE(missing.find("lacks column 'loss'"), std::string::npos) << missing;
  const std::string extra = testing_support::error_message([&] { file.append("train", {{"step", 2}, {"loss", 1}, {"lr", 1}}); });
  EXPECT_NE(extra.find("column 'lr'"), std::string::npos) << extra;
  const std::string twice = testing_support::error_message([&] { file.append("train", {{"step", 2}, {"loss", 1}, {"loss", 2}}); });
  EXPECT_NE(twice.find("column 'loss' appears twice"), std::string::npos) << twice;
  const std::string no_step = testing_support::error_message([&] { file.append("validation", {{"dice", 1}, {"step", 2}}); });
  EXPECT_NE(no_step.find("table 'validation'"), std::string::npos) << no_step;
  EXPECT_NE(no_step.find("must be 'step'"), std::string::npos) << no_step;
  const std::string bad_name = testing_support::error_message([&] { file.append("train", {{"step", 2}, {"a/b", 1}}); });
  EXPECT_NE(bad_name.find("'a/b'"), std::string::npos) << bad_name;
  // Nothing of the refused rows reached the file.
  const auto tables = read_metrics(path_);
  EXPECT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables.at("train").values, (Rows{{1}, {10}}));
}

TEST_F(Metrics, SetsAsideAFileThatIsNotHdf5) {
  std::ofstream(path_) << "not an HDF5 file";
  MetricsFile file(path_, 7);
  std::ifstream corrupt(path_ + ".corrupt");
  std::stringstream kept;
  kept << corrupt.rdbuf();
  EXPECT_EQ(kept.str(), "not an HDF5 file");
  append_train(file, 1, 2);
  EXPECT_EQ(read_metrics(path_).at("train").values, (Rows{{1, 2}, {10, 20}}));
}

TEST_F(Metrics, AChangedValueFailsItsRowChecksumAndIsSetAsideOnResume) {
  {
    MetricsFile file(path_, -1);
    append_train(file, 1, 3);
  }
  EXPECT_TRUE(testing_support::overwrite_value<double>(path_, "train/loss", 1, 21.0));  // step 2's loss was 20
  const std::string reading = testing_support::error_message([&] { read_metrics(path_); });
  EXPECT_NE(reading.find("table 'train': row 1 (step 2) does not match its content hash"), std::string::npos)
      << reading;
  MetricsFile resumed(path_, 3);
  EXPECT_TRUE(fs::exists(path_ + ".corrupt"));
  append_train(resumed, 4, 4);
  EXPECT_EQ(read_metrics(path_).at("train").values, (Rows{{4}, {40}}));
}

TEST_F(Metrics, RefusesHdf5FilesThatAreNotMetrics) {
  H5Fclose(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  const std::string opening = testing_support::error_message([&] { MetricsFile file(path_, -1); });
  EXPECT_NE(opening.find(path_), std::string::npos) << opening;
  EXPECT_NE(opening.find("not a metrics file"), std::string::npos) << opening;
  EXPECT_FALSE(fs::exists(path_ + ".corrupt"));  // someone's file: left alone
  const std::string reading = testing_support::error_message([&] { read_metrics(path_); });
  EXPECT_NE(reading.find("not a metrics file"), std::string::npos) << reading;
  const std::string missing = testing_support::error_message([&] { read_metrics(path_ + ".absent"); });
  EXPECT_NE(missing.find(path_ + ".absent"), std::string::npos) << missing;
  std::ofstream(path_ + ".text") << "text";
  const std::string text = testing_support::error_message([&] { read_metrics(path_ + ".text"); });
  EXPECT_NE(text.find("not an HDF5 file"), std::string::npos) << text;
}

TEST_F(Metrics, NamesAnAbsentColumn) {
  MetricsFile file(path_, -1);
  append_train(file, 1, 1);
  const auto tables = read_metrics(path_);
  const std::string absent = testing_support::error_message([&] { tables.at("train").column("lr"); });
  EXPECT_NE(absent.find("'lr'"), std::string::npos) << absent;
}

// A crash between the columns of an append leaves one column a row longer: readers and the next run drop that row.
TEST_F(Metrics, DropsAHalfAppendedRow) {
  {
    MetricsFile file(path_, -1);
    append_train(file, 1, 2);
  }
  {
    hid_t h5 = H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t loss = H5Dopen2(h5, "train/loss", H5P_DEFAULT);
    const hsize_t three = 3;
    ASSERT_GE(H5Dset_extent(loss, &three), 0);
    H5Dclose(loss);
    H5Fclose(h5);
  }
  EXPECT_EQ(read_metrics(path_).at("train").values, (Rows{{1, 2}, {10, 20}}));
  MetricsFile file(path_, -1);
  append_train(file, 3, 3);
  EXPECT_EQ(read_metrics(path_).at("train").values, (Rows{{1, 2, 3}, {10, 20, 30}}));
}

}  // namespace
