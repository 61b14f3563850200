#include "vesseltune/data/sampler.h"

#include <numeric>

#include "vesseltune/core/check.h"
#include "vesseltune/data/random.h"

namespace vesseltune::data {

DistributedSampler::DistributedSampler(int64_t dataset_size, SamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  VT_CHECK(dataset_size_ > 0, "sampler: the data set is empty");
  VT_CHECK(options_.repeats > 0, "sampler: repeats must be positive, got ", options_.repeats);
  VT_CHECK(options_.world > 0, "sampler: world size must be positive, got ", options_.world);
  VT_CHECK(options_.rank >= 0 && options_.rank < options_.world, "sampler: rank ", options_.rank,
           " is outside world size ", options_.world);
  // Training needs a sample for every rank; evaluation (keeping the remainder) lets the last ranks read none.
  VT_CHECK(!options_.drop_remainder || epoch_length() >= options_.world, "sampler: an epoch of ", epoch_length(),
           " samples cannot feed ", options_.world, " ranks");
}

int64_t DistributedSampler::samples_per_rank(int64_t consumed) const {
  VT_CHECK(consumed >= 0 && consumed <= epoch_length(), "sampler: position ", consumed, " is outside the epoch of ",
           epoch_length());
  const int64_t remaining = epoch_length() - consumed;
  if (options_.drop_remainder) return remaining / options_.world;
  return remaining / options_.world + (options_.rank < remaining % options_.world ? 1 : 0);
}

std::vector<int64_t> DistributedSampler::epoch_order(int64_t epoch) const {
  VT_CHECK(epoch >= 0, "sampler: epoch must be non-negative, got ", epoch);
  std::vector<int64_t> order;
  if (options_.shuffle) {
    order = seeded_permutation(epoch_length(), mix_seed(options_.seed, static_cast<uint64_t>(epoch)));
  } else {
    order.resize(static_cast<size_t>(epoch_length()));
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  for (int64_t& index : order) index %= dataset_size_;
  return order;
}

std::vector<int64_t> DistributedSampler::rank_indices(SamplerPosition from) const {
  const std::vector<int64_t> order = epoch_order(from.epoch);
  const int64_t count = samples_per_rank(from.consumed);
  std::vector<int64_t> indices(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) indices[i] = order[from.consumed + options_.rank + i * options_.world];
  return indices;
}

SamplerPosition DistributedSampler::advance(SamplerPosition from, int64_t count) const {
  VT_CHECK(count >= 0 && count <= samples_per_rank(from.consumed), "sampler: cannot advance ", count,
           " samples per rank from position ", from.consumed);
  // Without the remainder drop, ranks' parts differ by one: a rank that has read all of its part is at the end.
  if (!options_.drop_remainder && count == samples_per_rank(from.consumed)) return {from.epoch, epoch_length()};
  return {from.epoch, from.consumed + count * options_.world};
}

}  // namespace vesseltune::data
