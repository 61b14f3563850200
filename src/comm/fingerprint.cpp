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

void verify_fingerprint(const World& world, Fingerprint fingerprint) {
  fingerprint.add("world size", std::to_string(world.size));
  const auto& fields = fingerprint.fields();

  // The number of fields first: a rank built from other code would otherwise desynchronise the gather.
  const int count = static_cast<int>(fields.size());
  std::vector<int> counts(world.size);
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, world.comm);
  for (int r = 0; r < world.size; ++r) {
    VT_CHECK(counts[r] == counts[0], "fingerprint mismatch: ", world.describe(r), " has ", counts[r],
             " fields, rank 0 has ", counts[0], " (different vesseltune builds?)");
  }

  std::vector<uint64_t> mine(count);
  for (int f = 0; f < count; ++f) mine[f] = stable_hash(fields[f].first + '\0' + fields[f].second);
  std::vector<uint64_t> all(static_cast<size_t>(count) * world.size);
  MPI_Allgather(mine.data(), count, MPI_UINT64_T, all.data(), count, MPI_UINT64_T, world.comm);
  for (int r = 1; r < world.size; ++r) {
    for (int f = 0; f < count; ++f) {
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
