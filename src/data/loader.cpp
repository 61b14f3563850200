#include "vesseltune/data/loader.h"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "vesseltune/core/check.h"
#include "vesseltune/data/random.h"

namespace vesseltune::data {

// One epoch in flight: workers claim the rank's samples in order, at most `capacity` ahead of the
// consumer, and leave each result (or its error) in a ring of slots that the consumer empties in order.
struct DataLoader::Pipeline {
  struct Slot {
    bool ready = false;
    std::optional<Sample> sample;
    std::exception_ptr error;
  };

  SamplerPosition from;
  std::vector<int64_t> indices;  // this rank's sample indices from `from` on
  int64_t count = 0;             // how many of them are handed out (drop_last may cut the tail)
  int64_t capacity = 0;
  std::vector<Slot> slots;       // slot of local position i: i % capacity
  int64_t claimed = 0;           // next local position a worker takes
  int64_t consumed = 0;          // next local position the consumer takes
  bool stopping = false;
  std::mutex mutex;
  std::condition_variable space;  // workers wait for room
  std::condition_variable filled; // the consumer waits for its next sample
  std::vector<std::thread> threads;

  ~Pipeline() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    space.notify_all();
    for (std::thread& thread : threads) thread.join();
  }
};

namespace {

int64_t dataset_size(const std::shared_ptr<const PackedDataset>& dataset) {
  VT_CHECK(dataset, "DataLoader: no data set");
  return dataset->size();
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const PackedDataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)), sampler_(dataset_size(dataset_), options_.sampler) {
  VT_CHECK(options_.batch_size > 0, "DataLoader: batch size must be positive, got ", options_.batch_size);
  VT_CHECK(options_.workers > 0, "DataLoader: needs at least one worker thread, got ", options_.workers);
  VT_CHECK(options_.prefetch_batches > 0, "DataLoader: prefetch_batches must be positive, got ",
           options_.prefetch_batches);
  dataset_->validate(sampler_.rank_indices({0, 0}));  // this rank's shards, checked before any is used
}

DataLoader::~DataLoader() = default;

int64_t DataLoader::batches_per_epoch(int64_t consumed) const {
  const int64_t samples = sampler_.samples_per_rank(consumed);
  return options_.drop_last ? samples / options_.batch_size : (samples + options_.batch_size - 1) / options_.batch_size;
}

void DataLoader::start(SamplerPosition from) {
  pipeline_.reset();  // joins the threads of an earlier epoch
  auto pipeline = std::make_unique<Pipeline>();
  pipeline->from = from;
  pipeline->indices = sampler_.rank_indices(from);
  const auto available = static_cast<int64_t>(pipeline->indices.size());
  pipeline->count = options_.drop_last ? available / options_.batch_size * options_.batch_size : available;
  pipeline->capacity = options_.batch_size * options_.prefetch_batches;
  pipeline->slots.resize(static_cast<size_t>(pipeline->capacity));
  Pipeline* p = pipeline.get();
  const int world = options_.sampler.world, rank = options_.sampler.rank;
  for (int w = 0; w < options_.workers; ++w) {
    p->threads.emplace_back([this, p, world, rank] {
      for (;;) {
        int64_t local = 0;
        {
          std::unique_lock<std::mutex> lock(p->mutex);
          p->space.wait(lock, [p] { return p->stopping || p->claimed >= p->count || p->claimed < p->consumed + p->capacity; });
          if (p->stopping || p->claimed >= p->count) return;
          local = p->claimed++;
        }
        Pipeline::Slot result;
        try {
          const int64_t index = p->indices[static_cast<size_t>(local)];
          const int64_t global_position = p->from.consumed + rank + local * world;
          const uint64_t seed = mix_seed(options_.sampler.seed, static_cast<uint64_t>(p->from.epoch),
                                         static_cast<uint64_t>(global_position));
          const SampleRecord record = dataset_->read(index);
          Sample sample = make_model_inputs(record, options_.inputs, seed, draw_augmentation(options_.augment, seed));
          sample.index = index;
          sample.seed = seed;
          result.sample = std::move(sample);
        } catch (...) {
          result.error = std::current_exception();
        }
        {
          std::lock_guard<std::mutex> lock(p->mutex);
          Pipeline::Slot& slot = p->slots[static_cast<size_t>(local % p->capacity)];
          slot = std::move(result);
          slot.ready = true;
        }
        p->filled.notify_all();
      }
    });
  }
  pipeline_ = std::move(pipeline);
}

std::optional<Batch> DataLoader::next() {
  VT_CHECK(pipeline_, "DataLoader::next before start()");
  Pipeline& p = *pipeline_;
  std::vector<Sample> samples;
  int64_t end = 0;
  {
    std::unique_lock<std::mutex> lock(p.mutex);
    if (p.consumed >= p.count) return std::nullopt;
    end = std::min(p.consumed + options_.batch_size, p.count);
    for (int64_t local = p.consumed; local < end; ++local) {
      Pipeline::Slot& slot = p.slots[static_cast<size_t>(local % p.capacity)];
      p.filled.wait(lock, [&slot] { return slot.ready; });
      if (slot.error) std::rethrow_exception(slot.error);
      samples.push_back(std::move(*slot.sample));
      slot = Pipeline::Slot();
    }
    p.consumed = end;
  }
  p.space.notify_all();
  Batch batch = collate(std::move(samples));
  batch.position = sampler_.advance(p.from, end);
  return batch;
}

}  // namespace vesseltune::data
