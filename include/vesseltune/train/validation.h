#pragma once
// Validation during training: the model on the validation split (no augmentation, teacher-forced default
// prompt "... [SEG]."), each prediction resized to the image's native size as Sa2VA does
// (sam2::probabilities_from_logits: bilinear to the SAM2 input size, then to the image's, then the sigmoid), and
// the per-image Dice of src/metrics (vesseltune-eval's: same threshold rule, same counts) averaged over images:
// inside the field of view (how vessel papers report it) and over the full image. Ranks split the images and sum
// their totals.

#include <ATen/ATen.h>

#include <cstdint>

#include "vesseltune/comm/communicator.h"
#include "vesseltune/data/loader.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/setup/batch_encoder.h"

namespace vesseltune::train {

struct ValidationResult {
  double dice_fov = 0;   // mean per-image Dice inside the FOV
  double dice_full = 0;  // mean per-image Dice over the whole image
  double loss_mask = 0;  // mean over batches
  double loss_dice = 0;
  int64_t samples = 0;   // images over all ranks
};

// Collective over COMM's ranks (a host all-reduce of the totals). LOADER must give full-resolution masks (ModelInputOptions::full_resolution) and keep
// every sample (SamplerOptions::drop_remainder false); its epoch 0 is read from the start.
ValidationResult validate(model::Sa2VAModel& model, data::DataLoader& loader, const setup::BatchEncoder& encoder,
                          at::Device device, at::ScalarType dtype, comm::Communicator& comm);

}  // namespace vesseltune::train
