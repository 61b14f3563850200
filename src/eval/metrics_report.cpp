#include "vesseltune/eval/metrics_report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "vesseltune/io/hdf5.h"

namespace vesseltune::eval {
namespace {

using io::hdf5::Handle;

constexpr const char* kFormat = "vesseltune-eval-metrics";
constexpr int64_t kFormatVersion = 1;
constexpr metrics::Region kRegions[metrics::kRegionCount] = {metrics::Region::fov, metrics::Region::full};

std::string definitions(const metrics::MetricsSummary& summary) {
  std::ostringstream text;
  text << summary.images << " image(s); threshold " << summary.threshold
       << ": a pixel is vessel when its probability > the threshold.\n"
       << "per image (mean ± sd): the metric of each image, then the mean and sample standard deviation over the "
          "images.\n"
       << "pooled: the metric once, from the pixel counts summed over all images (cldice: the skeleton counts; "
          "auc: the score histograms).\n"
       << "fov: inside the field of view; full: the whole image. Where a metric's denominator is 0 it is 1; auc "
          "is NaN for an image with a single class in the region and skipped by the mean.\n";
  return text.str();
}

// Shortest text that reads back as the same double; "nan" for NaN.
std::string number(double value) {
  if (std::isnan(value)) return "nan";
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string fixed(double value) {
  if (std::isnan(value)) return "nan";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4f", value);
  return buffer;
}

// RFC 4180: a field with a comma, quote or line break goes in quotes, its quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// Display width of UTF-8 text: its code points (the table holds no wide characters).
size_t display_width(const std::string& text) {
  size_t width = 0;
  for (const char c : text) width += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return width;
}

std::string pad(const std::string& text, size_t width) {
  return text + std::string(width > display_width(text) ? width - display_width(text) : 0, ' ');
}

void write_double_attribute(hid_t object, const char* name, double value, const std::string& path) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  VT_CHECK(attribute.valid() && H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, &value) >= 0, path,
           ": cannot write attribute '", name, "'");
}

Handle create_group(hid_t parent, const std::string& name, const std::string& path) {
  Handle group(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  VT_CHECK(group.valid(), path, ": cannot create group '", name, "'");
  return group;
}

// A 1-D dataset NAME of COUNT values of MEMORY_TYPE, stored as FILE_TYPE.
void write_dataset(hid_t group, const char* name, hid_t file_type, hid_t memory_type, size_t count, const void* data,
                   const std::string& path) {
  const hsize_t size = count;
  Handle space(H5Screate_simple(1, &size, nullptr), H5Sclose);
  Handle dataset(H5Dcreate2(group, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  VT_CHECK(dataset.valid(), path, ": cannot create dataset '", name, "'");
  VT_CHECK(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, path,
           ": cannot write dataset '", name, "'");
}

void write_strings(hid_t group, const char* name, const std::vector<std::string>& values, const std::string& path) {
  // Variable-length UTF-8: what h5py reads back as str.
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  std::vector<const char*> texts;
  for (const std::string& value : values) texts.push_back(value.c_str());
  write_dataset(group, name, type.get(), type.get(), texts.size(), texts.data(), path);
}

void write_doubles(hid_t group, const char* name, const std::vector<double>& values, const std::string& path) {
  write_dataset(group, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.size(), values.data(), path);
}

void write_ints(hid_t group, const char* name, const std::vector<int64_t>& values, const std::string& path) {
  write_dataset(group, name, H5T_STD_I64LE, H5T_NATIVE_INT64, values.size(), values.data(), path);
}

std::vector<std::string> metric_names() {
  std::vector<std::string> names;
  for (int m = 0; m < metrics::kMetricCount; ++m)
    names.push_back(metrics::metric_name(static_cast<metrics::Metric>(m)));
  return names;
}

std::vector<std::string> count_names() {
  std::vector<std::string> names;
  for (const metrics::CountField& field : metrics::count_fields()) names.push_back(field.name);
  return names;
}

}  // namespace

std::string format_metrics_table(const metrics::MetricsSummary& summary) {
  std::vector<std::vector<std::string>> rows = {
      {"metric", "FOV per image (mean ± sd)", "FOV pooled", "full per image (mean ± sd)", "full pooled"}};
  for (int m = 0; m < metrics::kMetricCount; ++m) {
    std::vector<std::string> row = {metrics::metric_name(static_cast<metrics::Metric>(m))};
    for (const metrics::RegionSummary& region : summary.regions) {
      const metrics::MetricAggregate& aggregate = region.metrics[m];
      row.push_back(fixed(aggregate.mean) + " ± " + fixed(aggregate.sd));
      row.push_back(fixed(aggregate.pooled));
    }
    rows.push_back(row);
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  }
  std::ostringstream table;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      table << (c == 0 ? "" : " | ") << (c + 1 == rows[r].size() ? rows[r][c] : pad(rows[r][c], widths[c]));
    }
    table << "\n";
    if (r == 0) {
      for (size_t c = 0; c < widths.size(); ++c) table << (c == 0 ? "" : "-+-") << std::string(widths[c], '-');
      table << "\n";
    }
  }
  table << definitions(summary);
  for (int m = 0; m < metrics::kMetricCount; ++m) {
    for (const metrics::Region region : kRegions) {
      const int64_t used = summary.regions[static_cast<int>(region)].metrics[m].images_used;
      if (used < summary.images) {
        table << metrics::metric_name(static_cast<metrics::Metric>(m)) << " (" << metrics::region_name(region)
              << "): " << summary.images - used << " of " << summary.images << " image(s) skipped (undefined there)\n";
      }
    }
  }
  return table.str();
}

void write_per_image_csv(const std::string& path, const std::vector<metrics::ImageMetrics>& images) {
  std::ostringstream csv;
  csv << "image,region,threshold";
  for (const std::string& name : metric_names()) csv << "," << name;
  for (const std::string& name : count_names()) csv << "," << name;
  csv << "\n";
  for (const metrics::ImageMetrics& image : images) {
    for (const metrics::Region region : kRegions) {
      const metrics::RegionMetrics& measured = image[region];
      csv << csv_field(image.name) << "," << metrics::region_name(region) << "," << number(image.threshold);
      for (const double value : measured.values) csv << "," << number(value);
      for (const metrics::CountField& field : metrics::count_fields()) csv << "," << measured.counts.*field.member;
      csv << "\n";
    }
  }
  write_text_file_atomically(path, csv.str());
}

void write_summary_csv(const std::string& path, const metrics::MetricsSummary& summary) {
  std::ostringstream csv;
  csv << "region,metric,per_image_mean,per_image_sd,pooled,images_used\n";
  for (const metrics::Region region : kRegions) {
    for (int m = 0; m < metrics::kMetricCount; ++m) {
      const metrics::MetricAggregate& aggregate = summary.regions[static_cast<int>(region)].metrics[m];
      csv << metrics::region_name(region) << "," << metrics::metric_name(static_cast<metrics::Metric>(m)) << ","
          << number(aggregate.mean) << "," << number(aggregate.sd) << "," << number(aggregate.pooled) << ","
          << aggregate.images_used << "\n";
    }
  }
  write_text_file_atomically(path, csv.str());
}

void write_metrics_hdf5(const std::string& path, const std::vector<metrics::ImageMetrics>& images,
                        const metrics::MetricsSummary& summary) {
  io::hdf5::silence_errors();
  write_file_atomically(path, [&](const std::string& temporary) {
    Handle file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    VT_CHECK(file.valid(), "cannot create HDF5 file '", temporary, "'");
    io::hdf5::write_string_attribute(file.get(), "format", kFormat);
    io::hdf5::write_int_attribute(file.get(), "format_version", {kFormatVersion});
    write_double_attribute(file.get(), "threshold", summary.threshold, temporary);
    io::hdf5::write_int_attribute(file.get(), "images", {summary.images});
    io::hdf5::write_string_list_attribute(
        file.get(), "regions",
        {metrics::region_name(metrics::Region::fov), metrics::region_name(metrics::Region::full)});
    io::hdf5::write_string_list_attribute(file.get(), "metrics", metric_names());
    io::hdf5::write_string_list_attribute(file.get(), "counts", count_names());
    io::hdf5::write_string_attribute(file.get(), "definitions", definitions(summary));

    Handle per_image = create_group(file.get(), "images", temporary);
    std::vector<std::string> names;
    for (const metrics::ImageMetrics& image : images) names.push_back(image.name);
    write_strings(per_image.get(), "name", names, temporary);
    for (const metrics::Region region : kRegions) {
      Handle group = create_group(per_image.get(), metrics::region_name(region), temporary);
      for (int m = 0; m < metrics::kMetricCount; ++m) {
        std::vector<double> column;
        for (const metrics::ImageMetrics& image : images) column.push_back(image[region].values[m]);
        write_doubles(group.get(), metrics::metric_name(static_cast<metrics::Metric>(m)), column, temporary);
      }
      for (const metrics::CountField& field : metrics::count_fields()) {
        std::vector<int64_t> column;
        for (const metrics::ImageMetrics& image : images) column.push_back(image[region].counts.*field.member);
        write_ints(group.get(), field.name, column, temporary);
      }
    }

    Handle summary_group = create_group(file.get(), "summary", temporary);
    for (const metrics::Region region : kRegions) {
      const metrics::RegionSummary& region_summary = summary.regions[static_cast<int>(region)];
      Handle group = create_group(summary_group.get(), metrics::region_name(region), temporary);
      std::vector<double> means, sds, pooled;
      std::vector<int64_t> used;
      for (const metrics::MetricAggregate& aggregate : region_summary.metrics) {
        means.push_back(aggregate.mean);
        sds.push_back(aggregate.sd);
        pooled.push_back(aggregate.pooled);
        used.push_back(aggregate.images_used);
      }
      write_doubles(group.get(), "per_image_mean", means, temporary);
      write_doubles(group.get(), "per_image_sd", sds, temporary);
      write_doubles(group.get(), "pooled", pooled, temporary);
      write_ints(group.get(), "images_used", used, temporary);
      for (const metrics::CountField& field : metrics::count_fields()) {
        io::hdf5::write_int_attribute(group.get(), field.name, {region_summary.counts.*field.member});
      }
    }
    VT_CHECK(file.close(), "cannot write HDF5 file '", temporary, "' (disk full?)");
  });
}

}  // namespace vesseltune::eval
