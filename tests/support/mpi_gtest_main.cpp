// GoogleTest under mpirun: every rank runs every test; rank 0 prints the usual report, other ranks print only
// their failures (with the rank). The exit code is the worst over all ranks, so a failure anywhere fails the run.
#include <gtest/gtest.h>

#include <iostream>

#include "vesseltune/comm/world.h"
#include "vesseltune/core/log.h"

namespace {

class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (result.failed()) {
      std::cerr << "[rank " << rank_ << "] " << result.file_name() << ":" << result.line_number() << ": "
                << result.summary() << std::endl;
    }
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  vesseltune::comm::MpiSession session(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  testing::InitGoogleTest(&argc, argv);
  vesseltune::log::Options logging;
  logging.rank = rank;
  logging.console_level = vesseltune::log::Severity::warning;
  vesseltune::log::init(logging);
  if (rank != 0) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  int result = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
