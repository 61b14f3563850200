#pragma once
// The Sa2VA model a training config describes: its dimensions (a preset or a checkpoint's config.json, with the
// config's LoRA and SAM2 settings), built on a device in a dtype, with base weights loaded (or random weights
// drawn from the seed, identical on every rank), LoRA adapters added and Sa2VA's trainable set unfrozen.

#include <ATen/ATen.h>

#include <cstdint>

#include "vesseltune/data/model_inputs.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/model/sam2/sam2_config.h"
#include "vesseltune/text/tokenizer.h"
#include "vesseltune/setup/parameter_count.h"
#include "vesseltune/setup/train_config.h"

namespace vesseltune::setup {

struct ModelShapes {
  model::Sa2VAConfig sa2va;
  model::sam2::Sam2Config sam2;
};

// Dimensions and training settings from the config, without token ids (enough for plans and FLOPs).
ModelShapes model_shapes(const TrainConfig& config);

// The run's tokenizer: model.tokenizer with Sa2VA's tokens added where missing. Refuses one with more ids than the
// model's vocabulary (naming the file and both sizes).
text::Tokenizer run_tokenizer(const TrainConfig& config);

// model_shapes(CONFIG) with the ids of <IMG_CONTEXT> and [SEG] in TOKENIZER: what the model and its BatchEncoder must
// agree on, settled before either is built.
ModelShapes model_shapes(const TrainConfig& config, const text::Tokenizer& tokenizer);

// The device dtype for model.dtype: auto is bf16 on a GPU and fp32 on the CPU.
at::ScalarType model_dtype(const TrainConfig& config, at::Device device);

// Builds the model in SHAPES (token ids set), loads config.model.weights when given (errors name the file and
// the tensors), adds LoRA, sets what trains and activation checkpointing, and moves it to DEVICE and DTYPE.
model::Sa2VAModel build_model(const ModelShapes& shapes, const TrainConfig& config, at::Device device,
                              at::ScalarType dtype);

// The image branches' sizes and tiling for SHAPES (what every loader and encoder of this model makes).
data::ModelInputOptions model_input_options(const TrainConfig& config, const ModelShapes& shapes);

// Trainable and frozen parameters per top-level module, in registration order.
std::vector<ParameterCount> count_parameters(const torch::nn::Module& model);

}  // namespace vesseltune::setup
