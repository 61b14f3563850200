#pragma once
// The message of the vesseltune::Error that ACTION throws, or "" when it throws none: tests check that bad input
// is refused with a message naming the file, key or tensor.
#include <functional>
#include <string>

#include "vesseltune/core/check.h"

namespace vesseltune::testing_support {

inline std::string error_message(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace vesseltune::testing_support
