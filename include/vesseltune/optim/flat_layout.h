#pragma once
// Where every trainable element lives in the flat buffers, and which rank owns it.
//
// Tensors are taken in reverse registration order (the order backward produces their gradients) and packed
// into buckets of at most `bucket_numel` elements (a larger tensor gets a bucket of its own). Inside a bucket,
// tensors are ordered by parameter group, so that a rank's chunk meets each group in one contiguous range.
// Each bucket is padded to a multiple of the world size: one bucket is one reduce-scatter, and rank r owns
// chunk r of every bucket (with stage 0, every rank owns every bucket whole). A tensor whose gradients arrive as
// sparse rows (an embedding's) gets a bucket of its own after all the others: it is reduced by rows, at the end.
//
// The canonical order, used for checkpoints, is the tensors' registration order without padding: it does not
// depend on the world size or the bucket size, so a run saved on 4 ranks resumes on 2.

#include <cstdint>
#include <string>
#include <vector>

namespace vesseltune::optim {

struct TensorSlot {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int group = 0;
  bool sparse_rows = false;
  int bucket = 0;
  int64_t flat_offset = 0;       // in the padded flat buffer
  int64_t canonical_offset = 0;  // in registration order, unpadded
};

struct GroupRange {
  int group;
  int64_t begin;  // flat offsets; the last range of a bucket extends over its padding
  int64_t end;
};

struct Bucket {
  int64_t offset = 0;       // flat offset of the bucket's first element
  int64_t numel = 0;        // elements of its tensors
  int64_t padded = 0;       // numel rounded up to a multiple of the world size
  bool sparse_rows = false; // one tensor whose gradients arrive as sparse rows
  std::vector<int> slots;   // indices into FlatLayout::slots(), in flat order
  std::vector<GroupRange> group_ranges;
};

// A contiguous run of elements that one rank updates: a bucket's owned range cut at group boundaries.
struct OwnedSegment {
  int bucket;
  int group;
  int64_t flat_offset;
  int64_t shard_offset;  // position in this rank's shard buffers (master, moments, reduced gradients)
  int64_t numel;
};

// A contiguous run of owned elements in canonical order (for saving and loading state).
struct CanonicalSpan {
  int64_t canonical_offset;
  int64_t shard_offset;
  int64_t numel;
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  int group = 0;
  bool sparse_rows = false;  // its gradients arrive as sparse rows of a 2-D tensor
};

class FlatLayout {
 public:
  // `tensors` in registration order. With stage 0 every rank owns all of every bucket.
  FlatLayout(const std::vector<TensorSpec>& tensors, int64_t bucket_numel, int world_size, int rank, bool sharded);

  const std::vector<TensorSlot>& slots() const { return slots_; }  // registration order
  const std::vector<Bucket>& buckets() const { return buckets_; }
  int64_t flat_numel() const { return flat_numel_; }         // padded
  // Elements of the flat gradient buffer that autograd accumulates into: sharded, the buckets before the sparse-rows
  // ones (those accumulate as sparse rows, and their sums go straight to the shard); with stage 0 all of them (the
  // buffer is then also the reduced gradient that AdamW reads).
  int64_t gradient_numel() const;
  int64_t canonical_numel() const { return canonical_numel_; }
  int64_t shard_numel() const { return shard_numel_; }       // elements this rank owns

  // This rank's owned range of bucket b: [begin, end) in flat offsets, and its place in the shard.
  int64_t owned_begin(int bucket) const;
  int64_t owned_numel(int bucket) const;
  int64_t shard_offset(int bucket) const { return shard_offsets_[bucket]; }

  const std::vector<OwnedSegment>& owned_segments() const { return owned_segments_; }
  std::vector<CanonicalSpan> canonical_spans() const;

  // "bucket 0: 1000 (+2 pad) [lm_head.weight, ...]; bucket 1: ...": for logs and the fingerprint.
  std::string describe() const;

 private:
  std::vector<TensorSlot> slots_;
  std::vector<Bucket> buckets_;
  std::vector<int64_t> shard_offsets_;
  std::vector<OwnedSegment> owned_segments_;
  int world_size_;
  int rank_;
  bool sharded_;
  int64_t flat_numel_ = 0;
  int64_t canonical_numel_ = 0;
  int64_t shard_numel_ = 0;
};

}  // namespace vesseltune::optim
