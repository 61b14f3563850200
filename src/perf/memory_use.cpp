#include "vesseltune/perf/memory_use.h"

#include <unistd.h>

#include <cstdint>
#include <fstream>

#include "vesseltune/core/torch_compat.h"

namespace vesseltune::perf {

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
}  // namespace

double resident_host_gib() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / kGiB;
}

double device_peak_allocated_gib(at::Device device) {
  return device.is_cuda() ? static_cast<double>(compat::cuda_peak_allocated_bytes(device.index())) / kGiB : 0.0;
}

double device_peak_reserved_gib(at::Device device) {
  return device.is_cuda() ? static_cast<double>(compat::cuda_peak_reserved_bytes(device.index())) / kGiB : 0.0;
}

}  // namespace vesseltune::perf
