#include "vesseltune/export/byte_size.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <utility>
#include <vector>

#include "vesseltune/core/check.h"

namespace vesseltune::exporting {

uint64_t parse_byte_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string unit = text.substr(digits);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::toupper(c); });
  static const std::vector<std::pair<std::string, uint64_t>> units = {
      {"", 1},          {"B", 1},
      {"KB", 1000},     {"MB", 1000'000},      {"GB", 1000'000'000},
      {"KIB", 1 << 10}, {"MIB", 1 << 20},      {"GIB", uint64_t{1} << 30}};
  const auto found = std::find_if(units.begin(), units.end(), [&](const auto& u) { return u.first == unit; });
  VT_CHECK(digits > 0 && found != units.end(), "size '", text,
           "' is not a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 5GB");
  VT_CHECK(digits <= 15, "size '", text, "' is too large");
  const uint64_t number = std::stoull(text.substr(0, digits));
  VT_CHECK(number > 0, "size '", text, "' must be positive");
  VT_CHECK(number <= UINT64_MAX / found->second, "size '", text, "' is too large");
  return number * found->second;
}

}  // namespace vesseltune::exporting
