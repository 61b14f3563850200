// vesseltune-predict: Sa2VA's predict_forward in C++ for images and folders, ranks splitting the images (mpirun / srun;
// one rank works too). Per image: the model's greedy answer to the prompt, and for every [SEG] it generated a mask at
// the image's own size (OUT/masks/NAME_k.png, 0/255) and the mask over the image (OUT/overlays/NAME_k.png). Rank 0
// writes OUT/answers.jsonl in input order: image, prompt, answer, number of masks, mask files. OUT appears complete or
// not at all (written as OUT.tmp and renamed).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "vesseltune/comm/launch.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/data/codec.h"
#include "vesseltune/data/layout.h"
#include "vesseltune/data/packer.h"
#include "vesseltune/eval/image_source.h"
#include "vesseltune/eval/overlay.h"
#include "vesseltune/eval/predictor.h"
#include "vesseltune/export/output_folder.h"
#include "vesseltune/metrics/vessel_metrics.h"
#include "vesseltune/setup/trained_model.h"

using namespace vesseltune;
namespace fs = std::filesystem;

namespace {

struct Arguments {
  std::string checkpoint, weights, prompt, prompt_file, out;
  std::vector<std::string> inputs, overrides;
  int batch = 1;
  int64_t max_new_tokens = 2048;
  bool no_cache = false, overwrite = false;
  double threshold = metrics::kDefaultThreshold;
};

struct InputImage {
  fs::path file;
  std::string name;  // unique, usable as a file name
};

// Files as given, folders as their image files (other files in a folder are left out); names must not repeat.
std::vector<InputImage> list_inputs(const std::vector<std::string>& inputs) {
  std::vector<InputImage> images;
  for (const fs::path path : inputs) {
    VT_CHECK(fs::exists(path), "vesseltune-predict: no file or folder '", path.string(), "'");
    if (!fs::is_directory(path)) {
      images.push_back({path, data::image_stem(path)});
      continue;
    }
    for (const fs::path& file : data::list_image_files(path)) {
      images.push_back({file, eval::file_name_for(fs::relative(file, path).string())});
    }
  }
  VT_CHECK(!images.empty(), "vesseltune-predict: no image files in ", inputs.size(), " input(s)");
  std::map<std::string, fs::path> seen;
  for (const InputImage& image : images) {
    const auto [it, added] = seen.emplace(image.name, image.file);
    VT_CHECK(added, "vesseltune-predict: '", it->second.string(), "' and '", image.file.string(),
             "' would both be written as ", image.name, "; give them separately");
  }
  return images;
}

std::string read_prompt(const Arguments& args) {
  if (args.prompt_file.empty()) return args.prompt;
  std::ifstream in(args.prompt_file);
  VT_CHECK(in, "vesseltune-predict: cannot read the prompt file '", args.prompt_file, "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  VT_CHECK(!text.empty(), "vesseltune-predict: the prompt file '", args.prompt_file, "' is empty");
  return text;
}

// Masks and overlays of one image; the answers.jsonl line that describes them.
nlohmann::json write_prediction(const InputImage& input, const data::SampleRecord& record,
                                const eval::Prediction& prediction, const std::string& prompt, double threshold,
                                const fs::path& staging) {
  nlohmann::json line = {{"image", input.file.string()}, {"prompt", prompt}, {"answer", prediction.answer},
                         {"masks", prediction.probabilities.size()}, {"mask_files", nlohmann::json::array()}};
  for (size_t k = 0; k < prediction.probabilities.size(); ++k) {
    const std::string file = input.name + "_" + std::to_string(k) + ".png";
    const at::Tensor mask = metrics::vessel_mask(prediction.probabilities[k], threshold);
    data::write_png(staging / "masks" / file, eval::mask_image(mask));
    data::write_png(staging / "overlays" / file, eval::render_mask_overlay(record.image, mask));
    line["mask_files"].push_back("masks/" + file);
  }
  if (prediction.seg_cut_off) line["seg_cut_off"] = true;
  return line;
}

// Rank 0: the ranks' lines in input order as answers.jsonl.
void merge_answers(const fs::path& staging, int ranks) {
  std::map<int64_t, std::string> lines;
  for (int r = 0; r < ranks; ++r) {
    const fs::path part = staging / ("answers.rank" + std::to_string(r) + ".jsonl");
    std::ifstream in(part);
    for (std::string line; std::getline(in, line);) lines.emplace(nlohmann::json::parse(line).at("index").get<int64_t>(), line);
    in.close();
    fs::remove(part);
  }
  std::ofstream out(staging / "answers.jsonl");
  for (const auto& [index, line] : lines) {
    nlohmann::json entry = nlohmann::json::parse(line);
    entry.erase("index");
    out << entry.dump() << "\n";
  }
  VT_CHECK(out.good(), "vesseltune-predict: cannot write ", (staging / "answers.jsonl").string());
}

int predict(const Arguments& args, const comm::World& world) {
  const std::vector<InputImage> inputs = list_inputs(args.inputs);
  const std::string prompt = read_prompt(args);
  std::unique_ptr<exporting::OutputFolder> folder;
  if (world.rank == 0) folder = std::make_unique<exporting::OutputFolder>(args.out, args.overwrite);
  const fs::path staging = exporting::OutputFolder::staging_for(args.out);
  if (world.rank == 0) fs::create_directories(staging / "masks"), fs::create_directories(staging / "overlays");
  const auto comm = comm::make_communicator(world, comm::Backend::automatic, std::chrono::minutes(10));
  comm->barrier("predict: output folder");
  log::init({world.rank, log::Severity::info, false, (staging / "predict.log").string()});

  const setup::TrainedModel model = args.checkpoint.empty()
                                        ? setup::load_merged_model(args.weights, args.overrides, comm->device())
                                        : setup::load_trained_model(args.checkpoint, args.overrides, comm->device());
  eval::Predictor predictor(model, {prompt, args.max_new_tokens, !args.no_cache});
  VT_LOG(info) << "predicting " << inputs.size() << " images with " << model.source << " (" << world.size
               << " ranks, batch " << args.batch << ", prompt \"" << prompt << "\")";

  std::ofstream answers(staging / ("answers.rank" + std::to_string(world.rank) + ".jsonl"));
  std::vector<size_t> mine;
  for (size_t i = world.rank; i < inputs.size(); i += world.size) mine.push_back(i);
  const auto start = std::chrono::steady_clock::now();
  for (size_t first = 0; first < mine.size(); first += args.batch) {
    const size_t count = std::min<size_t>(args.batch, mine.size() - first);
    std::vector<data::SampleRecord> records;
    for (size_t k = 0; k < count; ++k) {
      const fs::path& file = inputs[mine[first + k]].file;
      records.push_back(data::load_source_item({file, {}, {}, "", {}, ""}, file.parent_path(), "images",
                                               {data::kDefaultText}, 0));
      records.back().source = file.string();  // errors name the file as the user gave it
    }
    const std::vector<eval::Prediction> predictions = predictor.predict(records);
    for (size_t k = 0; k < count; ++k) {
      const size_t index = mine[first + k];
      nlohmann::json line = write_prediction(inputs[index], records[k], predictions[k], prompt, args.threshold, staging);
      if (predictions[k].seg_cut_off) {
        VT_LOG(warning) << inputs[index].file.string() << ": the answer ends in a [SEG] cut off by --max-new-tokens "
                        << "(no hidden state, so no mask, as in Sa2VA)";
      }
      line["index"] = index;
      answers << line.dump() << "\n";
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    VT_LOG(info) << "predict: " << first + count << " of " << mine.size() << " images on rank 0, "
                 << (first + count) / seconds << " images/s";
  }
  answers.close();
  VT_CHECK(!answers.fail(), "vesseltune-predict: cannot write the answers of rank ", world.rank, " in ", staging.string());
  comm->barrier("predict: every image written");
  if (world.rank != 0) return 0;
  merge_answers(staging, world.size);
  folder->commit();
  VT_LOG(info) << "written: " << args.out << "/answers.jsonl, masks/, overlays/, predict.log";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vesseltune-predict: a trained Sa2VA's answers and masks for images (Sa2VA's predict_forward; run "
               "under mpirun or srun to split the images over ranks)"};
  Arguments args;
  auto* checkpoint = app.add_option("--checkpoint", args.checkpoint,
                                    "training checkpoint (step_N.h5) or work dir (its newest checkpoint)");
  auto* weights = app.add_option("--weights", args.weights, "merged weights folder written by vesseltune-export");
  checkpoint->excludes(weights);
  auto* prompt = app.add_option("--prompt", args.prompt, "the user's text; <image> marks the image (prepended when "
                                "missing)")->default_val(eval::PredictOptions{}.prompt);
  app.add_option("--prompt-file", args.prompt_file, "read the prompt from this file instead")->excludes(prompt);
  app.add_option("inputs", args.inputs, "image files and folders (a folder's image files, by extension)")->required();
  app.add_option("--out", args.out, "output folder (refused if it exists, unless --overwrite)")->required();
  app.add_flag("--overwrite", args.overwrite, "replace an existing output folder once the new one is complete");
  app.add_option("--batch", args.batch, "images generated together per rank")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-new-tokens", args.max_new_tokens, "longest answer, in tokens (Sa2VA's default)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--no-cache", args.no_cache, "recompute the whole sequence at every token (a reference; slow)");
  app.add_option("--threshold", args.threshold, "probability > threshold is in the mask")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--set", args.overrides, "override a key of the run's config, e.g. model.weights=/models/Sa2VA-4B");
  CLI11_PARSE(app, argc, argv);
  if (args.checkpoint.empty() && args.weights.empty()) {
    std::cerr << "vesseltune-predict: give --checkpoint or --weights\n";
    return 2;
  }
  return comm::run_ranks(argc, argv, [&](const comm::World& world) { return predict(args, world); });
}
