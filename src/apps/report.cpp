// vesseltune-report: a training run's curves at a glance. Reads the run's metrics file (io/metrics_file.h), draws
// PNG plots with PLplot's cairo driver and prints a summary of every column.
//   vesseltune-report METRICS.h5 [--out DIR] [--quiet]
// Plots (only those whose columns hold data): losses, lr, grad_norm, throughput, memory (train table) and
// validation (dice_fov, dice_full). The default DIR is plots/ beside the metrics file.

#include <plstream.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <limits>

#include "vesseltune/core/check.h"
#include "vesseltune/io/metrics_file.h"

using namespace vesseltune;
namespace fs = std::filesystem;

namespace {

constexpr int kWidth = 1000, kHeight = 600;  // pixels of every PNG
constexpr const char* kDevice = "pngcairo";

// cmap0: the background, axes and text, the grid, then one colour per curve (matplotlib's "tab10").
enum Colour : PLINT { kBackground = 0, kInk = 1, kGrid = 2, kFirstCurve = 3 };
constexpr PLINT kRed[] = {255, 0, 220, 31, 255, 44, 214, 148, 140, 227, 127, 188, 23};
constexpr PLINT kGreen[] = {255, 0, 220, 119, 127, 160, 39, 103, 86, 119, 127, 189, 190};
constexpr PLINT kBlue[] = {255, 0, 220, 180, 14, 44, 40, 189, 75, 194, 127, 34, 207};
constexpr int kCurveColours = std::size(kRed) - kFirstCurve;

struct Series {
  std::string label;
  std::vector<PLFLT> steps, values;  // finite points only
};

struct PlotSpec {
  std::string file, title, y_label;
  bool markers = false;  // validation: a few points, each worth seeing
};

struct Plot {
  PlotSpec spec;
  std::vector<Series> series;
};

const io::MetricsTable* find_table(const std::map<std::string, io::MetricsTable>& tables, const std::string& name) {
  const auto found = tables.find(name);
  return found == tables.end() ? nullptr : &found->second;
}

bool has_column(const io::MetricsTable& table, const std::string& name) {
  return std::find(table.columns.begin(), table.columns.end(), name) != table.columns.end();
}

// COLUMN against step, without the non-finite values (a NaN loss of a skipped step).
Series series_of(const io::MetricsTable& table, const std::string& column) {
  Series series{column, {}, {}};
  const auto& steps = table.column("step");
  const auto& values = table.column(column);
  for (size_t r = 0; r < values.size(); ++r) {
    if (std::isfinite(steps[r]) && std::isfinite(values[r])) {
      series.steps.push_back(steps[r]);
      series.values.push_back(values[r]);
    }
  }
  return series;
}

// A plot of those COLUMNS that TABLE has and that hold data; no series when none does.
Plot plot_of(const io::MetricsTable* table, const std::vector<std::string>& columns, PlotSpec spec) {
  Plot plot{std::move(spec), {}};
  if (!table) return plot;
  for (const std::string& column : columns) {
    if (!has_column(*table, column)) continue;
    Series series = series_of(*table, column);
    if (!series.values.empty()) plot.series.push_back(std::move(series));
  }
  return plot;
}

std::vector<Plot> plots_of(const std::map<std::string, io::MetricsTable>& tables) {
  const io::MetricsTable* train = find_table(tables, "train");
  std::vector<std::string> losses;
  if (train) {
    for (const std::string& column : train->columns) {
      if (column.rfind("loss_", 0) == 0) losses.push_back(column);
    }
  }
  losses.insert(losses.end(), {"llm_loss", "total"});
  std::vector<Plot> plots = {
      plot_of(train, losses, {"losses.png", "Training losses", "loss"}),
      plot_of(train, {"lr"}, {"lr.png", "Learning rate", "learning rate"}),
      plot_of(train, {"grad_norm"}, {"grad_norm.png", "Gradient norm", "gradient norm"}),
      plot_of(train, {"samples_per_s"}, {"throughput.png", "Throughput", "samples / s"}),
      plot_of(train, {"gpu_mem_gib", "host_mem_gib"}, {"memory.png", "Memory", "GiB"}),
      plot_of(find_table(tables, "validation"), {"dice_fov", "dice_full"},
              {"validation.png", "Validation Dice", "Dice", true}),
  };
  plots.erase(std::remove_if(plots.begin(), plots.end(), [](const Plot& plot) { return plot.series.empty(); }),
              plots.end());
  return plots;
}

// PLplot asks on stdin for another device when the requested one is missing: fail with the package's name instead.
void require_device() {
  constexpr int kMaxDevices = 256;
  const char* menus[kMaxDevices];
  const char* names[kMaxDevices];
  const char** menus_out = menus;
  const char** names_out = names;
  int count = kMaxDevices;
  plgDevs(&menus_out, &names_out, &count);
  for (int i = 0; i < count; ++i) {
    if (std::string(names[i]) == kDevice) return;
  }
  VT_FAIL("PLplot has no '", kDevice, "' device (install plplot-driver-cairo)");
}

// [low, high] around all the values with a margin (a share of the span), never empty: a single point or a flat
// curve gets 10% of its value, or 1 around zero.
std::pair<PLFLT, PLFLT> axis_range(const std::vector<const std::vector<PLFLT>*>& series, PLFLT margin) {
  PLFLT low = std::numeric_limits<PLFLT>::infinity(), high = -low;
  for (const auto* values : series) {
    for (PLFLT value : *values) {
      low = std::min(low, value);
      high = std::max(high, value);
    }
  }
  const PLFLT pad = high > low ? margin * (high - low) : high != 0 ? std::abs(high) * 0.1 : 1.0;
  return {low - pad, high + pad};
}

void render(const Plot& plot, const std::string& path) {
  std::vector<const std::vector<PLFLT>*> steps, values;
  for (const Series& series : plot.series) {
    steps.push_back(&series.steps);
    values.push_back(&series.values);
  }
  const auto [x_low, x_high] = axis_range(steps, 0.01);
  const auto [y_low, y_high] = axis_range(values, 0.05);

  plstream pls;  // a stream of its own; ends (and writes the file) when it goes out of scope
  pls.sdev(kDevice);
  pls.sfnam(path.c_str());
  pls.spage(0, 0, kWidth, kHeight, 0, 0);
  pls.scmap0(kRed, kGreen, kBlue, std::size(kRed));
  pls.init();
  pls.adv(0);
  pls.vpor(0.11, 0.74, 0.12, 0.88);  // the right-hand side holds the legend, off the curves
  pls.wind(x_low, x_high, y_low, y_high);
  pls.col0(kGrid);
  pls.box("g", 0, 0, "g", 0, 0);
  pls.col0(kInk);
  pls.box("bcnst", 0, 0, "bcnstv", 0, 0);
  pls.lab("step", plot.spec.y_label.c_str(), plot.spec.title.c_str());

  const int n = static_cast<int>(plot.series.size());
  std::vector<PLINT> options(n, PL_LEGEND_LINE | (plot.spec.markers ? PL_LEGEND_SYMBOL : 0)), text_colours(n, kInk),
      colours(n), styles(n, 1), symbol_numbers(n, 1);
  std::vector<PLFLT> widths(n, 2.0), symbol_scales(n, 1.0);
  std::vector<const char*> labels(n), symbols(n, "#(728)");
  pls.width(2.0);
  for (int i = 0; i < n; ++i) {
    const Series& series = plot.series[i];
    colours[i] = kFirstCurve + i % kCurveColours;
    labels[i] = series.label.c_str();
    pls.col0(colours[i]);
    if (series.values.size() > 1) pls.line(series.values.size(), series.steps.data(), series.values.data());
    if (plot.spec.markers || series.values.size() == 1) {
      pls.string(series.values.size(), series.steps.data(), series.values.data(), symbols[i]);
    }
  }
  pls.col0(kInk);
  pls.width(1.0);
  PLFLT legend_width, legend_height;
  pls.legend(&legend_width, &legend_height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.02, 0.0, 0.04, kBackground, kInk, 1, 0, 0, n,
             options.data(), 1.0, 0.8, 2.0, 0.0, text_colours.data(), labels.data(), nullptr, nullptr, nullptr,
             nullptr, colours.data(), styles.data(), widths.data(), colours.data(), symbol_scales.data(),
             symbol_numbers.data(), symbols.data());
}

void print_summary(const std::map<std::string, io::MetricsTable>& tables) {
  for (const auto& [name, table] : tables) {
    std::printf("%s: %lld rows\n  %-16s %6s %12s %12s %12s %12s\n", name.c_str(),
                static_cast<long long>(table.rows()), "column", "rows", "first", "last", "min", "max");
    for (size_t c = 0; c < table.columns.size(); ++c) {
      const auto& values = table.values[c];
      double low = NAN, high = NAN;
      for (double value : values) {
        if (!std::isfinite(value)) continue;
        low = std::isnan(low) ? value : std::min(low, value);
        high = std::isnan(high) ? value : std::max(high, value);
      }
      std::printf("  %-16s %6zu %12.6g %12.6g %12.6g %12.6g\n", table.columns[c].c_str(), values.size(),
                  values.empty() ? NAN : values.front(), values.empty() ? NAN : values.back(), low, high);
    }
  }
  const io::MetricsTable* validation = find_table(tables, "validation");
  if (validation && has_column(*validation, "dice_fov")) {
    const Series dice = series_of(*validation, "dice_fov");
    if (!dice.values.empty()) {
      const size_t best = std::max_element(dice.values.begin(), dice.values.end()) - dice.values.begin();
      std::printf("best validation dice_fov: %.6g at step %.0f\n", dice.values[best], dice.steps[best]);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vesseltune-report: plots (PNG) and a summary of a training run's metrics file"};
  std::string metrics, out;
  bool quiet = false;
  app.add_option("METRICS", metrics, "the run's metrics file (HDF5)")->required();
  app.add_option("--out", out, "folder for the PNGs (default: plots/ beside METRICS)");
  app.add_flag("--quiet", quiet, "print nothing but errors");
  CLI11_PARSE(app, argc, argv);

  try {
    const auto tables = io::read_metrics(metrics);
    if (out.empty()) out = (fs::absolute(metrics).parent_path() / "plots").string();
    const std::vector<Plot> plots = plots_of(tables);
    if (!plots.empty()) {
      require_device();
      fs::create_directories(out);
    }
    for (const Plot& plot : plots) {
      const std::string path = (fs::path(out) / plot.spec.file).string();
      render(plot, path);
      VT_CHECK(fs::exists(path) && fs::file_size(path) > 0, "PLplot wrote no '", path, "'");
      if (!quiet) std::printf("%s\n", path.c_str());
    }
    if (!quiet) print_summary(tables);
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "vesseltune-report: " << error.what() << "\n";
    return 1;
  }
}
