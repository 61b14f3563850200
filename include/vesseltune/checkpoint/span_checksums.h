#pragma once
// Strong checksums of a checkpoint's optimizer state. Every writer records, for each part of a trainable tensor it
// writes, the content hash (xxHash64) of its fp32 values as written:
//   /optimizer/checksums/rank_<writer>   uint64 [n, 4]: field (0 master, 1 exp_avg, 2 exp_avg_sq), canonical offset,
//                                        element count, content hash
// A reader re-reads the recorded spans and compares: on resume the ranks share the records out, so that the whole
// state is checked once; evaluation and export check every master span. Checkpoints written before these
// checksums have no group and are read with Fletcher-32 alone (a warning says so).

#include <hdf5.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vesseltune::checkpoint {

struct SpanChecksum {
  uint64_t field = 0;
  uint64_t offset = 0;
  uint64_t numel = 0;
  uint64_t hash = 0;
};

// The checksum of VALUES (fp32, contiguous, on the host) written at canonical OFFSET of FIELD.
SpanChecksum span_checksum(int field, int64_t offset, const at::Tensor& values);

// Adds WRITER's records to the optimizer group (WHERE names the file in errors).
void write_span_checksums(hid_t optimizer_group, int writer, const std::vector<SpanChecksum>& records,
                          const std::string& where);

// Every writer's records; empty for a checkpoint written before checksums existed.
std::vector<SpanChecksum> read_span_checksums(hid_t optimizer_group, const std::string& where);

// Throws, naming the file, the field and TENSOR (the one the span belongs to), when VALUES (the span of RECORD as
// read back, fp32 contiguous on the host) differ from its content hash.
void verify_span(const SpanChecksum& record, const at::Tensor& values, const std::string& field_name,
                 const std::string& tensor, const std::string& where);

}  // namespace vesseltune::checkpoint
