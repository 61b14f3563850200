// libFuzzer harness for the safetensors header parser: any byte string must parse or throw vesseltune::Error,
// never crash, hang or read out of bounds (run under AddressSanitizer by tests/support/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "vesseltune/core/check.h"
#include "vesseltune/io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto header = vesseltune::io::parse_safetensors_header(data, size, size, "fuzz input");
    // Every accepted entry must lie inside the input.
    for (const auto& entry : header.entries) {
      if (header.data_offset + entry.end > size) __builtin_trap();
    }
  } catch (const vesseltune::Error&) {
  }
  return 0;
}
