// Skeletons and clDice against scikit-image: tests/fixtures/cldice_skimage.json, made by
// tests/fixtures/make_cldice_fixture.py (skimage.morphology.skeletonize; clDice as the authors' code computes it).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "vesseltune/core/check.h"
#include "vesseltune/metrics/skeleton.h"
#include "vesseltune/metrics/vessel_metrics.h"

namespace vesseltune::metrics {
namespace {

nlohmann::json load_fixture() {
  std::ifstream in(VT_CLDICE_FIXTURE);
  EXPECT_TRUE(in) << "cannot open " << VT_CLDICE_FIXTURE;
  return nlohmann::json::parse(in);
}

at::Tensor mask(const nlohmann::json& rows) {
  const auto height = static_cast<int64_t>(rows.size());
  const auto width = static_cast<int64_t>(rows[0].get<std::string>().size());
  at::Tensor out = at::zeros({height, width}, at::kByte);
  uint8_t* pixels = out.data_ptr<uint8_t>();
  int64_t i = 0;
  for (const auto& row : rows) {
    for (const char c : row.get<std::string>()) pixels[i++] = c == '1';
  }
  return out;
}

void expect_skeleton_counts(const RegionCounts& counts, const nlohmann::json& expected, const std::string& what) {
  EXPECT_EQ(counts.skeleton_predicted, expected["skeleton_predicted"].get<int64_t>()) << what;
  EXPECT_EQ(counts.skeleton_predicted_in_truth, expected["skeleton_predicted_in_truth"].get<int64_t>()) << what;
  EXPECT_EQ(counts.skeleton_truth, expected["skeleton_truth"].get<int64_t>()) << what;
  EXPECT_EQ(counts.skeleton_truth_in_predicted, expected["skeleton_truth_in_predicted"].get<int64_t>()) << what;
}

TEST(Skeleton, EqualsScikitImage) {
  const nlohmann::json fixture = load_fixture();
  ASSERT_EQ(fixture["cases"].size(), 5u);
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"];
    for (const char* which : {"truth", "predicted"}) {
      const at::Tensor skeleton = skeletonize(mask(c[which]));
      const at::Tensor expected = mask(c[std::string(which) + "_skeleton"]);
      EXPECT_TRUE(at::equal(skeleton, expected))
          << name << " " << which << ": " << at::ne(skeleton, expected).sum().item<int64_t>() << " pixels differ";
    }
  }
}

TEST(Skeleton, ClDiceEqualsReferenceInsideAndOutsideTheFov) {
  const nlohmann::json fixture = load_fixture();  // kept alive: the loop holds references into it
  ASSERT_EQ(fixture["cases"].size(), 5u);
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"];
    const ImageMetrics m = evaluate_image(name, mask(c["predicted"]).to(at::kFloat), mask(c["truth"]),
                                          mask(c["fov_mask"]), 0.5).metrics;
    expect_skeleton_counts(m[Region::full].counts, c["full_counts"], name + " full");
    expect_skeleton_counts(m[Region::fov].counts, c["fov_counts"], name + " fov");
    EXPECT_NEAR(m[Region::full][Metric::cldice], c["full_cldice"].get<double>(), 1e-12) << name;
    EXPECT_NEAR(m[Region::fov][Metric::cldice], c["fov_cldice"].get<double>(), 1e-12) << name;
  }
}

TEST(Skeleton, KeepsThinLinesAndRejectsBadMasks) {
  // A one-pixel diagonal and a lone pixel are skeletons already.
  at::Tensor line = at::zeros({6, 6}, at::kByte);
  for (int i = 0; i < 5; ++i) line[i][i] = 1;
  line[0][5] = 1;
  EXPECT_TRUE(at::equal(skeletonize(line), line));
  EXPECT_THROW(skeletonize(line * 3), Error);
  EXPECT_THROW(skeletonize(line.to(at::kFloat)), Error);
}

}  // namespace
}  // namespace vesseltune::metrics
