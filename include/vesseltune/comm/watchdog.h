#pragma once
// Ends the job when a collective does not complete in time, so that a rank that died or hangs never leaves
// the others waiting forever. A background thread checks the operations in flight; on a timeout it logs the
// operation (with the phase: step and bucket) and runs the timeout action: in production, abort the NCCL
// communicator and MPI_Abort every rank.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "vesseltune/comm/world.h"

namespace vesseltune::comm {

class Work;

class CollectiveWatchdog {
 public:
  using TimeoutAction = std::function<void(const std::string& message)>;

  CollectiveWatchdog(std::chrono::milliseconds timeout, TimeoutAction on_timeout);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // Logs the message and ends every rank of `world` (exit code 3); `before_abort` runs first (ncclCommAbort).
  static std::shared_ptr<CollectiveWatchdog> aborting(std::chrono::milliseconds timeout, const World& world);
  void add_before_abort(std::function<void()> action);

  // An asynchronous operation, watched until it reports completion.
  void watch(std::shared_ptr<Work> work, std::string what);

  // A blocking operation, watched for the lifetime of the scope.
  class Scope {
   public:
    Scope(CollectiveWatchdog* watchdog, std::string what);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    CollectiveWatchdog* watchdog_;
    uint64_t id_ = 0;
  };

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  struct Entry {
    uint64_t id;
    std::string what;
    std::chrono::steady_clock::time_point start;
    std::shared_ptr<Work> work;  // null for a blocking scope
  };
  uint64_t add(std::shared_ptr<Work> work, std::string what);
  void remove(uint64_t id);
  void run();

  std::chrono::milliseconds timeout_;
  TimeoutAction on_timeout_;
  std::vector<std::function<void()>> before_abort_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::list<Entry> entries_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace vesseltune::comm
