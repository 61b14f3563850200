#include "vesseltune/core/log.h"

#include <boost/core/null_deleter.hpp>
#include <boost/log/attributes/clock.hpp>
#include <boost/log/attributes/constant.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/text_file_backend.hpp>
#include <boost/log/sinks/text_ostream_backend.hpp>
#include <boost/log/support/date_time.hpp>
#include <boost/log/utility/setup/common_attributes.hpp>
#include <iostream>

namespace vesseltune::log {

namespace logging = boost::log;
namespace expr = boost::log::expressions;
namespace sinks = boost::log::sinks;

BOOST_LOG_ATTRIBUTE_KEYWORD(severity_attr, "Severity", Severity)
BOOST_LOG_ATTRIBUTE_KEYWORD(rank_attr, "Rank", int)

const char* to_string(Severity severity) {
  switch (severity) {
    case Severity::debug: return "debug";
    case Severity::info: return "info";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "?";
}

template <typename Stream>
Stream& operator<<(Stream& out, Severity severity) {
  return out << to_string(severity);
}

boost::log::sources::severity_logger_mt<Severity>& logger() {
  static boost::log::sources::severity_logger_mt<Severity> instance;
  return instance;
}

void init(const Options& options) {
  auto core = logging::core::get();
  core->remove_all_sinks();
  // get_global_attributes() returns a copy: erase "Rank" from the copy and install it (an iterator into
  // the copy must not be handed to remove_global_attribute).
  boost::log::attribute_set globals = core->get_global_attributes();
  globals.erase("Rank");
  core->set_global_attributes(globals);
  core->add_global_attribute("Rank", logging::attributes::constant<int>(options.rank));
  core->add_global_attribute("TimeStamp", logging::attributes::local_clock());

  const auto format = expr::stream << expr::format_date_time<boost::posix_time::ptime>("TimeStamp", "%Y-%m-%d %H:%M:%S.%f")
                                   << " " << severity_attr << " [rank " << rank_attr << "] " << expr::smessage;
  // Info is the chief rank's job; a warning from any rank must be seen.
  const bool speaks = options.rank == 0 || options.info_from_all_ranks;
  const Severity level = speaks ? options.console_level : std::max(options.console_level, Severity::warning);

  auto console = boost::make_shared<sinks::synchronous_sink<sinks::text_ostream_backend>>();
  console->locked_backend()->add_stream(boost::shared_ptr<std::ostream>(&std::clog, boost::null_deleter()));
  console->locked_backend()->auto_flush(true);
  console->set_formatter(format);
  console->set_filter(severity_attr >= level);
  core->add_sink(console);

  if (!options.file.empty()) {
    const std::string path = options.rank == 0 ? options.file : options.file + ".rank" + std::to_string(options.rank);
    auto backend = boost::make_shared<sinks::text_file_backend>(logging::keywords::file_name = path,
                                                                logging::keywords::open_mode = std::ios::app);
    backend->auto_flush(true);
    auto file = boost::make_shared<sinks::synchronous_sink<sinks::text_file_backend>>(backend);
    file->set_formatter(format);
    file->set_filter(severity_attr >= level);
    core->add_sink(file);
  }
}

}  // namespace vesseltune::log
