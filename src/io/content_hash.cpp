#include "vesseltune/io/content_hash.h"

#include <xxhash.h>

namespace vesseltune::io {

uint64_t content_hash(const void* data, size_t bytes) { return XXH64(data, bytes, 0); }

}  // namespace vesseltune::io
