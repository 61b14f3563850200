#include "vesseltune/checkpoint/checkpoint_store.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>
#include <sstream>

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/io/hdf5.h"
#include "vesseltune/checkpoint/optimizer_checkpoint.h"

namespace vesseltune::checkpoint {
namespace {

using io::hdf5::Handle;
namespace fs = std::filesystem;

constexpr int kFormatVersion = 1;

std::string checkpoint_name(int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "step_%08lld.h5", static_cast<long long>(step));
  return name;
}

nlohmann::json to_json(const TrainerState& s) {
  return {{"format_version", kFormatVersion},
          {"step", s.step},
          {"sampler", {{"epoch", s.sampler.epoch}, {"consumed", s.sampler.consumed}}},
          {"schedule",
           {{"lr", s.schedule.lr},
            {"min_lr", s.schedule.min_lr},
            {"warmup_steps", s.schedule.warmup_steps},
            {"total_steps", s.schedule.total_steps},
            {"start_factor", s.schedule.start_factor}}},
          {"seed", s.seed},
          {"consecutive_nonfinite", s.consecutive_nonfinite},
          {"best_dice", s.best_dice},
          {"best_step", s.best_step},
          {"val_dice", s.val_dice},
          {"world_size", s.world_size}};
}

TrainerState from_json(const nlohmann::json& j) {
  TrainerState s;
  s.step = j.at("step");
  s.sampler.epoch = j.at("sampler").at("epoch");
  s.sampler.consumed = j.at("sampler").at("consumed");
  const auto& schedule = j.at("schedule");
  s.schedule.lr = schedule.at("lr");
  s.schedule.min_lr = schedule.at("min_lr");
  s.schedule.warmup_steps = schedule.at("warmup_steps");
  s.schedule.total_steps = schedule.at("total_steps");
  s.schedule.start_factor = schedule.at("start_factor");
  s.seed = j.at("seed");
  s.consecutive_nonfinite = j.at("consecutive_nonfinite");
  s.best_dice = j.at("best_dice");
  s.best_step = j.at("best_step");
  s.val_dice = j.at("val_dice");
  s.world_size = j.at("world_size");
  return s;
}

// Rank 0's part before the collective optimizer write: the file with the trainer state and the config.
void create_file(const fs::path& path, const TrainerState& state, const std::string& config_yaml) {
  io::hdf5::silence_errors();
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  VT_CHECK(file.valid(), "cannot create checkpoint '", path.string(), "' (disk full or no permission?)");
  io::hdf5::write_string_attribute(file.get(), "trainer", to_json(state).dump());
  io::hdf5::write_string_attribute(file.get(), "config", config_yaml);
  VT_CHECK(file.close(), "closing checkpoint '", path.string(), "' failed");
}

// A string attribute of a checkpoint file's root; errors name the file.
std::string read_root_attribute(const fs::path& path, const char* name) {
  io::hdf5::silence_errors();
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  VT_CHECK(file.valid(), "cannot open checkpoint '", path.string(), "' (truncated or not HDF5)");
  std::string text;
  VT_CHECK(io::hdf5::read_string_attribute(file.get(), name, text), path.string(), ": no '", name,
           "' attribute (not a vesseltune training checkpoint)");
  return text;
}

}  // namespace

CheckpointStore::CheckpointStore(fs::path directory, int64_t keep_last)
    : directory_(std::move(directory)), keep_last_(keep_last) {
  VT_CHECK(keep_last_ >= 1, "checkpoints: keep_last must be >= 1, got ", keep_last_);
}

TrainerState CheckpointStore::read_state(const fs::path& path) {
  const std::string text = read_root_attribute(path, "trainer");
  try {
    const auto j = nlohmann::json::parse(text);
    VT_CHECK(j.at("format_version") == kFormatVersion, path.string(), ": checkpoint format version ",
             j.at("format_version").dump(), ", this build reads ", kFormatVersion);
    return from_json(j);
  } catch (const nlohmann::json::exception& e) {
    VT_FAIL(path.string(), ": the 'trainer' attribute is damaged: ", e.what());
  }
}

std::string CheckpointStore::read_config(const fs::path& path) { return read_root_attribute(path, "config"); }

std::vector<fs::path> CheckpointStore::list() const {
  std::vector<fs::path> found;
  if (!fs::is_directory(directory_)) return found;
  static const std::regex pattern(R"(step_\d{8}\.h5)");
  for (const auto& entry : fs::directory_iterator(directory_)) {
    if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), pattern)) {
      found.push_back(entry.path());
    }
  }
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) { return a.filename() > b.filename(); });
  return found;
}

fs::path CheckpointStore::save(const TrainerState& state, const std::string& config_yaml,
                               optim::ZeroOptimizer& optimizer) {
  comm::Communicator& comm = optimizer.communicator();
  const comm::World& world = comm.world();
  const fs::path final_path = directory_ / checkpoint_name(state.step);
  const fs::path temporary = temporary_path_for(final_path.string());
  if (world.rank == 0) {
    fs::create_directories(directory_);
    // Leftovers of a run that died while saving: never complete, never read.
    for (const auto& entry : fs::directory_iterator(directory_)) {
      if (entry.path().extension() == ".tmp") std::remove(entry.path().c_str());
    }
    create_file(temporary, state, config_yaml);
  }
  comm.barrier("checkpoint save: file created");
  write_optimizer_state(temporary.string(), optimizer);  // collective; ends with a barrier
  if (world.rank == 0) {
    rename_into_place(temporary.string(), final_path.string());  // the name appears complete or not at all
    prune();
  }
  comm.barrier("checkpoint save: in place");
  return final_path;
}

void CheckpointStore::prune() const {
  const std::vector<fs::path> all = list();
  // The best by validation Dice among the checkpoints that have one.
  fs::path best;
  double best_dice = -1;
  for (const fs::path& path : all) {
    try {
      const double dice = read_state(path).val_dice;
      if (dice > best_dice) best_dice = dice, best = path;
    } catch (const Error&) {
      // A damaged checkpoint is no candidate for "best"; it is removed with the old ones below.
    }
  }
  for (size_t i = static_cast<size_t>(keep_last_); i < all.size(); ++i) {
    if (all[i] == best) continue;
    std::remove(all[i].c_str());
    VT_LOG(info) << "removed old checkpoint " << all[i].string();
  }
}

// Rank 0's list on every rank: a shared file system may show a new file to some ranks before others, and every rank
// must try the same candidates in the same order (each try is collective).
std::vector<fs::path> CheckpointStore::listed_on_rank0(comm::Communicator& comm) const {
  std::string names;
  if (comm.rank() == 0) {
    for (const fs::path& path : list()) names += path.string() + '\n';
  }
  std::vector<char> shared(names.begin(), names.end());
  comm.broadcast_host(shared, 0, "checkpoint list of rank 0");
  std::vector<fs::path> paths;
  std::istringstream lines(std::string(shared.begin(), shared.end()));
  for (std::string line; std::getline(lines, line);) paths.emplace_back(line);
  return paths;
}

std::optional<ResumedCheckpoint> CheckpointStore::resume(const std::string& which, optim::ZeroOptimizer& optimizer,
                                                         bool allow_restart) {
  comm::Communicator& comm = optimizer.communicator();
  const bool automatic = which == "auto";
  const std::vector<fs::path> candidates = automatic ? listed_on_rank0(comm) : std::vector<fs::path>{fs::path(which)};
  std::vector<std::pair<fs::path, std::string>> failures;
  for (const fs::path& path : candidates) {
    std::string failure;
    TrainerState state;
    try {
      state = read_state(path);
    } catch (const Error& e) {
      failure = e.what();
    }
    // Every rank reads the same shared file, but a damaged one may fail on some ranks only: agree first.
    if (comm.first_failed_rank(!failure.empty(), "checkpoint read: agreeing on " + path.string()) < 0) {
      try {
        read_optimizer_state(path.string(), optimizer);  // collective; ranks agree on failure inside
        return ResumedCheckpoint{state, path};
      } catch (const UnreadableCheckpoint& e) {
        failure = e.what();
      }
    } else if (failure.empty()) {
      failure = "checkpoint '" + path.string() + "' could not be read on another rank";
    }
    VT_CHECK(automatic, "--resume ", which, ": ", failure);
    if (comm.rank() == 0) VT_LOG(warning) << "skipping checkpoint " << path.string() << ": " << failure;
    failures.emplace_back(path, failure);
  }
  if (!failures.empty()) {
    handle_all_damaged(failures, comm, allow_restart);
    optimizer.reset_state();  // a failed read may have filled part of it
  }
  return std::nullopt;
}

void CheckpointStore::handle_all_damaged(const std::vector<std::pair<fs::path, std::string>>& failures,
                                         comm::Communicator& comm, bool allow_restart) const {
  if (!allow_restart) {
    std::ostringstream list;
    for (const auto& [path, why] : failures) list << "\n  " << path.string() << ": " << why;
    VT_FAIL("--resume auto: every checkpoint in ", directory_.string(), " is damaged; nothing was changed:", list.str(),
            "\nrestore one, or start over from step 0 with --allow-restart (which sets these aside as *.damaged)");
  }
  if (comm.rank() == 0) {
    for (const auto& [path, why] : failures) {
      const std::string aside = path.string() + ".damaged";
      VT_CHECK(std::rename(path.c_str(), aside.c_str()) == 0, "cannot set aside the damaged checkpoint ",
               path.string(), ": ", std::strerror(errno));
      VT_LOG(warning) << "set aside damaged checkpoint " << path.string() << " as " << aside;
    }
  }
  comm.barrier("checkpoints set aside");
  VT_LOG(warning) << "--allow-restart: every checkpoint was damaged; starting over from step 0";
}

}  // namespace vesseltune::checkpoint
