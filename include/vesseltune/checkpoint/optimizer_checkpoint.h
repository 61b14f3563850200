#pragma once
// The ZeRO optimizer's state in an HDF5 file, world-size independent: fp32 master weights and both moments as
// 1-D datasets in canonical order (the trainable tensors in registration order), each rank writing and reading
// only its own spans. Chunked with HDF5's Fletcher-32 checksum filter, so a corrupted file fails to read instead
// of loading garbage. Readable with h5py: f["optimizer/master"][:], f["optimizer"].attrs["tensors"] (JSON).
//
// Layout:  /optimizer/{master, exp_avg, exp_avg_sq}  float32 [canonical elements], chunked, fletcher32
//          /optimizer attrs: tensors (JSON: name, shape, offset of every trainable tensor), step, skipped_steps
// The caller owns the file (the trainer adds its own groups: metadata, sampler position, RNG states).

#include <hdf5.h>

#include <string>

#include "vesseltune/core/check.h"
#include "vesseltune/optim/zero_optimizer.h"

namespace vesseltune::checkpoint {

// Collective over the optimizer's ranks. The file at `path` must exist and be closed by every rank;
// ranks take turns (serial HDF5): rank 0 creates the group and datasets, then each rank writes its spans.
void write_optimizer_state(const std::string& path, optim::ZeroOptimizer& optimizer);

// A checkpoint that cannot be read (damaged, or another run's tensors), as every rank agreed: the next one may be
// tried. Any other error (a collective that failed) is not a property of the file and ends the job.
class UnreadableCheckpoint : public Error {
 public:
  using Error::Error;
};

// Collective. Checks that the file's tensors (names, shapes, order) are the optimizer's, reads this rank's
// spans, sets the step count and publishes the master weights into the model. A file that fails to read on any
// rank throws UnreadableCheckpoint on every rank, naming the file and the first tensor that differs.
void read_optimizer_state(const std::string& path, optim::ZeroOptimizer& optimizer);

// The trained weights of a checkpoint (its fp32 master weights), copied by name into MODULE's parameters
// (converted to their dtype and device): what evaluation and export load, on any number of ranks, without an
// optimizer. Every checkpoint tensor must be a parameter of MODULE with the same shape, and every trainable
// parameter of MODULE (requires_grad) must be in the checkpoint; errors name the file and the tensor. Returns the
// names loaded.
std::vector<std::string> load_trained_weights(const std::string& path, torch::nn::Module& module);

}  // namespace vesseltune::checkpoint
