#pragma once
// What a profile of benchmark steps says about where a step's time goes (`vesseltune-train --benchmark N
// --profile`): how many operators and kernels a step issues, how long the GPU is busy against the step's wall
// time (a step whose GPU is mostly idle is bound by the host's issuing of work, not by arithmetic), where the host
// waited for the GPU, how long the host spent in each part of the step (the model's parts, backward, optimizer:
// RECORD_USER_SCOPE("vesseltune::…") in the code), and the operators and kernels that cost most.
#include <cstdint>
#include <string>
#include <vector>

#include "vesseltune/core/torch_compat.h"

namespace vesseltune::perf {

struct OpCost {
  std::string name;
  int64_t count = 0;
  double total_ms = 0;
};

struct OpProfile {
  int steps = 0;
  double wall_ms = 0;            // per step: first to last event of the profile, divided by the steps
  double gpu_busy_ms = 0;        // per step: union of the GPU events' intervals (overlapping streams count once)
  int64_t operators = 0;         // per step: host operators (aten::*, including those nested in others)
  int64_t gpu_events = 0;        // per step: kernels, copies and memsets
  int64_t launches = 0;          // per step: CUDA runtime launch calls
  double launch_ms = 0;          // per step: host time inside them
  int64_t synchronizations = 0;  // per step: host calls that wait for the device (synchronize, blocking copies)
  double synchronize_ms = 0;     // per step: host time inside them
  std::vector<OpCost> scopes;    // vesseltune's named host scopes ("vesseltune::…": model parts, backward,
                                 // optimizer), by total time; wall time on the host, nested operators included
  std::vector<OpCost> top_gpu;   // GPU events by total time
  std::vector<OpCost> top_operators;  // host operators by count
};

// EVENTS: one profile over STEPS steps. TOP: rows of each list.
OpProfile summarize_op_profile(const std::vector<compat::ProfiledEvent>& events, int steps, size_t top = 15);

// For the log: the figures per step and both lists.
std::string format_op_profile(const OpProfile& profile);

}  // namespace vesseltune::perf
