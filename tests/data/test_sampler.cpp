// The distributed sampler: the seed's epoch (size × repeats, shuffled from seed + epoch), disjoint equal
// parts for 1..4 ranks that together cover the epoch less the documented remainder, and resuming.

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "vesseltune/core/check.h"
#include "vesseltune/data/sampler.h"

namespace vesseltune::data {
namespace {

SamplerOptions options(int rank, int world, int64_t repeats = 5, uint64_t seed = 42) {
  SamplerOptions o;
  o.rank = rank;
  o.world = world;
  o.repeats = repeats;
  o.seed = seed;
  return o;
}

TEST(Sampler, EpochIsTheDataSetRepeatedAndShuffledBySeedAndEpoch) {
  const DistributedSampler sampler(1220, options(0, 1));
  EXPECT_EQ(sampler.epoch_length(), 6100);
  const std::vector<int64_t> order = sampler.epoch_order(0);
  ASSERT_EQ(order.size(), 6100u);
  std::vector<int> seen(1220, 0);
  for (int64_t index : order) ++seen[static_cast<size_t>(index)];
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 5; }));
  EXPECT_EQ(order, DistributedSampler(1220, options(0, 1)).epoch_order(0));    // reproducible
  EXPECT_NE(order, sampler.epoch_order(1));                                       // new order each epoch
  EXPECT_NE(order, DistributedSampler(1220, options(0, 1, 5, 43)).epoch_order(0));  // seed matters
  std::vector<int64_t> sorted_positions(order.begin(), order.begin() + 20);
  EXPECT_FALSE(std::is_sorted(sorted_positions.begin(), sorted_positions.end()));
}

TEST(Sampler, UnshuffledPartsAreRoundRobinWithTheRemainderDropped) {
  // 7 samples × 1 repeat over 3 ranks: positions 0..5 are used, 6 is dropped; rank r reads r, r+3.
  SamplerOptions o = options(0, 3, 1);
  o.shuffle = false;
  std::vector<std::vector<int64_t>> parts;
  for (int rank = 0; rank < 3; ++rank) {
    o.rank = rank;
    parts.push_back(DistributedSampler(7, o).rank_indices({0, 0}));
  }
  EXPECT_EQ(parts[0], (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(parts[1], (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(parts[2], (std::vector<int64_t>{2, 5}));
  // With repeats the positions wrap onto the data set: 3 samples × 2 repeats = 0 1 2 0 1 2.
  o.rank = 1;
  o.repeats = 2;
  EXPECT_EQ(DistributedSampler(3, o).rank_indices({0, 0}), (std::vector<int64_t>{1, 1}));
}

TEST(Sampler, WithoutDroppingTheRemainderEveryPositionIsReadOnce) {
  // Evaluation: 7 samples over 3 ranks → rank 0 reads 0, 3, 6; ranks 1 and 2 read two each.
  SamplerOptions o = options(0, 3, 1);
  o.shuffle = false;
  o.drop_remainder = false;
  const std::vector<std::vector<int64_t>> expected = {{0, 3, 6}, {1, 4}, {2, 5}};
  for (int rank = 0; rank < 3; ++rank) {
    o.rank = rank;
    const DistributedSampler sampler(7, o);
    EXPECT_EQ(sampler.rank_indices({0, 0}), expected[rank]);
    EXPECT_EQ(sampler.advance({0, 0}, sampler.samples_per_rank()).consumed, 7);  // the whole epoch, no further
  }
}

TEST(Sampler, EvaluationWithFewerSamplesThanRanksLeavesTheLastRanksEmpty) {
  // 2 validation images on 4 ranks (a small val split on many GPUs): ranks 0 and 1 read one each, 2 and 3 none.
  SamplerOptions o = options(0, 4, 1);
  o.shuffle = false;
  o.drop_remainder = false;
  const std::vector<std::vector<int64_t>> expected = {{0}, {1}, {}, {}};
  for (int rank = 0; rank < 4; ++rank) {
    o.rank = rank;
    EXPECT_EQ(DistributedSampler(2, o).rank_indices({0, 0}), expected[rank]);
  }
  // Training cannot give every rank a sample: refused.
  o.drop_remainder = true;
  EXPECT_THROW(DistributedSampler(2, o), Error);
}

TEST(Sampler, PartsAreDisjointEqualAndCoverTheEpochForOneToFourRanks) {
  for (int64_t size : {1220, 7, 10}) {
    for (int world = 1; world <= 4; ++world) {
      SCOPED_TRACE("size " + std::to_string(size) + ", world " + std::to_string(world));
      const int64_t length = size * 5, used = length / world * world;
      const std::vector<int64_t> order = DistributedSampler(size, options(0, world)).epoch_order(3);
      std::multiset<int64_t> union_of_parts;
      for (int rank = 0; rank < world; ++rank) {
        const DistributedSampler sampler(size, options(rank, world));
        const std::vector<int64_t> part = sampler.rank_indices({3, 0});
        EXPECT_EQ(static_cast<int64_t>(part.size()), length / world);
        EXPECT_EQ(sampler.samples_per_rank(), length / world);
        union_of_parts.insert(part.begin(), part.end());
      }
      // Disjoint positions: the parts together are exactly the epoch's first `used` positions.
      const std::multiset<int64_t> expected(order.begin(), order.begin() + used);
      EXPECT_EQ(union_of_parts, expected);
    }
  }
}

TEST(Sampler, ResumeMidEpochContinuesWithTheSamplesThatWereNext) {
  for (int world = 1; world <= 4; ++world) {
    for (int rank = 0; rank < world; ++rank) {
      const DistributedSampler sampler(1220, options(rank, world));
      const std::vector<int64_t> whole = sampler.rank_indices({2, 0});
      const int64_t steps = 377;
      const SamplerPosition saved = sampler.advance({2, 0}, steps);
      EXPECT_EQ(saved.consumed, steps * world);
      const std::vector<int64_t> resumed = DistributedSampler(1220, options(rank, world)).rank_indices(saved);
      EXPECT_EQ(resumed, std::vector<int64_t>(whole.begin() + steps, whole.end()));
    }
  }
}

TEST(Sampler, ResumeAtAnotherWorldSizeReadsEachRemainingPositionOnce) {
  // 2 ranks stop after 1000 steps each; 3 ranks take over from position 2000.
  const SamplerPosition saved = DistributedSampler(1220, options(0, 2)).advance({0, 0}, 1000);
  const std::vector<int64_t> order = DistributedSampler(1220, options(0, 3)).epoch_order(0);
  std::multiset<int64_t> rest;
  for (int rank = 0; rank < 3; ++rank) {
    const std::vector<int64_t> part = DistributedSampler(1220, options(rank, 3)).rank_indices(saved);
    EXPECT_EQ(part.size(), (6100u - 2000u) / 3);
    for (size_t i = 0; i < part.size(); ++i) EXPECT_EQ(part[i], order[2000 + rank + 3 * i]);
    rest.insert(part.begin(), part.end());
  }
  EXPECT_EQ(rest, std::multiset<int64_t>(order.begin() + 2000, order.begin() + 2000 + 4100 / 3 * 3));
}

TEST(Sampler, BadArgumentsAreRefused) {
  EXPECT_THROW(DistributedSampler(0, options(0, 1)), Error);
  EXPECT_THROW(DistributedSampler(10, options(2, 2)), Error);
  EXPECT_THROW(DistributedSampler(10, options(0, 0)), Error);
  EXPECT_THROW(DistributedSampler(10, options(0, 1, 0)), Error);
  EXPECT_THROW(DistributedSampler(10, options(0, 1)).advance({0, 0}, 51), Error);
}

}  // namespace
}  // namespace vesseltune::data
