// bench_adamw: CPU AdamW throughput (parameters/s) of vesseltune's SIMD kernel against torch::optim::AdamW at
// the same thread count, and against this machine's memory-bandwidth bound measured in the same run with a
// STREAM-like triad. The kernel moves 28 bytes per parameter in the offload case (bf16 gradient in, fp32
// master/m/v read and written, bf16 parameter out), so bound = triad bandwidth / 28.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "vesseltune/optim/adamw_kernel.h"
#include "vesseltune/optim/host_thread_pool.h"

using namespace vesseltune::optim;
using Clock = std::chrono::steady_clock;

namespace {

template <typename F>
double best_seconds(int repeats, F&& body) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

void triad(double* __restrict a, const double* __restrict b, const double* __restrict c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + 3.0 * c[i];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_adamw: host AdamW parameters/s against torch::optim::AdamW and the memory-bandwidth bound"};
  int64_t numel = 64'000'000;
  int threads = 0, repeats = 5;
  app.add_option("--numel", numel, "parameters per step");
  app.add_option("--threads", threads, "threads (0: all cores this process may use)");
  app.add_option("--repeats", repeats, "timed repetitions (best is reported)");
  CLI11_PARSE(app, argc, argv);

  HostThreadPool pool(threads, 0, 1);
  threads = pool.threads();
  at::set_num_threads(threads);
  std::printf("bench_adamw: %lld parameters, %d thread(s), SIMD %s\n", static_cast<long long>(numel), threads,
              to_string(best_simd_level()));

  // STREAM triad a = b + s * c over doubles, counted as STREAM counts it: 24 bytes per element.
  at::Tensor a = at::zeros({numel}, at::kDouble), b = at::ones({numel}, at::kDouble), c = at::full({numel}, 2.0, at::kDouble);
  const double triad_s = best_seconds(repeats, [&] {
    pool.parallel_for(numel, 1024, [&](int, int64_t begin, int64_t end) {
      triad(a.data_ptr<double>() + begin, b.data_ptr<double>() + begin, c.data_ptr<double>() + begin, end - begin);
    });
  });
  const double triad_gbs = 24.0 * numel / triad_s / 1e9;
  const double bound = triad_gbs * 1e9 / 28.0;

  at::Tensor master = at::randn({numel}), m = at::zeros({numel}), v = at::zeros({numel});
  at::Tensor grad16 = at::randn({numel}).to(at::kBFloat16), out16 = at::empty({numel}, at::kBFloat16);
  at::Tensor grad32 = at::randn({numel});
  AdamWStep hyper;
  hyper.weight_decay = 0.01;
  const double ours_bf16_s = best_seconds(repeats, [&] {
    adamw_host(hyper, master.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), grad16.data_ptr(),
               at::kBFloat16, out16.data_ptr(), at::kBFloat16, numel, &pool);
  });
  const double ours_fp32_s = best_seconds(repeats, [&] {
    adamw_host(hyper, master.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), grad32.data_ptr(),
               at::kFloat, nullptr, at::kFloat, numel, &pool);
  });

  // torch::optim::AdamW on one fp32 tensor of the same size (its best case: a single large tensor).
  torch::Tensor param = torch::randn({numel}).requires_grad_(true);
  param.mutable_grad() = torch::randn({numel});
  torch::optim::AdamW torch_adamw({param}, torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
  torch_adamw.step();  // allocates the state
  const double torch_s = best_seconds(repeats, [&] { torch_adamw.step(); });

  const double ours_bf16 = numel / ours_bf16_s, ours_fp32 = numel / ours_fp32_s, torch_rate = numel / torch_s;
  std::printf("\n%-44s %14s %12s\n", "what", "params/s", "vs torch");
  std::printf("%-44s %14.3e %12s\n", "memory bound (triad / 28 B)", bound, "");
  std::printf("%-44s %14.3e %11.2fx\n", "vesseltune AdamW, bf16 grad -> bf16 param", ours_bf16, ours_bf16 / torch_rate);
  std::printf("%-44s %14.3e %11.2fx\n", "vesseltune AdamW, fp32 grad, no output", ours_fp32, ours_fp32 / torch_rate);
  std::printf("%-44s %14.3e %11.2fx\n", "torch::optim::AdamW (fp32)", torch_rate, 1.0);
  std::printf("\ntriad %.1f GB/s; bf16 kernel at %.0f %% of the bound (target >= 70 %%), %.2fx torch (target >= 2x)\n",
              triad_gbs, 100.0 * ours_bf16 / bound, ours_bf16 / torch_rate);
  return 0;
}
