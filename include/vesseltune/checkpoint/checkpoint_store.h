#pragma once
// Training checkpoints: WORK_DIR/checkpoints/step_00000500.h5, one HDF5 file per save, readable with h5py.
//   /optimizer           fp32 master weights (= the trainable weights, by name), AdamW moments: world-size
//                        independent, Fletcher-32 checksummed (optimizer_checkpoint.h)
//   attribute "trainer"  JSON: step, sampler position (epoch, consumed), LR schedule, seed, best validation
//                        Dice so far, this checkpoint's validation Dice, skipped-step counter, world size
//   attribute "config"   the resolved training config (YAML)
// RNG: the trainer reseeds every generator at each step from (seed, step, rank), so seed and step are the whole
// random state; a resumed run draws exactly what the uninterrupted run would have drawn.
//
// Safety: a checkpoint is written as step_N.h5.tmp and renamed once every rank's part is in it, so a name
// without .tmp is complete. Resuming checks names, shapes and checksums; `auto` falls back to the next newest,
// with a warning, when the newest cannot be read. Kept: the newest keep_last plus the one with the best
// validation Dice.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vesseltune/comm/communicator.h"
#include "vesseltune/data/sampler.h"
#include "vesseltune/optim/zero_optimizer.h"
#include "vesseltune/optim/lr_schedule.h"

namespace vesseltune::checkpoint {

struct TrainerState {
  int64_t step = 0;                   // optimizer steps done
  data::SamplerPosition sampler;      // where the training data stands after them
  optim::LrSchedule schedule;
  uint64_t seed = 0;
  int64_t consecutive_nonfinite = 0;  // skipped steps in a row at the end
  double best_dice = -1;              // best validation Dice (in the FOV) so far; -1: no validation yet
  int64_t best_step = -1;
  double val_dice = -1;               // validation Dice at this very step, when validation ran at it
  int world_size = 1;                 // of the run that wrote it (resuming at another size is allowed)
};

struct ResumedCheckpoint {
  TrainerState state;
  std::filesystem::path path;
};

class CheckpointStore {
 public:
  CheckpointStore(std::filesystem::path directory, int64_t keep_last);

  // Collective over the optimizer's ranks. Writes the checkpoint of STATE.step and prunes old ones; returns its path.
  std::filesystem::path save(const TrainerState& state, const std::string& config_yaml, optim::ZeroOptimizer& optimizer);

  // Collective over the optimizer's ranks. WHICH: a checkpoint file, or "auto" for the newest one that reads back (damaged newer ones are
  // skipped with a warning). Fills the optimizer (and through it the model's trainable weights). Nothing when
  // `auto` finds no checkpoint. A named file that cannot be read is an error naming it; so is `auto` when every
  // checkpoint is damaged (each file with its reason), unless ALLOW_RESTART: then they are set aside as
  // step_N.h5.damaged (never read, never pruned) and nothing is returned, so the run starts over.
  std::optional<ResumedCheckpoint> resume(const std::string& which, optim::ZeroOptimizer& optimizer,
                                          bool allow_restart = false);

  // Complete checkpoints, newest first.
  std::vector<std::filesystem::path> list() const;
  const std::filesystem::path& directory() const { return directory_; }

  // The "trainer" attribute of a checkpoint file; errors name the file.
  static TrainerState read_state(const std::filesystem::path& path);
  // The resolved training config (YAML) the checkpoint was written with; errors name the file.
  static std::string read_config(const std::filesystem::path& path);

 private:
  void prune() const;
  std::vector<std::filesystem::path> listed_on_rank0(comm::Communicator& comm) const;
  // Every candidate failed: the error listing FAILURES, or (ALLOW_RESTART) the files set aside. Collective.
  void handle_all_damaged(const std::vector<std::pair<std::filesystem::path, std::string>>& failures,
                          comm::Communicator& comm, bool allow_restart) const;

  std::filesystem::path directory_;
  int64_t keep_last_;
};

}  // namespace vesseltune::checkpoint
