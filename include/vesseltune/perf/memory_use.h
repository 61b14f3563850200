#pragma once
// What this process holds: for the training log, the metrics file and the benchmark summary.

#include <ATen/ATen.h>

namespace vesseltune::perf {

// Resident host memory now (/proc/self/statm), GiB.
double resident_host_gib();
// The device's peak allocated and peak reserved memory since the process started, GiB; 0 on the CPU.
double device_peak_allocated_gib(at::Device device);
double device_peak_reserved_gib(at::Device device);

}  // namespace vesseltune::perf
