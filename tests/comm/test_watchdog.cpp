// The watchdog's detection, in one process: an operation that never completes fires the action once, with
// the operation's label; completed operations never do.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "vesseltune/comm/communicator.h"
#include "vesseltune/comm/watchdog.h"

using namespace vesseltune::comm;

namespace {

class FlagWork : public Work {
 public:
  std::atomic<bool> done{false};
  void wait() override {}
  void synchronize() override {}
  bool is_completed() override { return done; }
  double duration_ms() override { return 0; }
};

TEST(Watchdog, FiresOnceForAnOperationThatNeverCompletes) {
  std::atomic<int> fired{0};
  std::string message;
  {
    CollectiveWatchdog watchdog(std::chrono::milliseconds(100), [&](const std::string& text) {
      message = text;
      ++fired;
    });
    auto stuck = std::make_shared<FlagWork>();
    watchdog.watch(stuck, "reduce-scatter bucket 3, step 12");
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
  }
  EXPECT_EQ(fired.load(), 1);
  EXPECT_NE(message.find("reduce-scatter bucket 3, step 12"), std::string::npos) << message;
}

TEST(Watchdog, CompletedAndScopedOperationsDoNotFire) {
  std::atomic<int> fired{0};
  {
    CollectiveWatchdog watchdog(std::chrono::milliseconds(100), [&](const std::string&) { ++fired; });
    auto work = std::make_shared<FlagWork>();
    watchdog.watch(work, "all-gather");
    work->done = true;
    { CollectiveWatchdog::Scope scope(&watchdog, "barrier"); }
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  EXPECT_EQ(fired.load(), 0);
}

TEST(Watchdog, BlockingScopeThatOutlivesTheTimeoutFires) {
  std::atomic<int> fired{0};
  CollectiveWatchdog watchdog(std::chrono::milliseconds(100), [&](const std::string&) { ++fired; });
  {
    CollectiveWatchdog::Scope scope(&watchdog, "MPI_Allreduce");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(fired.load(), 1);
}

}  // namespace
