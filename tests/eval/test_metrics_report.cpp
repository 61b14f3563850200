// The printed table and the CSV files of the two hand images (hand_images.h), read back and compared with the
// hand values.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hand_images.h"
#include "vesseltune/eval/metrics_report.h"

namespace vesseltune::eval {
namespace {

namespace fs = std::filesystem;
using namespace vesseltune::metrics;  // the hand images and the metrics they are reported with

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::stringstream stream(line);
    for (std::string field; std::getline(stream, field, ',');) fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

struct TwoImages {
  std::vector<ImageMetrics> images;
  MetricsSummary summary;
};

TwoImages two_images() {
  MetricsAccumulator accumulator;
  accumulator.add(hand::evaluate("a"));
  accumulator.add(hand::evaluate("b"));
  return {accumulator.images(), accumulator.summary()};
}

fs::path fresh_directory(const std::string& name) {
  const fs::path directory = fs::temp_directory_path() / ("vesseltune_eval_" + name);
  fs::remove_all(directory);
  fs::create_directories(directory);
  return directory;
}

TEST(MetricsReport, TableRowsAndFooter) {
  const std::string table = format_metrics_table(two_images().summary);
  std::stringstream lines(table);
  std::string header, rule, dice;
  std::getline(lines, header);
  std::getline(lines, rule);
  std::getline(lines, dice);
  EXPECT_EQ(header.rfind("metric", 0), 0u) << header;
  EXPECT_NE(header.find("FOV per image (mean ± sd)"), std::string::npos) << header;
  EXPECT_NE(header.find("full pooled"), std::string::npos) << header;
  // dice: per image 17/24 ± (1/12)/sqrt(2), pooled 12/17 (the FOV is the whole image).
  EXPECT_EQ(dice.rfind("dice", 0), 0u) << dice;
  EXPECT_NE(dice.find("| 0.7083 ± 0.0589"), std::string::npos) << dice;
  EXPECT_NE(dice.find("| 0.7059"), std::string::npos) << dice;
  // Columns line up: every row's separators sit where the header's do.
  std::stringstream all(table);
  std::vector<std::string> rows;
  for (std::string line; std::getline(all, line) && rows.size() < 10;) rows.push_back(line);
  for (size_t r = 2; r < rows.size(); ++r) {
    EXPECT_EQ(rows[r].find(" | "), header.find(" | ")) << rows[r];
  }
  EXPECT_NE(table.find("threshold 0.5"), std::string::npos);
  EXPECT_NE(table.find("pooled: the metric once"), std::string::npos);
}

TEST(MetricsReport, CsvFilesReadBack) {
  const TwoImages data = two_images();
  const fs::path directory = fresh_directory("csv");
  write_per_image_csv((directory / "per_image.csv").string(), data.images);
  write_summary_csv((directory / "summary.csv").string(), data.summary);
  EXPECT_FALSE(fs::exists(directory / "per_image.csv.tmp"));

  const auto per_image = read_csv(directory / "per_image.csv");
  ASSERT_EQ(per_image.size(), 5u);  // header + 2 images x 2 regions
  const std::vector<std::string> header = {"image", "region", "threshold", "dice", "iou", "sensitivity",
                                           "specificity", "accuracy", "precision", "cldice", "auc", "tp", "fp", "fn",
                                           "tn", "skeleton_predicted", "skeleton_predicted_in_truth",
                                           "skeleton_truth", "skeleton_truth_in_predicted"};
  EXPECT_EQ(per_image[0], header);
  // Row 3: image b, fov: TP 3, FP 1, FN 1, TN 11; dice 6/8, precision 3/4, auc 40/48.
  const auto& b = per_image[3];
  ASSERT_EQ(b.size(), header.size());
  EXPECT_EQ(b[0], "b");
  EXPECT_EQ(b[1], "fov");
  EXPECT_EQ(std::stod(b[2]), 0.5);
  EXPECT_EQ(std::stod(b[3]), 6.0 / 8.0);
  EXPECT_EQ(std::stod(b[8]), 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(std::stod(b[10]), 40.0 / 48.0);
  EXPECT_EQ(std::vector<std::string>(b.begin() + 11, b.begin() + 15), (std::vector<std::string>{"3", "1", "1", "11"}));
  EXPECT_EQ(std::stod(per_image[1][3]), 6.0 / 9.0);  // image a, fov: dice, to the last bit

  const auto summary = read_csv(directory / "summary.csv");
  ASSERT_EQ(summary.size(), 1u + 2 * kMetricCount);
  EXPECT_EQ(summary[0], (std::vector<std::string>{"region", "metric", "per_image_mean", "per_image_sd", "pooled",
                                                  "images_used"}));
  const auto& dice = summary[1 + kMetricCount];  // full, dice
  EXPECT_EQ(dice[0], "full");
  EXPECT_EQ(dice[1], "dice");
  EXPECT_DOUBLE_EQ(std::stod(dice[2]), 17.0 / 24.0);
  EXPECT_NEAR(std::stod(dice[3]), (1.0 / 12.0) / std::sqrt(2.0), 1e-15);
  EXPECT_EQ(std::stod(dice[4]), 12.0 / 17.0);
  EXPECT_EQ(dice[5], "2");
  const auto& area = summary[kMetricCount];  // fov, auc
  EXPECT_EQ(area[1], "auc");
  EXPECT_DOUBLE_EQ(std::stod(area[4]), 167.0 / 192.0);
}

TEST(MetricsReport, NamesWithCommasAreQuotedAndNanIsWritten) {
  ImageMetrics image = hand::evaluate("a").metrics;
  image.name = "im, \"01\"";
  image.regions[0].values[static_cast<int>(Metric::auc)] = std::nan("");
  const fs::path path = fresh_directory("quote") / "per_image.csv";
  write_per_image_csv(path.string(), {image});
  std::ifstream in(path);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_EQ(row.rfind("\"im, \"\"01\"\"\",fov,", 0), 0u) << row;
  EXPECT_NE(row.find(",nan,"), std::string::npos) << row;
}

TEST(MetricsReport, UnwritablePathIsNamed) {
  try {
    write_summary_csv("/nonexistent/dir/summary.csv", two_images().summary);
    FAIL() << "no error";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/dir/summary.csv"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace vesseltune::eval
