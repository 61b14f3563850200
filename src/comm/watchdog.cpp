#include "vesseltune/comm/watchdog.h"

#include <sstream>

#include "vesseltune/comm/communicator.h"
#include "vesseltune/core/log.h"

namespace vesseltune::comm {

CollectiveWatchdog::CollectiveWatchdog(std::chrono::milliseconds timeout, TimeoutAction on_timeout)
    : timeout_(timeout), on_timeout_(std::move(on_timeout)), thread_([this] { run(); }) {}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<CollectiveWatchdog> CollectiveWatchdog::aborting(std::chrono::milliseconds timeout,
                                                                const World& world) {
  return std::make_shared<CollectiveWatchdog>(timeout, [world](const std::string& message) {
    VT_LOG(error) << message << "; aborting all ranks";
    world.abort(3);
  });
}

void CollectiveWatchdog::add_before_abort(std::function<void()> action) {
  std::lock_guard<std::mutex> lock(mutex_);
  before_abort_.push_back(std::move(action));
}

void CollectiveWatchdog::watch(std::shared_ptr<Work> work, std::string what) { add(std::move(work), std::move(what)); }

CollectiveWatchdog::Scope::Scope(CollectiveWatchdog* watchdog, std::string what) : watchdog_(watchdog) {
  if (watchdog_) id_ = watchdog_->add(nullptr, std::move(what));
}

CollectiveWatchdog::Scope::~Scope() {
  if (watchdog_) watchdog_->remove(id_);
}

uint64_t CollectiveWatchdog::add(std::shared_ptr<Work> work, std::string what) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = next_id_++;
  entries_.push_back(Entry{id, std::move(what), std::chrono::steady_clock::now(), std::move(work)});
  return id;
}

void CollectiveWatchdog::remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.remove_if([id](const Entry& entry) { return entry.id == id; });
}

void CollectiveWatchdog::run() {
  // Check often enough that a timeout is reported within ~10 % of its length.
  const auto period = std::max(std::chrono::milliseconds(10), std::min(std::chrono::milliseconds(200), timeout_ / 10));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, period);
    if (stopping_ || fired_) continue;
    const auto now = std::chrono::steady_clock::now();
    std::string expired;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->work && it->work->is_completed()) {
        it = entries_.erase(it);
        continue;
      }
      if (expired.empty() && now - it->start > timeout_) expired = it->what;
      ++it;
    }
    if (expired.empty()) continue;
    fired_ = true;
    std::ostringstream message;
    message << "collective timed out after " << timeout_.count() / 1000.0 << " s: " << expired
            << " (another rank failed or stalled)";
    auto actions = before_abort_;
    auto on_timeout = on_timeout_;
    lock.unlock();
    for (auto& action : actions) action();
    on_timeout(message.str());
    lock.lock();
  }
}

}  // namespace vesseltune::comm
