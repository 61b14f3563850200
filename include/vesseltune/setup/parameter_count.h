#pragma once
// Parameters per top-level module (vision_model, mlp1, language_model, text_hidden_fcs, grounding_encoder), as the
// built model counts them (model_setup.h) and as the memory plan predicts them (memory_plan.h), and the one table
// both print.
#include <cstdint>
#include <string>
#include <vector>

namespace vesseltune::setup {

struct ParameterCount {
  std::string module;  // top-level key
  int64_t trainable = 0;
  int64_t frozen = 0;
};

// "  parameters  trainable  frozen" then one line per module and a total, each line ending in '\n'.
std::string format_parameter_counts(const std::vector<ParameterCount>& counts);

}  // namespace vesseltune::setup
