#pragma once
// A run's identity, checked across ranks before the first step: the resolved configuration, the trainable
// tensors, the bucket layout and the world size must be equal everywhere, or ranks would exchange mismatched
// buffers. Each field is hashed; the hashes are all-gathered (a host collective).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vesseltune/comm/communicator.h"

namespace vesseltune::comm {

class Fingerprint {
 public:
  void add(std::string field, std::string value);
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Collective over the communicator's ranks. Adds the world size, then compares every rank's fields with rank 0's. On a mismatch
// every rank throws the same vesseltune::Error: "fingerprint mismatch: rank 2 (host) differs from rank 0 in
// field 'bucket layout'", so that the top level aborts the job with that message.
void verify_fingerprint(Communicator& comm, Fingerprint fingerprint);

// FNV-1a 64: stable across processes and builds (std::hash is not).
uint64_t stable_hash(const std::string& text);

}  // namespace vesseltune::comm
