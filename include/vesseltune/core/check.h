#pragma once
// Errors with context. Library code throws vesseltune::Error whose message names what failed and where
// (file, field, rank, tensor); executables catch it once at the top and end every rank cleanly.

#include <sstream>
#include <stdexcept>
#include <string>

namespace vesseltune {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

}  // namespace detail
}  // namespace vesseltune

// VT_CHECK(condition, message parts...): throws vesseltune::Error with the parts concatenated.
#define VT_CHECK(condition, ...)                                                               \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      ::vesseltune::detail::throw_error(__FILE__, __LINE__, ::vesseltune::detail::concat(__VA_ARGS__)); \
    }                                                                                          \
  } while (0)

#define VT_FAIL(...) ::vesseltune::detail::throw_error(__FILE__, __LINE__, ::vesseltune::detail::concat(__VA_ARGS__))
