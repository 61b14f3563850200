// Data pipeline throughput on this machine: packing (images/s) and the trainer's reader (samples/s of model
// inputs: InternVL tiles of 448², SAM2's 1024², masks at 256², augmentation on), against what one GPU consumes,
// for images the sizes of DRIVE (565×584), FIVES (2048×2048) and HRF (3504×2336), packed with the default
// (images stored, masks deflated) and, for the large ones, with the images deflated too (--image-compression 4).
//   bench_data [--count N] [--workers W]

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "../../tests/data/image_files.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/core/log.h"
#include "vesseltune/data/augment.h"
#include "vesseltune/data/image_ops.h"
#include "vesseltune/data/loader.h"
#include "vesseltune/data/packer.h"

namespace vt = vesseltune::data;
namespace fs = std::filesystem;

namespace {

// One GPU's appetite, in samples/s. One 448² tile per image (the synthetic 512 px and DRIVE sets): issue 8's
// target pace, 3× the Python reference (439 ms per sa2va-1b sample on an H100), about 7 samples/s; vesseltune
// measured 3.84 (sa2va-1b, one H200). Larger images, measured with bench/gpu_consumption.sh (vesseltune-train
// --benchmark on one H200, optimizer on the GPU, micro-batch 1, the faster of sa2va-1b and sa2va-4b):
// FIVES-sized images (3×3 tiles + thumbnail) 3.96 samples/s, HRF-sized (3×2 + thumbnail) 4.33 samples/s.
// The reader must deliver 4× the figure of its images' shape.
constexpr double kGpuOneTile = 7.0, kGpuFives = 3.96, kGpuHrf = 4.33;

// CPU time of the calling thread: what a sample costs whatever else the machine is doing.
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// DRIVE-shaped files (565×584 RGB LZW TIFF, GIF vessel and FOV masks) made from synthetic fundus images.
void write_drive_tree(const fs::path& root, int count) {
  vt::SynthOptions synth;
  synth.style = vt::SynthStyle::fundus;
  synth.size = 584;
  for (int i = 0; i < count; ++i) {
    const bool training = i < count / 2;
    const std::string folder = training ? "training" : "test";
    char number[8];
    std::snprintf(number, sizeof number, "%02d", i + 1);
    const std::string stem = std::string(number) + (training ? "_training" : "_test");
    for (const char* sub : {"images", "1st_manual", "mask"}) fs::create_directories(root / folder / sub);
    const vt::SampleRecord r = vt::synthesize_sample(i, synth);
    auto to_255 = [](vt::Image plane) {
      for (uint8_t& v : plane.pixels) v = v ? 255 : 0;
      return plane;
    };
    vt::testing::write_tiff(root / folder / "images" / (stem + ".tif"), vt::crop(r.image, 0, 9, 584, 565));
    vt::testing::write_gif(root / folder / "1st_manual" / (std::string(number) + "_manual1.gif"),
                           to_255(vt::crop(r.mask, 0, 9, 584, 565)));
    vt::testing::write_gif(root / folder / "mask" / (stem + "_mask.gif"), to_255(vt::crop(r.fov, 0, 9, 584, 565)));
  }
}

// HRF-shaped files (3504×2336 RGB JPEG, TIFF vessel and FOV masks) cut from synthetic fundus images.
void write_hrf_tree(const fs::path& root, int count) {
  vt::SynthOptions synth;
  synth.style = vt::SynthStyle::fundus;
  synth.size = 3504;
  for (const char* sub : {"images", "manual1", "mask"}) fs::create_directories(root / sub);
  for (int i = 0; i < count; ++i) {
    const std::string stem = std::to_string(i + 1) + "_h";
    const vt::SampleRecord r = vt::synthesize_sample(i, synth);
    auto to_255 = [](vt::Image plane) {
      for (uint8_t& v : plane.pixels) v = v ? 255 : 0;
      return plane;
    };
    vt::testing::write_jpg(root / "images" / (stem + ".jpg"), vt::crop(r.image, 584, 0, 2336, 3504));
    vt::testing::write_tiff(root / "manual1" / (stem + ".tif"), to_255(vt::crop(r.mask, 584, 0, 2336, 3504)));
    vt::testing::write_tiff(root / "mask" / (stem + "_mask.tif"), to_255(vt::crop(r.fov, 584, 0, 2336, 3504)));
  }
}

void report_pack(const char* what, const vt::PackReport& report) {
  int64_t images = 0;
  for (const auto& [split, summary] : report.splits) images += summary.images;
  std::printf("pack   %-34s %6lld images %7.2f s %8.1f images/s\n", what, static_cast<long long>(images),
              report.seconds, images / report.seconds);
}

void bench_reader(const char* what, const fs::path& set, int64_t count, int workers, double gpu_rate) {
  auto dataset = std::make_shared<vt::PackedDataset>(set, "train");
  vt::LoaderOptions options;
  options.workers = workers;
  options.prefetch_batches = 4;
  options.sampler.repeats = 100;  // enough positions for any count
  vt::DataLoader loader(dataset, options);
  loader.start({0, 0});
  for (int i = 0; i < 4; ++i) loader.next();  // warm-up: first shard opens and checks
  const auto start = std::chrono::steady_clock::now();
  int64_t tiles = 0;
  for (int64_t i = 0; i < count; ++i) tiles += loader.next()->tiles.size(0);
  const double seconds = seconds_since(start);
  const double rate = count / seconds;
  std::printf("read   %-38s %6.2f s %7.1f samples/s (%4.1f tiles/sample, %d workers) = %.1f× one GPU's %.2f: %s\n",
              what, seconds, rate, static_cast<double>(tiles) / count, workers, rate / gpu_rate, gpu_rate,
              rate >= 4 * gpu_rate ? "met (>= 4×)" : "MISSED (< 4×)");
}

// Where one thread's CPU time goes per sample (HDF5 read + inflate, model inputs with augmentation, and
// without for comparison), and the rate N free cores would sustain: measured as CPU time, so another job on
// the machine does not skew it.
void stage_breakdown(const fs::path& set, int64_t count, int cores, double gpu_rate) {
  vt::PackedDataset dataset(set, "train");
  const vt::AugmentOptions augment;
  const vt::ModelInputOptions inputs;
  double read = 0, augmented = 0, plain = 0;
  for (int64_t i = 0; i < count; ++i) {
    double start = thread_cpu_seconds();
    const vt::SampleRecord record = dataset.read(i % dataset.size());
    read += thread_cpu_seconds() - start;
    start = thread_cpu_seconds();
    const auto seed = static_cast<uint64_t>(i);
    vt::make_model_inputs(record, inputs, seed, vt::draw_augmentation(augment, seed));
    augmented += thread_cpu_seconds() - start;
    start = thread_cpu_seconds();
    vt::make_model_inputs(record, inputs, seed);
    plain += thread_cpu_seconds() - start;
  }
  const double per_sample = (read + augmented) / count;
  std::printf("cpu    %-34s read %.1f + augmented model inputs %.1f (%.1f without augmentation) = %.1f ms CPU per "
              "sample -> %d free cores: %.1f samples/s = %.1fx one GPU\n",
              set.filename().c_str(), 1e3 * read / count, 1e3 * augmented / count, 1e3 * plain / count,
              1e3 * per_sample, cores, cores / per_sample, cores / per_sample / gpu_rate);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    vesseltune::log::Options log;
    log.console_level = vesseltune::log::Severity::warning;  // progress lines would interleave the figures
    vesseltune::log::init(log);
    CLI::App app{"vesseltune data pipeline benchmark"};
    int64_t count = 244;
    int workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    app.add_option("--count", count, "synthetic samples to pack and read")->capture_default_str();
    app.add_option("--workers", workers, "reader threads")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    const fs::path root = fs::temp_directory_path() / ("vt_bench_data_" + std::to_string(::getpid()));
    vesseltune::remove_tree(root.string());
    std::printf("machine: %u hardware threads; one GPU consumes %.2f samples/s at one tile per image (issue 8's target "
                "pace), %.2f FIVES-sized and %.2f HRF-sized images (measured); the reader must deliver 4× that\n",
                std::thread::hardware_concurrency(), kGpuOneTile, kGpuFives, kGpuHrf);
    vt::PackOptions pack;
    pack.val_fraction = 0.1;
    for (int size : {256, 512}) {
      vt::SynthOptions synth;
      synth.count = count;
      synth.size = size;
      const std::string label = "synth mixed " + std::to_string(size) + " px";
      report_pack(label.c_str(), vt::pack_synthetic(synth, root / ("synth" + std::to_string(size)), pack));
    }
    write_drive_tree(root / "drive_src", 40);
    report_pack("DRIVE layout 565x584 TIF+GIF", vt::pack_dataset(root / "drive_src", root / "drive", pack));
    vt::SynthOptions fives;  // FIVES' size; its layout's PNGs would only slow the packing down
    fives.count = 12;
    fives.size = 2048;
    report_pack("synth mixed 2048 px (FIVES size)", vt::pack_synthetic(fives, root / "fives", pack));
    write_hrf_tree(root / "hrf_src", 10);
    report_pack("HRF layout 3504x2336 JPG+TIF", vt::pack_dataset(root / "hrf_src", root / "hrf", pack));
    vt::PackOptions deflated = pack;  // --image-compression 4: about half the disk, inflation on reading
    deflated.shards.image_compression_level = 4;
    report_pack("synth 2048 px, --image-compression 4", vt::pack_synthetic(fives, root / "fives_deflated", deflated));
    report_pack("HRF layout, --image-compression 4",
                vt::pack_dataset(root / "hrf_src", root / "hrf_deflated", deflated));

    stage_breakdown(root / "synth512", 60, workers, kGpuOneTile);
    stage_breakdown(root / "drive", 60, workers, kGpuOneTile);
    stage_breakdown(root / "fives", 20, workers, kGpuFives);
    stage_breakdown(root / "hrf", 12, workers, kGpuHrf);
    stage_breakdown(root / "fives_deflated", 20, workers, kGpuFives);
    stage_breakdown(root / "hrf_deflated", 12, workers, kGpuHrf);
    bench_reader("synth 512 px", root / "synth512", count, workers, kGpuOneTile);
    bench_reader("DRIVE 565x584", root / "drive", count, workers, kGpuOneTile);
    bench_reader("FIVES 2048x2048", root / "fives", count / 4, workers, kGpuFives);
    bench_reader("HRF 3504x2336", root / "hrf", count / 4, workers, kGpuHrf);
    bench_reader("FIVES 2048x2048, images deflated", root / "fives_deflated", count / 4, workers, kGpuFives);
    bench_reader("HRF 3504x2336, images deflated", root / "hrf_deflated", count / 4, workers, kGpuHrf);
    vesseltune::remove_tree(root.string());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data: %s\n", e.what());
    return 1;
  }
}
