#pragma once
// Shapes of SAM2's image path (Hiera trunk, FPN neck, prompt encoder, mask decoder), named as in SAM2's
// configs (sam2_hiera_{t,s,b+,l}.yaml). Sa2VA uses hiera-large at 1024×1024.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vesseltune::model::sam2 {

struct HieraConfig {
  int64_t embed_dim = 144;  // stage-1 width; doubles at each stage change (dim_mul 2)
  int64_t num_heads = 2;    // stage-1 heads; doubles at each stage change (head_mul 2)
  std::vector<int64_t> stages = {2, 6, 36, 4};               // blocks per stage
  std::vector<int64_t> global_att_blocks = {23, 33, 43};     // block indices with global attention
  std::vector<int64_t> window_spec = {8, 4, 16, 8};          // window size per stage
  std::array<int64_t, 2> window_pos_embed_bkg_spatial_size = {7, 7};
  int64_t q_pool = 3;       // stage changes with query pooling
  int64_t q_stride = 2;
  double mlp_ratio = 4.0;

  int64_t num_blocks() const;
  // Index of the last block of each stage.
  std::vector<int64_t> stage_ends() const;
  // Output channels per stage, stage 1 first.
  std::vector<int64_t> stage_dims() const;
};

struct Sam2Config {
  HieraConfig trunk;
  int64_t d_model = 256;  // FPN width = prompt and mask-decoder width
  std::vector<int64_t> fpn_top_down_levels = {2, 3};  // levels that receive the top-down (nearest ×2) path
  int64_t scalp = 1;                                  // lowest-resolution FPN levels dropped
  int64_t image_size = 1024;
  int64_t backbone_stride = 16;  // stride of the image embedding the decoder attends to
  int64_t mask_in_chans = 16;    // prompt encoder's mask_downscaling width (mask prompts: unused by Sa2VA)
  int64_t decoder_depth = 2;     // TwoWayTransformer blocks
  int64_t decoder_heads = 8;
  int64_t decoder_mlp_dim = 2048;
  int64_t attention_downsample_rate = 2;
  int64_t num_multimask_outputs = 3;
  int64_t iou_head_depth = 3;
  int64_t iou_head_hidden_dim = 256;
  bool iou_prediction_use_sigmoid = true;

  int64_t image_embedding_size() const { return image_size / backbone_stride; }
  int64_t low_res_mask_size() const { return 4 * image_embedding_size(); }  // 256 at 1024
};

// "hiera-large" (Sa2VA), "hiera-base+", "hiera-small", "hiera-tiny", and "tiny" (a 128-pixel model for tests,
// with windows that need padding, global blocks in two stages and a 32-wide decoder).
Sam2Config sam2_preset(const std::string& name);

}  // namespace vesseltune::model::sam2
