#include "vesseltune/core/check.h"

#include <cstring>

namespace vesseltune::detail {

void throw_error(const char* file, int line, const std::string& message) {
  // Keep the source location short (path below src/ or include/) and after the message: users read the message.
  const char* short_file = file;
  for (const char* marker : {"/src/", "/include/", "/tests/", "/bench/", "/data_prep/"}) {
    if (const char* found = std::strstr(file, marker)) {
      short_file = found + 1;
      break;
    }
  }
  throw Error(message + " [" + short_file + ":" + std::to_string(line) + "]");
}

}  // namespace vesseltune::detail
