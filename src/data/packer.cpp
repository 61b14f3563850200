#include "vesseltune/data/packer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/data/codec.h"
#include "vesseltune/data/progress.h"
#include "vesseltune/data/random.h"

namespace vesseltune::data {

namespace fs = std::filesystem;

namespace {

// A sample made and compressed by a worker, or why it was skipped.
struct Produced {
  std::optional<EncodedSample> encoded;
  double vessel_fraction = 0;
  std::string skipped;
  std::exception_ptr error;
};

double vessel_fraction(const SampleRecord& record) {
  int64_t vessel = 0, inside = 0;
  for (size_t i = 0; i < record.mask.pixels.size(); ++i) {
    inside += record.fov.pixels[i];
    vessel += record.mask.pixels[i] & record.fov.pixels[i];
  }
  return inside > 0 ? static_cast<double>(vessel) / inside : 0.0;
}

// Makes samples 0..COUNT-1 with MAKE on the worker threads, a block at a time, and writes them in order:
// the shards do not depend on the number of threads.
PackReport pack_records(int64_t count, const std::function<SampleRecord(int64_t)>& make, const fs::path& out,
                        const PackOptions& options, const std::string& label) {
  const int threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  ShardSetWriter writer(out, options.shards);
  PackReport report;
  std::map<std::string, SplitSummary> summaries;
  Progress progress(label, count);
  const int64_t block = static_cast<int64_t>(threads) * 4;
  for (int64_t begin = 0; begin < count; begin += block) {
    const int64_t end = std::min(count, begin + block);
    std::vector<Produced> produced(static_cast<size_t>(end - begin));
    std::atomic<int64_t> next{begin};
    auto work = [&] {
      for (int64_t i = next++; i < end; i = next++) {
        Produced& result = produced[static_cast<size_t>(i - begin)];
        try {
          const SampleRecord record = make(i);
          result.vessel_fraction = vessel_fraction(record);
          result.encoded = encode_sample(record, options.shards.image_compression_level,
                                         options.shards.compression_level);
        } catch (const std::exception& e) {
          if (options.skip_bad) {
            result.skipped = e.what();
          } else {
            result.error = std::current_exception();
          }
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& thread : pool) thread.join();
    for (Produced& result : produced) {
      if (result.error) std::rethrow_exception(result.error);  // the writer's destructor removes the partial set
      if (!result.skipped.empty()) {
        report.skipped.push_back(result.skipped);
        continue;
      }
      const EncodedSample& sample = *result.encoded;
      writer.add(sample);
      SplitSummary& summary = summaries[sample.split];
      if (summary.images == 0) {
        summary.min_height = summary.max_height = sample.height;
        summary.min_width = summary.max_width = sample.width;
      }
      ++summary.images;
      summary.min_height = std::min(summary.min_height, sample.height);
      summary.max_height = std::max(summary.max_height, sample.height);
      summary.min_width = std::min(summary.min_width, sample.width);
      summary.max_width = std::max(summary.max_width, sample.width);
      summary.vessel_fraction_sum += result.vessel_fraction;
    }
    progress.update(end);
  }
  progress.finish();
  report.manifest = writer.finish();
  report.splits.assign(summaries.begin(), summaries.end());
  report.seconds = progress.seconds();
  return report;
}

Image expand_grey(Image image) {
  if (image.channels == 3) return image;
  Image rgb(image.height, image.width, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    rgb.pixels[3 * i] = rgb.pixels[3 * i + 1] = rgb.pixels[3 * i + 2] = image.pixels[i];
  }
  return rgb;
}

Image load_plane(const fs::path& file, const Image& image, const fs::path& image_file, int threshold,
                 const char* what) {
  Image plane = binarise_mask(decode_image(file), threshold, file, what);
  VT_CHECK(plane.height == image.height && plane.width == image.width, what, " ", file.string(), " is ",
           plane.height, "x", plane.width, " but image ", image_file.string(), " is ", image.height, "x", image.width);
  return plane;
}

}  // namespace

Image binarise_mask(const Image& decoded, int threshold, const fs::path& file, const char* what) {
  Image plane(decoded.height, decoded.width, 1);
  int64_t histogram[256] = {};
  for (size_t i = 0; i < plane.pixels.size(); ++i) {
    uint8_t value = 0;
    for (int c = 0; c < decoded.channels; ++c) value = std::max(value, decoded.pixels[i * decoded.channels + c]);
    plane.pixels[i] = value;
    ++histogram[value];
  }
  if (threshold > 0) {
    for (uint8_t& v : plane.pixels) v = v >= threshold ? 1 : 0;
  } else {
    std::vector<int> levels;
    for (int v = 0; v < 256; ++v) {
      if (histogram[v] > 0) levels.push_back(v);
    }
    const bool two_level = levels.size() == 1 || (levels.size() == 2 && levels[0] == 0);
    if (!two_level) {
      std::ostringstream shown;
      for (size_t i = 0; i < std::min<size_t>(levels.size(), 5); ++i) shown << (i ? ", " : "") << levels[i];
      VT_FAIL(what, " ", file.string(), " is not binary: it holds ", levels.size(), " grey levels (", shown.str(),
              levels.size() > 5 ? ", ..." : "", "), expected 0 and one other value; pass --mask-threshold T to "
              "binarise it at T");
    }
    const int vessel = levels.back();
    for (uint8_t& v : plane.pixels) v = vessel > 0 && v == vessel ? 1 : 0;
  }
  return plane;
}

SampleRecord load_source_item(const SourceItem& item, const fs::path& base, const std::string& dataset,
                              const std::vector<std::string>& texts, int threshold) {
  VT_CHECK(item.problem.empty(), item.problem);
  SampleRecord record;
  record.image = expand_grey(decode_image(item.image));
  record.mask = item.mask.empty() ? Image(record.image.height, record.image.width, 1, 0)
                                  : load_plane(item.mask, record.image, item.image, threshold, "mask");
  record.fov = item.fov.empty() ? Image(record.image.height, record.image.width, 1, 1)
                                : load_plane(item.fov, record.image, item.image, threshold, "FOV mask");
  VT_CHECK(item.fov.empty() || std::find(record.fov.pixels.begin(), record.fov.pixels.end(), 1) != record.fov.pixels.end(),
           "FOV mask ", item.fov.string(), " is empty (no pixel inside the field of view)");
  record.texts = item.texts.empty() ? texts : item.texts;
  record.source = item.image.lexically_relative(base).string();
  record.dataset = dataset;
  record.split = item.split;
  record.original_height = record.image.height;
  record.original_width = record.image.width;
  return record;
}

std::vector<std::string> draw_splits(int64_t count, double val_fraction, uint64_t seed) {
  VT_CHECK(val_fraction >= 0 && val_fraction < 1, "--val-fraction must be in [0, 1), got ", val_fraction);
  const auto val_count = static_cast<int64_t>(std::llround(val_fraction * count));
  std::vector<std::string> splits(static_cast<size_t>(count), "train");
  const std::vector<int64_t> order = seeded_permutation(count, mix_seed(seed, 0x5b117));
  for (int64_t i = 0; i < val_count; ++i) splits[static_cast<size_t>(order[i])] = "val";
  return splits;
}

std::string PackReport::table() const {
  std::ostringstream out;
  char line[160];
  std::snprintf(line, sizeof line, "%-6s %8s %14s %14s %16s\n", "split", "images", "height", "width",
                "vessel/FOV mean");
  out << line;
  for (const auto& [split, s] : splits) {
    const std::string heights = std::to_string(s.min_height) + ".." + std::to_string(s.max_height);
    const std::string widths = std::to_string(s.min_width) + ".." + std::to_string(s.max_width);
    std::snprintf(line, sizeof line, "%-6s %8lld %14s %14s %16.4f\n", split.c_str(), static_cast<long long>(s.images),
                  heights.c_str(), widths.c_str(), s.images ? s.vessel_fraction_sum / s.images : 0.0);
    out << line;
  }
  if (!skipped.empty()) out << skipped.size() << " skipped (see above)\n";
  return out.str();
}

PackReport pack_dataset(const fs::path& source, const fs::path& out, const PackOptions& options) {
  const Layout layout = options.layout ? *options.layout : detect_layout(source);
  std::vector<SourceItem> items = list_items(source, layout);
  VT_LOG(info) << "layout " << layout_name(layout) << ": " << items.size() << " images in " << source.string();
  // Official splits stay; the others are drawn, over the items that have none.
  std::vector<size_t> unsplit;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].split.empty()) unsplit.push_back(i);
  }
  const std::vector<std::string> drawn =
      draw_splits(static_cast<int64_t>(unsplit.size()), options.val_fraction, options.seed);
  for (size_t k = 0; k < unsplit.size(); ++k) items[unsplit[k]].split = drawn[k];

  const fs::path base = fs::is_directory(source) ? source : source.parent_path();
  std::string dataset = options.dataset_name;
  if (dataset.empty()) {
    dataset = layout == Layout::generic ? fs::absolute(base).lexically_normal().filename().string() : layout_name(layout);
  }
  const std::vector<std::string> default_texts = options.texts.empty() ? std::vector<std::string>{kDefaultText}
                                                                         : options.texts;
  auto make = [&](int64_t i) {
    return load_source_item(items[static_cast<size_t>(i)], base, dataset, default_texts, options.mask_threshold);
  };
  PackReport report = pack_records(static_cast<int64_t>(items.size()), make, out, options, "packing " + dataset);
  for (const std::string& line : report.skipped) VT_LOG(warning) << "skipped: " << line;
  return report;
}

PackReport pack_synthetic(const SynthOptions& synth, const fs::path& out, const PackOptions& options) {
  VT_CHECK(synth.count > 0, "--count must be positive, got ", synth.count);
  const std::vector<std::string> splits = draw_splits(synth.count, options.val_fraction, synth.seed);
  auto make = [&](int64_t i) {
    SampleRecord record = synthesize_sample(i, synth);
    record.split = splits[static_cast<size_t>(i)];
    if (!options.texts.empty()) record.texts = options.texts;
    if (!options.dataset_name.empty()) record.dataset = options.dataset_name;
    return record;
  };
  return pack_records(synth.count, make, out, options, "synthesising " + synth_style_name(synth.style));
}

}  // namespace vesseltune::data
