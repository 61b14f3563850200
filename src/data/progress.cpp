#include "vesseltune/data/progress.h"

#include <unistd.h>

#include <cstdio>

#include "vesseltune/core/log.h"

namespace vesseltune::data {

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), terminal_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done) {
  const double rate = done / std::max(seconds(), 1e-9);
  if (terminal_) {
    const int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %.1f/s", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), rate);
    std::fflush(stderr);
    return;
  }
  const int64_t tenth = total_ > 0 ? done * 10 / total_ : 10;
  if (tenth == last_reported_) return;
  last_reported_ = tenth;
  VT_LOG(info) << label_ << ": " << done << "/" << total_ << " (" << static_cast<int>(rate * 10) / 10.0 << "/s)";
}

void Progress::finish() {
  if (terminal_) std::fprintf(stderr, "\n");
}

}  // namespace vesseltune::data
