#pragma once
// Sizes as Hugging Face writes them (max_shard_size="5GB"): a number with an optional unit, KB / MB / GB in
// powers of 1000 and KiB / MiB / GiB in powers of 1024, any case; no unit is bytes.

#include <cstdint>
#include <string>

namespace vesseltune::exporting {

// Throws naming TEXT when it is not a positive size.
uint64_t parse_byte_size(const std::string& text);

}  // namespace vesseltune::exporting
