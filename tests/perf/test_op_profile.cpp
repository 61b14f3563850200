// The profile summary (op_profile.h) on hand-made events with hand-computed figures, and LibTorch's profiler
// through the compat shim on this build's device.
#include <gtest/gtest.h>

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "vesseltune/perf/op_profile.h"

namespace vesseltune::perf {
namespace {

compat::ProfiledEvent host(const std::string& name, double start, double duration) {
  return {name, false, start, duration};
}
compat::ProfiledEvent gpu(const std::string& name, double start, double duration) {
  return {name, true, start, duration};
}

TEST(OpProfile, CountsPerStepAndGpuBusyTimeAsTheUnionOfIntervals) {
  // Two steps. GPU intervals (µs): [100,110) [105,115) overlap → 15; [120,130) → 10; [300,340) → 40: busy 65.
  // Wall: first start 0 to last end 400 (the host op [360,400)).
  const std::vector<compat::ProfiledEvent> events{
      host("aten::linear", 0, 50),          host("aten::mm", 10, 30),           host("aten::add", 60, 5),
      host("aten::add", 200, 5),            host("cudaLaunchKernel", 12, 4),    host("cudaLaunchKernel", 62, 2),
      host("cuLaunchKernelEx", 202, 2),     host("cudaStreamSynchronize", 150, 20),
      host("cudaMemcpyAsync", 210, 3),      host("cudaMemcpy", 250, 6),         host("aten::mm", 360, 40),
      gpu("gemm", 100, 10),                 gpu("gemm", 105, 10),               gpu("add_kernel", 120, 10),
      gpu("gemm", 300, 40),                 host("vesseltune::backward", 150, 100), host("vesseltune::backward", 300, 60),
      host("vesseltune::sam2", 0, 20),      gpu("vesseltune::backward", 100, 300)};  // Kineto's GPU copy of a scope
  const OpProfile p = summarize_op_profile(events, 2, 10);
  EXPECT_EQ(p.steps, 2);
  EXPECT_DOUBLE_EQ(p.wall_ms, 0.400 / 2);
  EXPECT_DOUBLE_EQ(p.gpu_busy_ms, 0.065 / 2);
  EXPECT_EQ(p.operators, 5 / 2);  // per step, whole operators
  EXPECT_EQ(p.gpu_events, 2);
  EXPECT_EQ(p.launches, 3 / 2);
  EXPECT_DOUBLE_EQ(p.launch_ms, 0.008 / 2);
  EXPECT_EQ(p.synchronizations, 1);  // cudaStreamSynchronize and the blocking cudaMemcpy; not the async copy
  EXPECT_DOUBLE_EQ(p.synchronize_ms, 0.026 / 2);
  // Named scopes: all of them, by time, per step; not operators; their GPU copies count for nothing.
  ASSERT_EQ(p.scopes.size(), 2u);
  EXPECT_EQ(p.scopes[0].name, "vesseltune::backward");
  EXPECT_EQ(p.scopes[0].count, 1);
  EXPECT_DOUBLE_EQ(p.scopes[0].total_ms, 0.160 / 2);
  EXPECT_EQ(p.scopes[1].name, "vesseltune::sam2");
  ASSERT_EQ(p.top_gpu.size(), 2u);
  EXPECT_EQ(p.top_gpu[0].name, "gemm");  // 60 µs in three kernels
  EXPECT_DOUBLE_EQ(p.top_gpu[0].total_ms, 0.060 / 2);
  EXPECT_EQ(p.top_gpu[1].name, "add_kernel");
  ASSERT_EQ(p.top_operators.size(), 3u);
  // By count, ties by name: aten::add 2, aten::mm 2, aten::linear 1.
  EXPECT_EQ(p.top_operators[0].name, "aten::add");
  EXPECT_EQ(p.top_operators[1].name, "aten::mm");
  EXPECT_DOUBLE_EQ(p.top_operators[1].total_ms, 0.070 / 2);
  EXPECT_EQ(p.top_operators[2].name, "aten::linear");
  const std::string text = format_op_profile(p);
  EXPECT_NE(text.find("GPU busy 0.0 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("gemm"), std::string::npos) << text;
}

TEST(OpProfile, RejectsNoSteps) { EXPECT_THROW(summarize_op_profile({}, 0), std::exception); }

TEST(OpProfile, LibTorchProfilerSeesTheOperators) {
  at::Tensor a = at::randn({64, 64}), b = at::randn({64, 64});
  try {
    compat::start_op_profiler(false);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "this LibTorch has no Kineto profiler: " << e.what();
  }
  for (int i = 0; i < 3; ++i) {
    RECORD_USER_SCOPE("vesseltune::step");
    a = at::mm(a, b).tanh();
  }
  const std::string trace = testing::TempDir() + "vesseltune_op_profile_trace.json";
  const compat::ProfiledRun run = compat::stop_op_profiler(trace);
  // Without Kineto (Debian's 1.13) the operators are there but no trace; with it, the trace is a file.
  if (run.trace_error.empty()) {
    EXPECT_TRUE(std::ifstream(trace).good()) << trace;
    std::remove(trace.c_str());
  }
  const std::vector<compat::ProfiledEvent>& events = run.events;
  const auto mm = std::count_if(events.begin(), events.end(),
                                [](const compat::ProfiledEvent& e) { return e.name == "aten::mm" && !e.on_gpu; });
  EXPECT_EQ(mm, 3);
  const OpProfile p = summarize_op_profile(events, 3);
  EXPECT_GE(p.operators, 2);  // mm and tanh per "step"
  EXPECT_GT(p.wall_ms, 0.0);
  EXPECT_EQ(p.gpu_events, 0);
  ASSERT_EQ(p.scopes.size(), 1u);
  EXPECT_EQ(p.scopes[0].name, "vesseltune::step");
  EXPECT_EQ(p.scopes[0].count, 1);  // 3 over 3 "steps"
}

}  // namespace
}  // namespace vesseltune::perf
