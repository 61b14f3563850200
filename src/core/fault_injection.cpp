#include "vesseltune/core/fault_injection.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"

namespace vesseltune::fault {
namespace {

const char* const kPoints[] = {"step", "norm", "validation", "checkpoint-write", "eval-gather", "metrics-write"};

const char* const kActions[] = {"stop", "kill", "term", "throw", "nan"};

struct Fault {
  std::string point;
  int rank = -1;
  std::string action;
  int skip = 0;   // arrivals at the point that pass before it acts
  int count = 1;  // arrivals it acts on
};

std::vector<std::string> fields_of(const std::string& value) {
  std::vector<std::string> fields;
  std::stringstream stream(value);
  for (std::string field; std::getline(stream, field, ':');) fields.push_back(field);
  return fields;
}

template <size_t N>
bool one_of(const std::string& value, const char* const (&names)[N]) {
  return std::find(std::begin(names), std::end(names), value) != std::end(names);
}

// VESSELTUNE_FAULT, parsed once; a malformed value is an error naming it (a campaign must not test nothing).
Fault parse(const char* text) {
  Fault fault;
  if (text == nullptr || *text == '\0') return fault;
  const std::string value(text);
  const std::vector<std::string> fields = fields_of(value);
  VT_CHECK(fields.size() >= 3 && fields.size() <= 5, "VESSELTUNE_FAULT='", value,
           "': expected POINT:RANK:ACTION[:SKIP[:COUNT]]");
  fault.point = fields[0];
  fault.rank = std::stoi(fields[1]);
  fault.action = fields[2];
  if (fields.size() > 3) fault.skip = std::stoi(fields[3]);
  if (fields.size() > 4) fault.count = std::stoi(fields[4]);
  VT_CHECK(one_of(fault.point, kPoints), "VESSELTUNE_FAULT='", value, "': unknown point '", fault.point, "'");
  VT_CHECK(one_of(fault.action, kActions), "VESSELTUNE_FAULT='", value, "': unknown action '", fault.action, "'");
  return fault;
}

}  // namespace

bool point(const char* name, int rank) {
  static const Fault fault = parse(std::getenv("VESSELTUNE_FAULT"));
  static std::atomic<int> arrivals{0};
  if (fault.rank != rank || fault.point != name) return false;
  const int arrival = arrivals++;
  if (arrival < fault.skip || arrival >= fault.skip + fault.count) return false;
  VT_LOG(warning) << "VESSELTUNE_FAULT: " << fault.action << " at " << name << " on rank " << rank;
  if (fault.action == "stop") std::raise(SIGSTOP);
  if (fault.action == "kill") std::raise(SIGKILL);
  if (fault.action == "term") std::raise(SIGTERM);
  if (fault.action == "throw") VT_FAIL("VESSELTUNE_FAULT: an injected error at ", name, " on rank ", rank);
  return fault.action == "nan";
}

}  // namespace vesseltune::fault
