// The benchmark summary's exposed optimizer phase on several ranks, against hand-computed values: each step's
// figure is that of the rank that waited least (the critical path), and the rest is reported as waiting for
// slower ranks, not added to it.
#include <gtest/gtest.h>
#include <mpi.h>
#include <nlohmann/json.hpp>

#include "vesseltune/comm/launch.h"
#include "vesseltune/perf/benchmark_report.h"

namespace vesseltune::perf {
namespace {

TEST(BenchmarkReport, ExposedOptimizerIsTheCriticalRanksAndWaitingIsApart) {
  const auto comm = comm::make_communicator(comm::World::of(MPI_COMM_WORLD), comm::Backend::mpi, std::chrono::seconds(60));
  const comm::World& world = comm->world();
  // Three steps of 100 ms. Every rank: optimizer 20 ms, gather wait 2 ms. The reduce wait is 1 + step ms on rank 0,
  // the critical one, and 10 ms more per rank after it (those ranks finished their backward earlier and waited).
  std::vector<StepPhases> steps(3);
  for (int i = 0; i < 3; ++i) {
    steps[i].step_ms = 100;
    steps[i].reduce_wait_ms = 1 + i + 10.0 * world.rank;
    steps[i].optimizer_ms = 20;
    steps[i].gather_wait_ms = 2;
    steps[i].samples = 1;
    steps[i].tiles = 1;
    steps[i].tokens = 300;
    steps[i].labelled_tokens = 4;
  }
  setup::ModelShapes shapes;
  shapes.sa2va = model::Sa2VAConfig::preset("tiny");
  shapes.sam2 = model::sam2::sam2_preset("tiny");
  BenchmarkSetup setup;
  setup.model = "tiny";
  const BenchmarkResult result = summarize_benchmark(steps, setup, shapes, 0.0, 0.0, 0.0, *comm);
  const auto json = nlohmann::json::parse(result.json);
  // Per step the least exposed rank is rank 0: 1 + i + 20 + 2 ms, median over i = 0, 1, 2: 24 ms.
  EXPECT_DOUBLE_EQ(json["optimizer_exposed_ms"].get<double>(), 24.0);
  EXPECT_DOUBLE_EQ(json["optimizer_exposed_share"].get<double>(), 0.24);
  // The last rank waited 10·(world - 1) ms longer in every step.
  EXPECT_DOUBLE_EQ(json["rank_wait_ms"].get<double>(), 10.0 * (world.size - 1));
  // The phase table keeps the slowest rank's median of each phase.
  EXPECT_DOUBLE_EQ(json["ms"]["reduce-scatter + copy out wait"].get<double>(), 2 + 10.0 * (world.size - 1));
}

}  // namespace
}  // namespace vesseltune::perf
