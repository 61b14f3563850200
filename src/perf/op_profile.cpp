#include "vesseltune/perf/op_profile.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <utility>

#include "vesseltune/core/check.h"

namespace vesseltune::perf {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// CUDA runtime calls in which the host waits for the device: explicit synchronisation, and copies that are
// not asynchronous (cudaMemcpy without Async waits for the stream's work before it).
bool is_synchronization(const std::string& name) {
  return name.find("Synchronize") != std::string::npos || name == "cudaMemcpy" || name == "cudaMemcpy2D";
}

bool is_launch(const std::string& name) {
  return starts_with(name, "cudaLaunchKernel") || starts_with(name, "cuLaunchKernel") || name == "cudaGraphLaunch";
}

std::vector<OpCost> top_by(std::map<std::string, OpCost> costs, size_t top, bool by_time) {
  std::vector<OpCost> rows;
  rows.reserve(costs.size());
  for (auto& [name, cost] : costs) rows.push_back(std::move(cost));
  std::sort(rows.begin(), rows.end(), [by_time](const OpCost& a, const OpCost& b) {
    if (by_time ? a.total_ms != b.total_ms : a.count != b.count) {
      return by_time ? a.total_ms > b.total_ms : a.count > b.count;
    }
    return a.name < b.name;
  });
  if (rows.size() > top) rows.resize(top);
  return rows;
}

void add(std::map<std::string, OpCost>& costs, const compat::ProfiledEvent& e) {
  OpCost& c = costs[e.name];
  c.name = e.name;
  ++c.count;
  c.total_ms += e.duration_us / 1000.0;
}

// Length of the union of [start, start + duration) intervals, in µs.
double union_us(std::vector<std::pair<double, double>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  double total = 0, end = -std::numeric_limits<double>::infinity();
  for (const auto& [start, stop] : intervals) {
    if (stop <= end) continue;
    total += stop - std::max(start, end);
    end = stop;
  }
  return total;
}

}  // namespace

OpProfile summarize_op_profile(const std::vector<compat::ProfiledEvent>& events, int steps, size_t top) {
  VT_CHECK(steps > 0, "op profile: steps must be positive, got ", steps);
  OpProfile p;
  p.steps = steps;
  if (events.empty()) return p;
  double first = std::numeric_limits<double>::infinity(), last = -first;
  std::vector<std::pair<double, double>> gpu;
  std::map<std::string, OpCost> gpu_costs, operator_costs, scope_costs;
  int64_t operators = 0, gpu_events = 0, launches = 0, syncs = 0;
  double launch_us = 0, sync_us = 0;
  for (const auto& e : events) {
    first = std::min(first, e.start_us);
    last = std::max(last, e.start_us + e.duration_us);
    if (starts_with(e.name, "vesseltune::")) {
      // A named scope. Kineto also draws it on the GPU's timeline (spanning its kernels and the gaps between
      // them); that copy is neither a kernel nor busy time.
      if (!e.on_gpu) add(scope_costs, e);
      continue;
    }
    if (e.on_gpu) {
      gpu.emplace_back(e.start_us, e.start_us + e.duration_us);
      ++gpu_events;
      add(gpu_costs, e);
    } else if (starts_with(e.name, "aten::")) {
      ++operators;
      add(operator_costs, e);
    } else if (is_launch(e.name)) {
      ++launches;
      launch_us += e.duration_us;
    } else if (is_synchronization(e.name)) {
      ++syncs;
      sync_us += e.duration_us;
    }
  }
  const double n = steps;
  p.wall_ms = (last - first) / 1000.0 / n;
  p.gpu_busy_ms = union_us(std::move(gpu)) / 1000.0 / n;
  p.operators = operators / steps;
  p.gpu_events = gpu_events / steps;
  p.launches = launches / steps;
  p.launch_ms = launch_us / 1000.0 / n;
  p.synchronizations = syncs / steps;
  p.synchronize_ms = sync_us / 1000.0 / n;
  const size_t scopes = scope_costs.size();  // all of them: there are few
  p.scopes = top_by(std::move(scope_costs), scopes, true);
  p.top_gpu = top_by(std::move(gpu_costs), top, true);
  p.top_operators = top_by(std::move(operator_costs), top, false);
  for (auto* rows : {&p.scopes, &p.top_gpu, &p.top_operators}) {
    for (auto& row : *rows) {
      row.total_ms /= n;
      row.count /= steps;
    }
  }
  return p;
}

std::string format_op_profile(const OpProfile& p) {
  char line[256];
  std::string out = "profile of " + std::to_string(p.steps) + " step(s), per step:\n";
  const double busy = p.wall_ms > 0 ? 100.0 * p.gpu_busy_ms / p.wall_ms : 0.0;
  std::snprintf(line, sizeof line, "  wall %.1f ms, GPU busy %.1f ms (%.1f %%)\n", p.wall_ms, p.gpu_busy_ms, busy);
  out += line;
  std::snprintf(line, sizeof line,
                "  %lld host operators, %lld GPU kernels/copies, %lld launches (%.1f ms), %lld synchronisations "
                "(%.1f ms)\n",
                static_cast<long long>(p.operators), static_cast<long long>(p.gpu_events),
                static_cast<long long>(p.launches), p.launch_ms, static_cast<long long>(p.synchronizations),
                p.synchronize_ms);
  out += line;
  const auto table = [&](const char* title, const std::vector<OpCost>& rows) {
    out += std::string("  ") + title + "\n";
    for (const auto& r : rows) {
      std::snprintf(line, sizeof line, "    %8lld  %9.2f ms  %.90s\n", static_cast<long long>(r.count), r.total_ms,
                    r.name.c_str());
      out += line;
    }
  };
  table("host time in the step's parts (count, ms including what they call):", p.scopes);
  table("GPU events by time (count, ms):", p.top_gpu);
  table("host operators by count (count, ms including nested operators):", p.top_operators);
  return out;
}

}  // namespace vesseltune::perf
