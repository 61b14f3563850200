#pragma once
// The metrics of a training run in one HDF5 file: named tables ("train", "validation") of float64 columns that
// grow by one row per append and survive resumes. Readable with h5py alone:
//   /                 attributes format = "vesseltune-metrics", format_version = 1
//   /<table>          group; attribute "columns" (the column names in order, "step" first)
//   /<table>/<column> 1-D float64, extendible, chunked
//   /<table>/_checksum 1-D uint64: per row, the content hash (io/content_hash.h) of its values in column order,
//                     written after them. Readers verify every row: a row that differs is an error naming it (files
//                     from before the checksums have none and are read as they are).
// Each append opens the file, appends and closes it, so the file is consistent between appends: h5py can read
// it while the run goes on, and a crash loses at most the row being written.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vesseltune::io {

class MetricsFile {
 public:
  // Creates PATH or opens it for appending. Rows of every table whose step > resume_step are removed (they were
  // logged after the checkpoint the run resumes from and will be logged again); resume_step < 0 keeps everything.
  // An existing file that HDF5 cannot open, or with a row that fails its checksum, is renamed to PATH.corrupt (with
  // a warning) and a new one begins; an HDF5 file that is not a metrics file is refused.
  MetricsFile(std::string path, int64_t resume_step);

  // The first row of a table fixes its columns and their order ("step" first); a later row with other names is
  // refused with an error naming the file, table and column.
  void append(const std::string& table, const std::vector<std::pair<std::string, double>>& row);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct MetricsTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> values;  // values[c][row]

  // Throws naming the column when absent.
  const std::vector<double>& column(const std::string& name) const;
  int64_t rows() const { return values.empty() ? 0 : static_cast<int64_t>(values.front().size()); }
};

// Every table of the file by name; errors name the file.
std::map<std::string, MetricsTable> read_metrics(const std::string& path);

}  // namespace vesseltune::io
