#pragma once
// Small helpers the benchmarks share: wall-clock milliseconds and the median of repeated measurements.

#include <algorithm>
#include <chrono>
#include <vector>

namespace vesseltune::bench {

inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The median of the measured values (the upper one of the middle pair); 0 for none.
inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace vesseltune::bench
