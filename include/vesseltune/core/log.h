#pragma once
// Logging through Boost.Log: "2026-11-28 10:00:00.123 info [rank 0] message".
// Info lines come from rank 0 (or every rank when asked), warnings and errors from every rank, to the
// console and, when a path is given, to a log file for the run (rank 0) or for the rank (others, created
// only when that rank has something to say).

#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_logger.hpp>
#include <string>

namespace vesseltune::log {

enum class Severity { debug, info, warning, error };

struct Options {
  int rank = 0;
  Severity console_level = Severity::info;
  bool info_from_all_ranks = false;
  std::string file;  // empty: console only; rank r > 0 writes FILE.rank<r> instead
};

// Replaces any earlier configuration; safe to call again (tests, a later work dir).
void init(const Options& options);

boost::log::sources::severity_logger_mt<Severity>& logger();

const char* to_string(Severity severity);

}  // namespace vesseltune::log

#define VT_LOG(severity) BOOST_LOG_SEV(::vesseltune::log::logger(), ::vesseltune::log::Severity::severity)
