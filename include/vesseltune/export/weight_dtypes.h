#pragma once
// The dtype each exported floating-point tensor is stored in: the one the user asked for; else, when the run had
// base weights, the base checkpoint's dtype of the tensor of that name (the export keeps its base's layout, e.g.
// bf16 LLM and fp32 SAM2); else bf16, the released checkpoints' dtype. Integer tensors keep theirs.

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "vesseltune/io/safetensors.h"

namespace vesseltune::exporting {

struct WeightDtypes {
  std::optional<at::ScalarType> requested;
  const io::Checkpoint* base = nullptr;  // the run's base weights, if any

  // TENSOR in the dtype NAME is stored in (itself when it has it already).
  at::Tensor convert(const std::string& name, const at::Tensor& tensor) const;
};

}  // namespace vesseltune::exporting
