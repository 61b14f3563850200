#include "vesseltune/comm/fingerprint.h"

#include "vesseltune/core/check.h"

namespace vesseltune::comm {

void Fingerprint::add(std::string field, std::string value) { fields_.emplace_back(std::move(field), std::move(value)); }

uint64_t stable_hash(const std::string& text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

void verify_fingerprint(Communicator& comm, Fingerprint fingerprint) {
  const World& world = comm.world();
  fingerprint.add("world size", std::to_string(world.size));
  const auto& fields = fingerprint.fields();
  const size_t count = fields.size();
  std::vector<uint64_t> mine(count);
  for (size_t f = 0; f < count; ++f) mine[f] = stable_hash(fields[f].first + '\0' + fields[f].second);
  // A rank built from other code has another number of fields: the gather names it.
  const std::vector<uint64_t> all = comm.all_gather_host(mine, "fingerprint mismatch (different vesseltune builds?)");
  for (int r = 1; r < world.size; ++r) {
    for (size_t f = 0; f < count; ++f) {
      if (all[static_cast<size_t>(r) * count + f] != all[f]) {
        std::string detail;
        if (world.rank == r || world.rank == 0) {
          const std::string& value = fields[f].second;
          detail = "; here (" + world.describe(world.rank) + ") it is: " + value.substr(0, 200) +
                   (value.size() > 200 ? "..." : "");
        }
        VT_FAIL("fingerprint mismatch: ", world.describe(r), " differs from rank 0 in field '", fields[f].first, "'",
                detail);
      }
    }
  }
}

}  // namespace vesseltune::comm
