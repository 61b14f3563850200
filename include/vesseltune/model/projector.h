#pragma once
// InternVL's bridge from the vision encoder to the LLM: the CLS token is dropped, the patch grid is
// pixel-shuffled (each 2×2 block of patches becomes one token of 4× the width: 32×32×1024 → 16×16×4096,
// 256 tokens per 448 tile) and "mlp1" = Sequential(LayerNorm, Linear, GELU, Linear) maps it to the LLM width.

#include <torch/nn/modules/container/sequential.h>

#include <string>

namespace vesseltune::model {

// vit_hidden [tiles, 1 + h·w, C] (CLS first, square grid) → [tiles, h·w·scale², C / scale²].
// version "v2" is InternVL's current layout; "v1" leaves out its final transpose.
at::Tensor pixel_shuffle(const at::Tensor& vit_hidden, double scale, const std::string& version);

// mlp1.0 LayerNorm(vision_size) · mlp1.1 Linear(vision_size, llm_size) · mlp1.2 GELU · mlp1.3 Linear(llm, llm)
torch::nn::Sequential make_mlp1(int64_t shuffled_vision_size, int64_t llm_hidden_size);

}  // namespace vesseltune::model
