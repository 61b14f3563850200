// write_eval_report DIR: the report files of the two hand images (hand_images.h) — DIR/metrics.h5,
// DIR/per_image.csv, DIR/summary.csv — for read_report_with_h5py.py, which checks them against its own hand values.
#include <iostream>

#include "hand_images.h"
#include "vesseltune/eval/metrics_report.h"

int main(int argc, char** argv) {
  using namespace vesseltune::eval;
  using namespace vesseltune::metrics;
  if (argc != 2) {
    std::cerr << "usage: write_eval_report DIR\n";
    return 2;
  }
  const std::string directory = argv[1];
  MetricsAccumulator accumulator;
  accumulator.add(hand::evaluate("a"));
  accumulator.add(hand::evaluate("b"));
  const MetricsSummary summary = accumulator.summary();
  write_metrics_hdf5(directory + "/metrics.h5", accumulator.images(), summary);
  write_per_image_csv(directory + "/per_image.csv", accumulator.images());
  write_summary_csv(directory + "/summary.csv", summary);
  std::cout << format_metrics_table(summary);
  return 0;
}
