// The prefetching loader: batch shapes, in-order and thread-count-independent output, resume.

#include <gtest/gtest.h>
#include <unistd.h>

#include "vesseltune/core/remove_tree.h"
#include "vesseltune/data/loader.h"
#include "vesseltune/data/packer.h"

namespace vesseltune::data {
namespace {

namespace fs = std::filesystem;

class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("vt_loader_" + std::to_string(::getpid()));
    remove_tree(dir_.string());
    PackOptions o;
    o.threads = 2;
    o.val_fraction = 0.2;
    o.shards.samples_per_shard = 3;
    SynthOptions synth;
    synth.count = 10;
    synth.size = 96;
    pack_synthetic(synth, dir_, o);
  }
  static void TearDownTestSuite() { remove_tree(dir_.string()); }

  static LoaderOptions options(int workers) {
    LoaderOptions o;
    o.batch_size = 3;
    o.workers = workers;
    o.prefetch_batches = 2;
    o.sampler.repeats = 2;
    o.sampler.seed = 11;
    o.inputs.tile_size = 56;  // small model inputs keep the test fast; the code path is the same
    o.inputs.sam_size = 128;
    o.inputs.loss_size = 32;
    o.augment.affine_probability = 1.0;
    return o;
  }

  static std::vector<Batch> epoch(DataLoader& loader, SamplerPosition from) {
    loader.start(from);
    std::vector<Batch> batches;
    while (auto batch = loader.next()) batches.push_back(std::move(*batch));
    return batches;
  }

  static void expect_same(const Batch& a, const Batch& b) {
    EXPECT_EQ(a.indices, b.indices);
    EXPECT_EQ(a.texts, b.texts);
    EXPECT_EQ(a.tiles_per_sample, b.tiles_per_sample);
    EXPECT_TRUE(a.tiles.equal(b.tiles));
    EXPECT_TRUE(a.sam_images.equal(b.sam_images));
    EXPECT_TRUE(a.masks.equal(b.masks));
    EXPECT_TRUE(a.fovs.equal(b.fovs));
  }

  static fs::path dir_;
};

fs::path LoaderTest::dir_;

TEST_F(LoaderTest, BatchesHaveTheModelShapesAndFollowTheSampler) {
  auto dataset = std::make_shared<PackedDataset>(dir_, "train");
  ASSERT_EQ(dataset->size(), 8);
  DataLoader loader(dataset, options(2));
  const std::vector<Batch> batches = epoch(loader, {0, 0});
  // 8 samples × 2 repeats = 16 positions: five batches of 3 and one of 1.
  ASSERT_EQ(batches.size(), 6u);
  EXPECT_EQ(loader.batches_per_epoch(), 6);
  std::vector<int64_t> indices;
  for (size_t b = 0; b < batches.size(); ++b) {
    const Batch& batch = batches[b];
    const int64_t n = b + 1 < batches.size() ? 3 : 1;
    ASSERT_EQ(batch.size(), n);
    int64_t tiles = 0;
    for (int64_t t : batch.tiles_per_sample) tiles += t;
    EXPECT_EQ(batch.tiles.sizes(), (std::vector<int64_t>{tiles, 3, 56, 56}));
    EXPECT_EQ(batch.sam_images.sizes(), (std::vector<int64_t>{n, 3, 128, 128}));
    EXPECT_EQ(batch.tiles.scalar_type(), at::kByte);  // normalised on the model's device (normalize_for_model)
    EXPECT_EQ(batch.sam_images.scalar_type(), at::kByte);
    EXPECT_EQ(batch.masks.sizes(), (std::vector<int64_t>{n, 32, 32}));
    EXPECT_EQ(batch.masks.max().item<uint8_t>(), 1);
    EXPECT_EQ(batch.position.consumed, std::min<int64_t>(16, 3 * static_cast<int64_t>(b + 1)));
    indices.insert(indices.end(), batch.indices.begin(), batch.indices.end());
  }
  EXPECT_EQ(indices, loader.sampler().rank_indices({0, 0}));
}

TEST_F(LoaderTest, OutputDoesNotDependOnTheNumberOfThreads) {
  auto dataset = std::make_shared<PackedDataset>(dir_, "train");
  DataLoader one(dataset, options(1)), three(dataset, options(3));
  const std::vector<Batch> a = epoch(one, {1, 0}), b = epoch(three, {1, 0});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) expect_same(a[i], b[i]);
  // And a new epoch brings a new order.
  EXPECT_NE(epoch(one, {2, 0})[0].indices, a[0].indices);
}

TEST_F(LoaderTest, ResumeFromASavedPositionGivesTheBatchesThatWereNext) {
  auto dataset = std::make_shared<PackedDataset>(dir_, "train");
  DataLoader loader(dataset, options(2));
  const std::vector<Batch> whole = epoch(loader, {0, 0});
  DataLoader restarted(dataset, options(2));
  const std::vector<Batch> rest = epoch(restarted, whole[2].position);
  ASSERT_EQ(rest.size(), whole.size() - 3);
  for (size_t i = 0; i < rest.size(); ++i) expect_same(rest[i], whole[i + 3]);
}

TEST_F(LoaderTest, ValidationGivesUnaugmentedFullResolutionMasks) {
  auto dataset = std::make_shared<PackedDataset>(dir_, "val");
  ASSERT_EQ(dataset->size(), 2);
  LoaderOptions o = options(2);
  o.sampler.shuffle = false;
  o.sampler.repeats = 1;
  o.augment.enabled = false;
  o.inputs.full_resolution = true;
  DataLoader loader(dataset, o);
  const std::vector<Batch> batches = epoch(loader, {0, 0});
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].full_masks.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const SampleRecord record = dataset->read(i);
    const at::Tensor want = at::from_blob(const_cast<uint8_t*>(record.mask.pixels.data()), {96, 96}, at::kByte);
    EXPECT_TRUE(batches[0].full_masks[static_cast<size_t>(i)].equal(want));
  }
}

}  // namespace
}  // namespace vesseltune::data
