#pragma once
// The distributed sampler, with the semantics of the seed's runs: an epoch is the data set repeated
// `repeats` times (1,220 × 5 = 6,100 positions), shuffled from seed + epoch; position p of that order holds
// sample order[p] % size. Ranks take the positions round-robin (rank r reads p = r, r + world, ...), so
// after k steps of every rank the first k × world positions are consumed whatever the world size.
//
// Remainder: every rank gets the same number of samples (collectives stay in step), so the last
// (length - start) % world positions of an epoch are dropped; the shuffle changes them every epoch.
// Evaluation keeps them (drop_remainder false): the first ranks then read one sample more.
//
// Resuming: SamplerPosition{epoch, consumed} counts positions consumed by all ranks together, so a run
// can resume from it at the same or at another world size with exactly the samples that were next.

#include <cstdint>
#include <vector>

namespace vesseltune::data {

struct SamplerOptions {
  int64_t repeats = 1;
  uint64_t seed = 0;
  bool shuffle = true;  // false: positions in order (validation)
  int rank = 0;
  int world = 1;
  bool drop_remainder = true;  // false: every position is read, ranks may differ by one sample (evaluation)
};

struct SamplerPosition {
  int64_t epoch = 0;
  int64_t consumed = 0;  // positions of the epoch's order consumed by all ranks together
};

class DistributedSampler {
 public:
  DistributedSampler(int64_t dataset_size, SamplerOptions options);

  int64_t epoch_length() const { return dataset_size_ * options_.repeats; }  // before the remainder drop
  // Samples this rank reads in an epoch started at CONSUMED (0: the whole epoch).
  int64_t samples_per_rank(int64_t consumed = 0) const;

  // The epoch's global order of sample indices (every rank computes the same).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  // The sample indices this rank reads, in order, from FROM on; the i-th is at global position
  // from.consumed + rank + i * world.
  std::vector<int64_t> rank_indices(SamplerPosition from) const;

  // Where the epoch stands once every rank has read COUNT samples of its part started at FROM.
  SamplerPosition advance(SamplerPosition from, int64_t count) const;

  const SamplerOptions& options() const { return options_; }
  int64_t dataset_size() const { return dataset_size_; }

 private:
  int64_t dataset_size_;
  SamplerOptions options_;
};

}  // namespace vesseltune::data
