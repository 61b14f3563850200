#include "vesseltune/setup/parameter_count.h"

#include <cstdio>

namespace vesseltune::setup {

std::string format_parameter_counts(const std::vector<ParameterCount>& counts) {
  std::string out;
  char line[256];
  const auto add = [&](const std::string& module, const std::string& trainable, const std::string& frozen) {
    std::snprintf(line, sizeof line, "  %-20s %14s %14s\n", module.c_str(), trainable.c_str(), frozen.c_str());
    out += line;
  };
  add("parameters", "trainable", "frozen");
  int64_t trainable = 0, frozen = 0;
  for (const ParameterCount& c : counts) {
    add(c.module, std::to_string(c.trainable), std::to_string(c.frozen));
    trainable += c.trainable;
    frozen += c.frozen;
  }
  add("total", std::to_string(trainable), std::to_string(frozen));
  return out;
}

}  // namespace vesseltune::setup
