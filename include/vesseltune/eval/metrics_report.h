#pragma once
// The vessel metrics (metrics/vessel_metrics.h) as people and programs read them: a printed table, CSV files and an
// HDF5 file. Every file names a metric exactly as the table does ("dice", "iou", ..., "auc") and a region as
// "fov" or "full"; counts are "tp", "fp", "fn", "tn", "skeleton_predicted", ... (count_fields()). NaN (an auc
// that is undefined) is written as "nan" in text and as NaN in HDF5. Files are written under PATH.tmp and
// renamed, so a file with the final name is complete.
//
// Per-image CSV: one row per image and region, columns image, region, threshold, the metrics, the counts.
// Summary CSV:   one row per region and metric, columns region, metric, per_image_mean, per_image_sd, pooled,
//                images_used (images whose value is not NaN).
// HDF5 (readable with h5py alone):
//   /                          attributes format = "vesseltune-eval-metrics", format_version = 1, threshold,
//                              images, regions, metrics, counts (the name lists), definitions (the footer text)
//   /images/name               the image names (variable-length UTF-8 strings), one per image
//   /images/<region>/<metric>  float64 [images]
//   /images/<region>/<count>   int64 [images]
//   /summary/<region>/per_image_mean, per_image_sd, pooled   float64 [metrics], rows in the order of "metrics"
//   /summary/<region>/images_used                             int64 [metrics]
//   /summary/<region>          attributes <count> = the count summed over the images

#include <string>
#include <vector>

#include "vesseltune/metrics/vessel_metrics.h"

namespace vesseltune::eval {

// Aligned columns: metric | FOV per image (mean ± sd) | FOV pooled | full per image (mean ± sd) | full pooled,
// then a footer that says what the aggregations and regions mean, the threshold and any images skipped.
std::string format_metrics_table(const metrics::MetricsSummary& summary);

void write_per_image_csv(const std::string& path, const std::vector<metrics::ImageMetrics>& images);
void write_summary_csv(const std::string& path, const metrics::MetricsSummary& summary);
void write_metrics_hdf5(const std::string& path, const std::vector<metrics::ImageMetrics>& images,
                        const metrics::MetricsSummary& summary);

}  // namespace vesseltune::eval
