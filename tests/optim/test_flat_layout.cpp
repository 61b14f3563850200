// The flat bucket layout against a layout worked out by hand.
#include <gtest/gtest.h>

#include "vesseltune/optim/flat_layout.h"

using namespace vesseltune::optim;

namespace {

// Tensors a(5, g0) b(3, g1) c(10, g0) d(2, g1), bucket 8, world 3. Walking backwards: d alone (c would
// overflow), c alone (larger than a bucket), then b + a = 8, ordered by group: a then b.
//   bucket 0: d at 0, 2 elements, padded 3
//   bucket 1: c at 3, 10 elements, padded 12
//   bucket 2: a at 15, b at 20, 8 elements, padded 9 (ends at 24)
std::vector<TensorSpec> specs() {
  return {{"a", {5}, 0}, {"b", {3}, 1}, {"c", {2, 5}, 0}, {"d", {2}, 1}};
}

TEST(FlatLayout, BucketsInReverseOrderPaddedToTheWorld) {
  FlatLayout layout(specs(), 8, 3, 1, true);
  ASSERT_EQ(layout.buckets().size(), 3u);
  EXPECT_EQ(layout.flat_numel(), 24);
  EXPECT_EQ(layout.canonical_numel(), 20);
  const auto& s = layout.slots();
  EXPECT_EQ(s[3].flat_offset, 0);
  EXPECT_EQ(s[2].flat_offset, 3);
  EXPECT_EQ(s[0].flat_offset, 15);
  EXPECT_EQ(s[1].flat_offset, 20);
  EXPECT_EQ(s[0].canonical_offset, 0);
  EXPECT_EQ(s[1].canonical_offset, 5);
  EXPECT_EQ(s[2].canonical_offset, 8);
  EXPECT_EQ(s[3].canonical_offset, 18);
  EXPECT_EQ(layout.buckets()[0].padded, 3);
  EXPECT_EQ(layout.buckets()[1].padded, 12);
  EXPECT_EQ(layout.buckets()[2].padded, 9);
}

// As above with b (3 elements) as a 1 x 3 matrix of sparse row gradients: it leaves the walk and gets the last bucket
// alone. Walking backwards: d alone, c alone, a alone (5 <= 8), then b.
//   bucket 0: d at 0 (padded 3); bucket 1: c at 3 (padded 12); bucket 2: a at 15 (padded 6); bucket 3: b at 21
TEST(FlatLayout, SparseRowsTensorsComeLastInBucketsOfTheirOwn) {
  std::vector<TensorSpec> tensors = specs();
  tensors[1] = TensorSpec{"b", {1, 3}, 1, true};
  FlatLayout layout(tensors, 8, 3, 1, true);
  ASSERT_EQ(layout.buckets().size(), 4u);
  EXPECT_EQ(layout.slots()[0].flat_offset, 15);
  EXPECT_EQ(layout.slots()[1].flat_offset, 21);
  EXPECT_EQ(layout.flat_numel(), 24);
  for (int b = 0; b < 3; ++b) EXPECT_FALSE(layout.buckets()[b].sparse_rows) << "bucket " << b;
  EXPECT_TRUE(layout.buckets()[3].sparse_rows);
  EXPECT_EQ(layout.buckets()[3].slots, std::vector<int>{1});
  // Its gradient accumulates as sparse rows: sharded, the flat gradient buffer ends where its bucket begins; with
  // stage 0 that buffer is also the reduced gradient, and holds it.
  EXPECT_EQ(layout.gradient_numel(), 21);
  EXPECT_EQ(FlatLayout(tensors, 8, 3, 1, false).gradient_numel(), FlatLayout(tensors, 8, 3, 1, false).flat_numel());
  EXPECT_NE(layout.describe().find("bucket 3: 3 (+0 pad, sparse rows) [b:g1:1x3]"), std::string::npos)
      << layout.describe();
  tensors[1].shape = {3};
  EXPECT_THROW(FlatLayout(tensors, 8, 3, 1, true), std::exception) << "sparse rows of a 1-D tensor";
}

TEST(FlatLayout, RankOwnsChunkOfEveryBucketCutAtGroups) {
  FlatLayout layout(specs(), 8, 3, 1, true);
  EXPECT_EQ(layout.shard_numel(), 1 + 4 + 3);
  // rank 1: bucket 0 [1,2), bucket 1 [7,11), bucket 2 [18,21) = a[3..5) (g0) + b[0..1) (g1)
  const auto& segments = layout.owned_segments();
  ASSERT_EQ(segments.size(), 4u);
  EXPECT_EQ(segments[0].flat_offset, 1);
  EXPECT_EQ(segments[0].numel, 1);
  EXPECT_EQ(segments[1].flat_offset, 7);
  EXPECT_EQ(segments[1].shard_offset, 1);
  EXPECT_EQ(segments[1].numel, 4);
  EXPECT_EQ(segments[2].flat_offset, 18);
  EXPECT_EQ(segments[2].group, 0);
  EXPECT_EQ(segments[2].numel, 2);
  EXPECT_EQ(segments[3].flat_offset, 20);
  EXPECT_EQ(segments[3].group, 1);
  EXPECT_EQ(segments[3].shard_offset, 7);
}

TEST(FlatLayout, CanonicalSpansOfARank) {
  FlatLayout layout(specs(), 8, 3, 1, true);
  const auto spans = layout.canonical_spans();
  ASSERT_EQ(spans.size(), 4u);
  // a[3..5) -> canonical 3, shard 5; b[0] -> canonical 5, shard 7; c[4..8) -> canonical 12, shard 1;
  // d[1] -> canonical 19, shard 0
  EXPECT_EQ(spans[0].canonical_offset, 3);
  EXPECT_EQ(spans[0].shard_offset, 5);
  EXPECT_EQ(spans[0].numel, 2);
  EXPECT_EQ(spans[1].canonical_offset, 5);
  EXPECT_EQ(spans[1].shard_offset, 7);
  EXPECT_EQ(spans[2].canonical_offset, 12);
  EXPECT_EQ(spans[2].shard_offset, 1);
  EXPECT_EQ(spans[2].numel, 4);
  EXPECT_EQ(spans[3].canonical_offset, 19);
  EXPECT_EQ(spans[3].shard_offset, 0);
}

TEST(FlatLayout, SpansOfAllRanksCoverTheCanonicalOrderOnce) {
  for (int world : {1, 2, 3, 4, 7}) {
    std::vector<int> hits(20, 0);
    for (int rank = 0; rank < world; ++rank) {
      FlatLayout layout(specs(), 8, world, rank, true);
      for (const auto& span : layout.canonical_spans()) {
        for (int64_t i = 0; i < span.numel; ++i) ++hits[span.canonical_offset + i];
      }
    }
    for (int h : hits) ASSERT_EQ(h, 1) << "world " << world;
  }
}

TEST(FlatLayout, UnshardedRankOwnsEverything) {
  FlatLayout layout(specs(), 8, 3, 2, false);
  EXPECT_EQ(layout.shard_numel(), layout.flat_numel());
  EXPECT_EQ(layout.canonical_spans().size(), 4u);
}

}  // namespace
