#include "vesseltune/optim/flat_layout.h"

#include <algorithm>
#include <sstream>

#include "vesseltune/core/check.h"

namespace vesseltune::optim {

FlatLayout::FlatLayout(const std::vector<TensorSpec>& tensors, int64_t bucket_numel, int world_size, int rank,
                       bool sharded)
    : world_size_(world_size), rank_(rank), sharded_(sharded) {
  VT_CHECK(!tensors.empty(), "no trainable tensors: nothing to optimise");
  VT_CHECK(bucket_numel > 0, "bucket size must be positive");
  VT_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "invalid rank ", rank, " of ", world_size);

  for (const auto& spec : tensors) {
    TensorSlot slot;
    slot.name = spec.name;
    slot.shape = spec.shape;
    slot.numel = 1;
    for (int64_t d : spec.shape) slot.numel *= d;
    VT_CHECK(slot.numel > 0, "trainable tensor '", spec.name, "' is empty");
    VT_CHECK(spec.group >= 0, "trainable tensor '", spec.name, "' has a negative group");
    VT_CHECK(!spec.sparse_rows || spec.shape.size() == 2, "trainable tensor '", spec.name,
             "' has sparse row gradients but ", spec.shape.size(), " dimensions instead of 2");
    slot.group = spec.group;
    slot.sparse_rows = spec.sparse_rows;
    slot.canonical_offset = canonical_numel_;
    canonical_numel_ += slot.numel;
    slots_.push_back(std::move(slot));
  }

  // Fill buckets walking backwards through registration order; tensors with sparse row gradients last, alone.
  std::vector<std::vector<int>> members;
  int64_t filled = 0;
  for (int i = static_cast<int>(slots_.size()) - 1; i >= 0; --i) {
    if (slots_[i].sparse_rows) continue;
    if (members.empty() || (filled > 0 && filled + slots_[i].numel > bucket_numel)) {
      members.emplace_back();
      filled = 0;
    }
    members.back().push_back(i);
    filled += slots_[i].numel;
  }
  for (int i = static_cast<int>(slots_.size()) - 1; i >= 0; --i) {
    if (slots_[i].sparse_rows) members.push_back({i});
  }

  for (auto& member : members) {
    // Group-major inside the bucket; within a group keep backward order (stable).
    std::stable_sort(member.begin(), member.end(), [&](int a, int b) { return slots_[a].group < slots_[b].group; });
    Bucket bucket;
    bucket.offset = flat_numel_;
    int64_t cursor = bucket.offset;
    for (int index : member) {
      auto& slot = slots_[index];
      slot.bucket = static_cast<int>(buckets_.size());
      slot.flat_offset = cursor;
      if (bucket.group_ranges.empty() || bucket.group_ranges.back().group != slot.group) {
        bucket.group_ranges.push_back(GroupRange{slot.group, cursor, cursor});
      }
      cursor += slot.numel;
      bucket.group_ranges.back().end = cursor;
    }
    bucket.numel = cursor - bucket.offset;
    bucket.padded = (bucket.numel + world_size - 1) / world_size * world_size;
    bucket.group_ranges.back().end = bucket.offset + bucket.padded;
    bucket.slots = member;
    bucket.sparse_rows = slots_[member.front()].sparse_rows;
    flat_numel_ += bucket.padded;
    buckets_.push_back(std::move(bucket));
  }

  for (int b = 0; b < static_cast<int>(buckets_.size()); ++b) {
    shard_offsets_.push_back(shard_numel_);
    const int64_t begin = owned_begin(b);
    const int64_t end = begin + owned_numel(b);
    for (const auto& range : buckets_[b].group_ranges) {
      const int64_t lo = std::max(begin, range.begin);
      const int64_t hi = std::min(end, range.end);
      if (lo < hi) owned_segments_.push_back(OwnedSegment{b, range.group, lo, shard_numel_ + (lo - begin), hi - lo});
    }
    shard_numel_ += owned_numel(b);
  }
}

int64_t FlatLayout::gradient_numel() const {
  if (!sharded_) return flat_numel_;
  for (const Bucket& bucket : buckets_) {
    if (bucket.sparse_rows) return bucket.offset;  // they come last
  }
  return flat_numel_;
}

int64_t FlatLayout::owned_begin(int bucket) const {
  const auto& b = buckets_[bucket];
  return sharded_ ? b.offset + rank_ * (b.padded / world_size_) : b.offset;
}

int64_t FlatLayout::owned_numel(int bucket) const {
  const auto& b = buckets_[bucket];
  return sharded_ ? b.padded / world_size_ : b.padded;
}

std::vector<CanonicalSpan> FlatLayout::canonical_spans() const {
  std::vector<CanonicalSpan> spans;
  for (const auto& slot : slots_) {
    const int64_t begin = owned_begin(slot.bucket);
    const int64_t end = begin + owned_numel(slot.bucket);
    const int64_t lo = std::max(begin, slot.flat_offset);
    const int64_t hi = std::min(end, slot.flat_offset + slot.numel);
    if (lo < hi) {
      spans.push_back(CanonicalSpan{slot.canonical_offset + (lo - slot.flat_offset),
                                    shard_offsets_[slot.bucket] + (lo - begin), hi - lo});
    }
  }
  return spans;  // registration order is canonical order
}

std::string FlatLayout::describe() const {
  std::ostringstream out;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const auto& bucket = buckets_[b];
    out << (b ? "; " : "") << "bucket " << b << ": " << bucket.numel << " (+" << bucket.padded - bucket.numel
        << " pad" << (bucket.sparse_rows ? ", sparse rows" : "") << ") [";
    for (size_t i = 0; i < bucket.slots.size(); ++i) {
      const auto& slot = slots_[bucket.slots[i]];
      out << (i ? ", " : "") << slot.name << ":g" << slot.group;
      for (size_t d = 0; d < slot.shape.size(); ++d) out << (d ? "x" : ":") << slot.shape[d];
    }
    out << "]";
  }
  return out.str();
}

}  // namespace vesseltune::optim
