#include "vesseltune/train/validation.h"

#include <torch/torch.h>

#include <cmath>

#include "vesseltune/core/fault_injection.h"
#include "vesseltune/core/check.h"
#include "vesseltune/metrics/vessel_metrics.h"
#include "vesseltune/model/sam2/grounding_encoder.h"

namespace vesseltune::train {

namespace {

// vesseltune-eval's Dice (the same counts, the same threshold rule) of one image within REGION.
double dice(const at::Tensor& probability, const at::Tensor& truth, const at::Tensor& region) {
  const metrics::RegionCounts counts =
      metrics::confusion_counts(probability, truth, region, metrics::kDefaultThreshold);
  return metrics::metrics_from_counts(counts, std::nan(""))[metrics::Metric::dice];
}

}  // namespace

ValidationResult validate(model::Sa2VAModel& model, data::DataLoader& loader, const setup::BatchEncoder& encoder,
                          at::Device device, at::ScalarType dtype, comm::Communicator& comm) {
  torch::NoGradGuard no_grad;
  model->eval();
  // Sums over this rank's images and batches: dice_fov, dice_full, loss_mask, loss_dice, images, batches.
  std::vector<double> totals(6, 0.0);
  const int64_t sam_size = model->grounding_encoder->sam2_model()->config().image_size;
  loader.start({0, 0});
  while (std::optional<data::Batch> batch = loader.next()) {
    VT_CHECK(batch->full_masks.size() == static_cast<size_t>(batch->size()),
             "validation: the loader must return full-resolution masks");
    const model::Sa2VAStepOutput out = model->forward(encoder.encode(*batch, device, dtype, false).inputs);
    for (int64_t i = 0; i < batch->size(); ++i) {
      const at::Tensor& truth = batch->full_masks[i];
      const at::Tensor probability = model::sam2::probabilities_from_logits(out.mask_logits.slice(0, i, i + 1),
                                                                           sam_size, truth.size(0), truth.size(1))[0];
      totals[0] += dice(probability, truth, batch->full_fovs[i]);
      totals[1] += dice(probability, truth, at::Tensor());
    }
    totals[2] += out.loss_mask.item<double>();
    totals[3] += out.loss_dice.item<double>();
    totals[4] += static_cast<double>(batch->size());
    totals[5] += 1;
    fault::point("validation", comm.rank());
  }
  model->train();
  comm.all_reduce_host(totals, comm::Communicator::Reduction::sum, "validation totals");
  VT_CHECK(totals[4] > 0, "validation: the validation split is empty");
  ValidationResult result;
  result.dice_fov = totals[0] / totals[4];
  result.dice_full = totals[1] / totals[4];
  result.loss_mask = totals[2] / totals[5];
  result.loss_dice = totals[3] / totals[5];
  result.samples = static_cast<int64_t>(totals[4]);
  return result;
}

}  // namespace vesseltune::train
