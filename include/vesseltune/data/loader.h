#pragma once
// The trainer's data loader: this rank's part of each epoch (DistributedSampler), read from a
// PackedDataset, augmented and turned into model inputs by background threads, handed out in order as
// batches. At most `prefetch_batches` batches are prepared ahead (a bounded queue). Each sample's
// augmentation and text are drawn from (seed, epoch, global position), so the batches do not depend on
// the number of threads or on timing, and a resumed run gets exactly the batches that were next.

#include <cstdint>
#include <memory>
#include <optional>

#include "vesseltune/data/augment.h"
#include "vesseltune/data/model_inputs.h"
#include "vesseltune/data/packed_dataset.h"
#include "vesseltune/data/sample.h"
#include "vesseltune/data/sampler.h"

namespace vesseltune::data {

struct LoaderOptions {
  int64_t batch_size = 1;
  bool drop_last = false;   // drop a last batch smaller than batch_size (the same on every rank)
  int workers = 2;          // background threads
  int prefetch_batches = 4; // bound on batches prepared ahead
  SamplerOptions sampler;
  AugmentOptions augment;   // set augment.enabled = false for validation
  ModelInputOptions inputs;
};

class DataLoader {
 public:
  // Checks the shards this rank reads in its first epoch before anything else (errors name the shard).
  DataLoader(std::shared_ptr<const PackedDataset> dataset, LoaderOptions options);
  ~DataLoader();  // stops the threads
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Starts the epoch FROM.epoch at FROM.consumed (0, or a saved Batch::position to resume); the threads
  // begin preparing at once. Ends any epoch in progress.
  void start(SamplerPosition from);

  // The next batch of the epoch in order, or nothing once this rank's part is done. Rethrows the error of
  // a failed sample (with its shard and key).
  std::optional<Batch> next();

  int64_t batches_per_epoch(int64_t consumed = 0) const;
  const DistributedSampler& sampler() const { return sampler_; }

 private:
  struct Pipeline;

  std::shared_ptr<const PackedDataset> dataset_;
  LoaderOptions options_;
  DistributedSampler sampler_;
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace vesseltune::data
