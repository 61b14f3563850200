#include "vesseltune/optim/host_thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace vesseltune::optim {
namespace {

std::vector<int> allowed_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cores.push_back(c);
    }
  }
  if (cores.empty()) cores.push_back(0);
  return cores;
}

void pin_current_thread(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

std::pair<int64_t, int64_t> part_range(int64_t n, int64_t align, int parts, int part) {
  const int64_t blocks = (n + align - 1) / align;
  const int64_t begin = std::min(n, blocks * part / parts * align);
  const int64_t end = std::min(n, blocks * (part + 1) / parts * align);
  return {begin, end};
}

}  // namespace

std::vector<int> HostThreadPool::share_of_cores(int local_rank, int local_size) {
  const std::vector<int> cores = allowed_cores();
  const int online = static_cast<int>(std::thread::hardware_concurrency());
  const bool shared_by_node = static_cast<int>(cores.size()) >= online && local_size > 1;
  if (!shared_by_node || static_cast<int>(cores.size()) < local_size) return cores;
  const size_t per_rank = cores.size() / local_size;
  return std::vector<int>(cores.begin() + local_rank * per_rank, cores.begin() + (local_rank + 1) * per_rank);
}

HostThreadPool::HostThreadPool(int threads, int local_rank, int local_size) {
  cores_ = share_of_cores(local_rank, local_size);
  const int count = threads > 0 ? threads : static_cast<int>(cores_.size());
  // Pin only when every thread gets a core of its own; oversubscribed (CI: 3 ranks on 2 cores) pinning hurts.
  const bool pin = count <= static_cast<int>(cores_.size()) &&
                   static_cast<int>(cores_.size()) * local_size <= static_cast<int>(std::thread::hardware_concurrency());
  for (int part = 1; part < count; ++part) {
    workers_.emplace_back([this, part, pin] {
      if (pin) pin_current_thread(cores_[part]);
      worker_loop(part);
    });
  }
  if (!pin) cores_.clear();
}

HostThreadPool::~HostThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void HostThreadPool::worker_loop(int part) {
  uint64_t seen = 0;
  for (;;) {
    std::unique_lock<std::mutex> lock(mutex_);
    start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    const auto* body = body_;
    const auto [begin, end] = part_range(n_, align_, threads(), part);
    lock.unlock();
    if (begin < end) (*body)(part, begin, end);
    lock.lock();
    if (--remaining_ == 0) done_.notify_one();
  }
}

void HostThreadPool::parallel_for(int64_t n, int64_t align,
                                  const std::function<void(int part, int64_t begin, int64_t end)>& body) {
  if (workers_.empty()) {
    if (n > 0) body(0, 0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    n_ = n;
    align_ = std::max<int64_t>(1, align);
    remaining_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  const auto [begin, end] = part_range(n, align_, threads(), 0);
  if (begin < end) body(0, begin, end);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return remaining_ == 0; });
}

}  // namespace vesseltune::optim
