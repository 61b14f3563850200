// The metrics file of a training run (layout in metrics_file.h). Every operation opens the file, does its work and
// closes it: a run that crashes leaves a file whose last append is either all there or lost, and readers never
// have to coordinate with the run.
#include "vesseltune/io/metrics_file.h"

#include <algorithm>
#include <filesystem>

#include "vesseltune/core/check.h"
#include "vesseltune/core/fault_injection.h"
#include "vesseltune/core/log.h"
#include "vesseltune/io/content_hash.h"
#include "vesseltune/io/hdf5.h"

namespace vesseltune::io {
namespace {

using hdf5::Handle;
namespace fs = std::filesystem;

constexpr const char* kFormat = "vesseltune-metrics";
constexpr int64_t kFormatVersion = 1;
constexpr hsize_t kChunkRows = 1024;  // 8 KiB per column and chunk: a few chunks hold a whole run
constexpr const char* kChecksum = "_checksum";  // per row, written after the row's values

template <typename T>
hid_t memory_type();
template <>
hid_t memory_type<double>() { return H5T_NATIVE_DOUBLE; }
template <>
hid_t memory_type<uint64_t>() { return H5T_NATIVE_UINT64; }

// The content hash of a row: its values in the order of the table's columns.
uint64_t row_hash(const std::vector<double>& values) { return content_hash(values.data(), values.size() * sizeof(double)); }

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

// File locking off: a reader that keeps the file open (h5py in a notebook) must never make the run's next append
// fail. A reader that opens the file during an append may see that row half-written (read_metrics drops it).
Handle open_file(const std::string& path, unsigned flags) {
  hdf5::silence_errors();
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_file_locking(access.get(), false, true);
  return Handle(H5Fopen(path.c_str(), flags, access.get()), H5Fclose);
}

void create_file(const std::string& path) {
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  VT_CHECK(file.valid(), "cannot create metrics file '", path, "'");
  hdf5::write_string_attribute(file.get(), "format", kFormat);
  hdf5::write_int_attribute(file.get(), "format_version", {kFormatVersion});
  VT_CHECK(file.close(), "cannot write metrics file '", path, "' (disk full?)");
}

void check_format(hid_t file, const std::string& path) {
  std::string format;
  std::vector<int64_t> version;
  VT_CHECK(hdf5::read_string_attribute(file, "format", format) && format == kFormat, "'", path,
           "' is an HDF5 file but not a metrics file (no format attribute '", kFormat, "')");
  VT_CHECK(hdf5::read_int_attribute(file, "format_version", version) && version.size() == 1 &&
               version[0] == kFormatVersion,
           path, ": unsupported metrics format_version (this build reads ", kFormatVersion, ")");
}

// A damaged metrics file (HDF5 cannot open it, or a row fails its checksum) is kept for inspection, not reused.
void set_aside(const std::string& path, const std::string& why) {
  const std::string corrupt = path + ".corrupt";
  std::error_code error;
  fs::rename(path, corrupt, error);
  VT_CHECK(!error, "metrics file '", path, "' is damaged (", why, ") and cannot be renamed to '", corrupt, "': ",
           error.message());
  VT_LOG(warning) << "metrics file '" << path << "' is damaged (" << why << "); moved it to '" << corrupt
                  << "' and starting a new one";
}

Handle open_column(hid_t table, const std::string& column, const std::string& where) {
  Handle dataset(H5Dopen2(table, column.c_str(), H5P_DEFAULT), H5Dclose);
  VT_CHECK(dataset.valid(), where, ": column '", column, "' is missing");
  return dataset;
}

hsize_t column_rows(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  hsize_t rows = 0;
  H5Sget_simple_extent_dims(space.get(), &rows, nullptr);
  return rows;
}

// Sets the column's length to ROWS and writes VALUES at rows [offset, offset + values.size()).
template <typename T>
void write_column(hid_t dataset, hsize_t rows, hsize_t offset, const std::vector<T>& values, const std::string& where) {
  VT_CHECK(H5Dset_extent(dataset, &rows) >= 0, where, ": cannot resize to ", rows, " rows");
  if (values.empty()) return;
  Handle file_space(H5Dget_space(dataset), H5Sclose);
  const hsize_t count = values.size();
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &offset, nullptr, &count, nullptr);
  Handle memory_space(H5Screate_simple(1, &count, nullptr), H5Sclose);
  VT_CHECK(H5Dwrite(dataset, memory_type<T>(), memory_space.get(), file_space.get(), H5P_DEFAULT, values.data()) >= 0,
           where, ": write failed (disk full?)");
}

template <typename T>
std::vector<T> read_column(hid_t dataset, const std::string& where) {
  std::vector<T> values(column_rows(dataset));
  if (values.empty()) return values;
  VT_CHECK(H5Dread(dataset, memory_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0, where,
           ": read failed");
  return values;
}

bool has_checksums(hid_t table) { return H5Lexists(table, kChecksum, H5P_DEFAULT) > 0; }

// Row R's values in column order.
std::vector<double> row_values(const MetricsTable& table, size_t r) {
  std::vector<double> values;
  for (const auto& column : table.values) values.push_back(column[r]);
  return values;
}

// Keeps the rows that have a checksum (the one being appended may not yet) and refuses a row that differs from it.
void verify_rows(hid_t table, MetricsTable& result, const std::string& where) {
  const std::vector<uint64_t> checksums = read_column<uint64_t>(open_column(table, kChecksum, where).get(), where);
  for (auto& values : result.values) values.resize(std::min(values.size(), checksums.size()));
  for (size_t r = 0; r < static_cast<size_t>(result.rows()); ++r) {
    VT_CHECK(row_hash(row_values(result, r)) == checksums[r], where, ": row ", r, " (step ", result.values[0][r],
             ") does not match its content hash: the metrics file is damaged");
  }
}

std::vector<std::string> read_columns_attribute(hid_t table, const std::string& where) {
  std::vector<std::string> columns;
  VT_CHECK(hdf5::read_string_list_attribute(table, "columns", columns) && !columns.empty() && columns[0] == "step",
           where, ": not a metrics table (no 'columns' attribute starting with 'step')");
  return columns;
}

// A table's rows that every column holds: a reader may meet the row being appended in some columns only.
MetricsTable read_table(hid_t table, const std::string& where) {
  MetricsTable result;
  result.columns = read_columns_attribute(table, where);
  size_t rows = SIZE_MAX;
  for (const std::string& column : result.columns) {
    Handle dataset = open_column(table, column, where);
    result.values.push_back(read_column<double>(dataset.get(), where + "/" + column));
    rows = std::min(rows, result.values.back().size());
  }
  for (auto& values : result.values) values.resize(rows);
  if (has_checksums(table)) verify_rows(table, result, where);
  return result;
}

// Keeps the complete rows with step <= resume_step (all complete rows when resume_step < 0).
void trim_table(hid_t file, const std::string& name, int64_t resume_step, const std::string& path) {
  const std::string where = path + ": table '" + name + "'";
  Handle table(H5Gopen2(file, name.c_str(), H5P_DEFAULT), H5Gclose);
  VT_CHECK(table.valid(), where, " is not a group");
  const MetricsTable stored = read_table(table.get(), where);
  const std::vector<double>& steps = stored.values[0];
  std::vector<bool> keep(steps.size());
  for (size_t r = 0; r < steps.size(); ++r) keep[r] = resume_step < 0 || steps[r] <= static_cast<double>(resume_step);
  for (size_t c = 0; c < stored.columns.size(); ++c) {
    std::vector<double> kept;
    for (size_t r = 0; r < steps.size(); ++r) {
      if (keep[r]) kept.push_back(stored.values[c][r]);
    }
    Handle dataset = open_column(table.get(), stored.columns[c], where);
    if (column_rows(dataset.get()) != kept.size()) {
      write_column(dataset.get(), kept.size(), 0, kept, where + "/" + stored.columns[c]);
    }
  }
  if (!has_checksums(table.get())) return;
  std::vector<uint64_t> checksums;
  for (size_t r = 0; r < steps.size(); ++r) {
    if (keep[r]) checksums.push_back(row_hash(row_values(stored, r)));
  }
  write_column(open_column(table.get(), kChecksum, where).get(), checksums.size(), 0, checksums, where);
}

// Every table trimmed to RESUME_STEP; returns what is damaged ("" when nothing). Not a metrics file: an error.
std::string trim_tables(hid_t file, int64_t resume_step, const std::string& path) {
  check_format(file, path);
  try {
    for (const std::string& name : hdf5::member_names(file, path)) trim_table(file, name, resume_step, path);
  } catch (const Error& damage) {
    return damage.what();
  }
  return "";
}

void check_name(const std::string& name, const char* what, const std::string& where) {
  VT_CHECK(!name.empty() && name != "." && name.find('/') == std::string::npos, where, ": ", what, " name '", name,
           "' is not usable as an HDF5 name (empty, '.' or with '/')");
}

Handle create_table(hid_t file, const std::string& name, const std::vector<std::string>& columns,
                    const std::string& where) {
  VT_CHECK(!columns.empty() && columns[0] == "step", where, ": the first row's first column must be 'step', not '",
           columns.empty() ? "" : columns[0], "'");
  Handle table(H5Gcreate2(file, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  VT_CHECK(table.valid(), where, ": cannot create the table");
  hdf5::write_string_list_attribute(table.get(), "columns", columns);
  const hsize_t empty = 0, unlimited = H5S_UNLIMITED;
  Handle space(H5Screate_simple(1, &empty, &unlimited), H5Sclose);
  Handle properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(properties.get(), 1, &kChunkRows);
  for (const std::string& column : columns) {
    Handle dataset(H5Dcreate2(table.get(), column.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                              properties.get(), H5P_DEFAULT),
                   H5Dclose);
    VT_CHECK(dataset.valid(), where, ": cannot create column '", column, "'");
  }
  Handle checksums(H5Dcreate2(table.get(), kChecksum, H5T_STD_U64LE, space.get(), H5P_DEFAULT, properties.get(),
                              H5P_DEFAULT),
                   H5Dclose);
  VT_CHECK(checksums.valid(), where, ": cannot create the row checksums");
  return table;
}

// The row's column names, each usable as an HDF5 name and named once.
std::vector<std::string> row_names(const std::vector<std::pair<std::string, double>>& row, const std::string& where) {
  std::vector<std::string> names;
  for (const auto& [name, value] : row) {
    check_name(name, "column", where);
    VT_CHECK(std::find(names.begin(), names.end(), name) == names.end(), where, ": column '", name,
             "' appears twice in the row");
    names.push_back(name);
  }
  return names;
}

// The row names exactly the table's columns (in any order).
void check_row(const std::vector<std::string>& columns, const std::vector<std::string>& names,
               const std::string& where) {
  for (const std::string& name : names) {
    VT_CHECK(std::find(columns.begin(), columns.end(), name) != columns.end(), where, ": column '", name,
             "' is not one of the table's columns (", join(columns), ")");
  }
  for (const std::string& column : columns) {
    VT_CHECK(std::find(names.begin(), names.end(), column) != names.end(), where, ": the row lacks column '", column,
             "'");
  }
}

}  // namespace

MetricsFile::MetricsFile(std::string path, int64_t resume_step) : path_(std::move(path)) {
  if (fs::exists(path_)) {
    Handle file = open_file(path_, H5F_ACC_RDWR);
    if (!file.valid()) {
      set_aside(path_, "HDF5 cannot open it");
    } else if (std::string damage = trim_tables(file.get(), resume_step, path_); !damage.empty()) {
      file.close();
      set_aside(path_, damage);
    } else {
      VT_CHECK(file.close(), "cannot write metrics file '", path_, "' (disk full?)");
      return;
    }
  }
  create_file(path_);
}

void MetricsFile::append(const std::string& table_name, const std::vector<std::pair<std::string, double>>& row) {
  const std::string where = path_ + ": table '" + table_name + "'";
  fault::point("metrics-write", 0);  // only rank 0 writes the metrics file
  check_name(table_name, "table", where);
  const std::vector<std::string> names = row_names(row, where);
  Handle file = open_file(path_, H5F_ACC_RDWR);
  VT_CHECK(file.valid(), "cannot open metrics file '", path_, "'");
  Handle table = H5Lexists(file.get(), table_name.c_str(), H5P_DEFAULT) > 0
                     ? Handle(H5Gopen2(file.get(), table_name.c_str(), H5P_DEFAULT), H5Gclose)
                     : create_table(file.get(), table_name, names, where);
  VT_CHECK(table.valid(), where, " is not a group");
  const std::vector<std::string> columns = read_columns_attribute(table.get(), where);
  check_row(columns, names, where);
  const hsize_t rows = column_rows(open_column(table.get(), "step", where).get());
  std::vector<double> in_column_order(columns.size());
  for (const auto& [name, value] : row) {
    Handle dataset = open_column(table.get(), name, where);
    write_column(dataset.get(), rows + 1, rows, std::vector<double>{value}, where + "/" + name);
    in_column_order[std::find(columns.begin(), columns.end(), name) - columns.begin()] = value;
  }
  if (has_checksums(table.get())) {  // last: a row without its checksum is one being appended
    write_column(open_column(table.get(), kChecksum, where).get(), rows + 1, rows,
                 std::vector<uint64_t>{row_hash(in_column_order)}, where);
  }
  VT_CHECK(file.close(), "cannot write metrics file '", path_, "' (disk full?)");
}

const std::vector<double>& MetricsTable::column(const std::string& name) const {
  const auto found = std::find(columns.begin(), columns.end(), name);
  VT_CHECK(found != columns.end(), "no metrics column '", name, "' (the table has ", join(columns), ")");
  return values[found - columns.begin()];
}

std::map<std::string, MetricsTable> read_metrics(const std::string& path) {
  VT_CHECK(fs::exists(path), "metrics file '", path, "' does not exist");
  Handle file = open_file(path, H5F_ACC_RDONLY);
  VT_CHECK(file.valid(), "'", path, "' is not an HDF5 file (or is damaged)");
  check_format(file.get(), path);
  std::map<std::string, MetricsTable> tables;
  for (const std::string& name : hdf5::member_names(file.get(), path)) {
    const std::string where = path + ": table '" + name + "'";
    Handle table(H5Gopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Gclose);
    VT_CHECK(table.valid(), where, " is not a group");
    tables.emplace(name, read_table(table.get(), where));
  }
  return tables;
}

}  // namespace vesseltune::io
