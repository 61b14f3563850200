#include "vesseltune/core/fault_injection.h"

#include <csignal>
#include <cstdlib>
#include <atomic>
#include <set>
#include <string>

#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"

namespace vesseltune::fault {
namespace {

const char* const kPoints[] = {"step", "norm", "validation", "checkpoint-write", "eval-gather"};

struct Fault {
  std::string point;
  int rank = -1;
  std::string action;
  int skip = 0;  // arrivals at the point that pass before it acts
};

// VESSELTUNE_FAULT, parsed once; a malformed value is an error naming it (a campaign must not test nothing).
Fault parse(const char* text) {
  Fault fault;
  if (text == nullptr || *text == '\0') return fault;
  const std::string value(text);
  const size_t first = value.find(':'), second = value.find(':', first + 1);
  VT_CHECK(first != std::string::npos && second != std::string::npos, "VESSELTUNE_FAULT='", value,
           "': expected POINT:RANK:ACTION[:SKIP]");
  const size_t third = value.find(':', second + 1);
  fault.point = value.substr(0, first);
  fault.rank = std::stoi(value.substr(first + 1, second - first - 1));
  fault.action = value.substr(second + 1, third == std::string::npos ? std::string::npos : third - second - 1);
  if (third != std::string::npos) fault.skip = std::stoi(value.substr(third + 1));
  VT_CHECK(std::set<std::string>(std::begin(kPoints), std::end(kPoints)).count(fault.point), "VESSELTUNE_FAULT='",
           value, "': unknown point '", fault.point, "'");
  VT_CHECK(fault.action == "stop" || fault.action == "kill" || fault.action == "throw", "VESSELTUNE_FAULT='", value,
           "': ACTION must be stop, kill or throw");
  return fault;
}

}  // namespace

void point(const char* name, int rank) {
  static const Fault fault = parse(std::getenv("VESSELTUNE_FAULT"));
  static std::atomic<int> arrivals{0};
  if (fault.rank != rank || fault.point != name || arrivals++ != fault.skip) return;
  VT_LOG(warning) << "VESSELTUNE_FAULT: " << fault.action << " at " << name << " on rank " << rank;
  if (fault.action == "stop") std::raise(SIGSTOP);
  if (fault.action == "kill") std::raise(SIGKILL);
  if (fault.action == "throw") VT_FAIL("VESSELTUNE_FAULT: an injected error at ", name, " on rank ", rank);
}

}  // namespace vesseltune::fault
