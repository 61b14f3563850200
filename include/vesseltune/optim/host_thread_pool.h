#pragma once
// Worker threads for the CPU optimizer, pinned to this rank's share of the node's cores, so that the ranks of a
// node do not fight over cores and the threads stay near their memory.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vesseltune::optim {

class HostThreadPool {
 public:
  // threads == 0: this rank's share of the cores it may run on (see share_of_cores). Pins workers to those
  // cores when they are this rank's alone.
  HostThreadPool(int threads, int local_rank, int local_size);
  ~HostThreadPool();
  HostThreadPool(const HostThreadPool&) = delete;
  HostThreadPool& operator=(const HostThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  const std::vector<int>& cores() const { return cores_; }

  // Runs body(part, begin, end) over [0, n) split into threads() contiguous parts whose boundaries are
  // multiples of `align`; the calling thread takes part 0. Returns when every part is done.
  void parallel_for(int64_t n, int64_t align, const std::function<void(int part, int64_t begin, int64_t end)>& body);

  // The cores this rank should use: the process's allowed cores, split evenly between the ranks of the node
  // when they all share the same set (mpirun --bind-to none); all of them when the launcher bound this rank.
  static std::vector<int> share_of_cores(int local_rank, int local_size);

 private:
  void worker_loop(int part);

  std::vector<int> cores_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(int, int64_t, int64_t)>* body_ = nullptr;
  int64_t n_ = 0;
  int64_t align_ = 1;
  uint64_t generation_ = 0;
  int remaining_ = 0;
  bool stopping_ = false;
};

}  // namespace vesseltune::optim
