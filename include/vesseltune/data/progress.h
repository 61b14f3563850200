#pragma once
// Progress of a long job: a redrawn bar when stderr is a terminal, otherwise a plain log line every
// ten percent (batch jobs and CI logs stay readable).

#include <chrono>
#include <cstdint>
#include <string>

namespace vesseltune::data {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  void update(int64_t done);
  void finish();  // ends the bar's line
  double seconds() const;

 private:
  std::string label_;
  int64_t total_;
  bool terminal_;
  int64_t last_reported_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace vesseltune::data
