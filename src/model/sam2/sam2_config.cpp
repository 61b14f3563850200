#include "vesseltune/model/sam2/sam2_config.h"

#include <numeric>

#include "vesseltune/core/check.h"

namespace vesseltune::model::sam2 {

int64_t HieraConfig::num_blocks() const { return std::accumulate(stages.begin(), stages.end(), int64_t{0}); }

std::vector<int64_t> HieraConfig::stage_ends() const {
  std::vector<int64_t> ends;
  int64_t end = -1;
  for (int64_t blocks : stages) {
    end += blocks;
    ends.push_back(end);
  }
  return ends;
}

std::vector<int64_t> HieraConfig::stage_dims() const {
  std::vector<int64_t> dims;
  for (size_t i = 0; i < stages.size(); ++i) dims.push_back(embed_dim << i);
  return dims;
}

Sam2Config sam2_preset(const std::string& name) {
  Sam2Config config;  // defaults: hiera-large
  HieraConfig& trunk = config.trunk;
  if (name == "hiera-large") {
    return config;
  }
  if (name == "hiera-base+") {
    trunk.embed_dim = 112;
    trunk.num_heads = 2;
    trunk.stages = {2, 3, 16, 3};
    trunk.global_att_blocks = {12, 16, 20};
    trunk.window_spec = {8, 4, 14, 7};
    trunk.window_pos_embed_bkg_spatial_size = {14, 14};
    return config;
  }
  if (name == "hiera-small" || name == "hiera-tiny") {
    trunk.embed_dim = 96;
    trunk.num_heads = 1;
    trunk.stages = name == "hiera-small" ? std::vector<int64_t>{1, 2, 11, 2} : std::vector<int64_t>{1, 2, 7, 2};
    trunk.global_att_blocks = name == "hiera-small" ? std::vector<int64_t>{7, 10, 13} : std::vector<int64_t>{5, 7, 9};
    trunk.window_spec = {8, 4, 14, 7};
    trunk.window_pos_embed_bkg_spatial_size = {7, 7};
    return config;
  }
  if (name == "tiny") {
    trunk.embed_dim = 8;
    trunk.num_heads = 1;
    trunk.stages = {1, 2, 2, 2};
    trunk.global_att_blocks = {2, 4};
    trunk.window_spec = {8, 4, 4, 3};  // stage 4 (4×4 tokens) in 3×3 windows: padded
    trunk.window_pos_embed_bkg_spatial_size = {7, 7};
    config.d_model = 32;
    config.image_size = 128;
    config.decoder_heads = 4;
    config.decoder_mlp_dim = 64;
    config.iou_head_hidden_dim = 32;
    return config;
  }
  VT_FAIL("unknown SAM2 preset '", name, "' (hiera-large, hiera-base+, hiera-small, hiera-tiny, tiny)");
}

}  // namespace vesseltune::model::sam2
