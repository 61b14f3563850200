#pragma once
// The Sa2VA model a training config describes: its dimensions (a preset or a checkpoint's config.json, with the
// config's LoRA and SAM2 settings), built on a device in a dtype, with base weights loaded (or random weights
// drawn from the seed, identical on every rank), LoRA adapters added and Sa2VA's trainable set unfrozen.

#include <ATen/ATen.h>

#include <cstdint>

#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/model/sam2/sam2_config.h"
#include "vesseltune/train/parameter_count.h"
#include "vesseltune/train/train_config.h"

namespace vesseltune::train {

struct ModelShapes {
  model::Sa2VAConfig sa2va;
  model::sam2::Sam2Config sam2;
};

// Dimensions and training settings from the config (token ids are set later, from the tokenizer).
ModelShapes model_shapes(const TrainConfig& config);

// The device dtype for model.dtype: auto is bf16 on a GPU and fp32 on the CPU.
at::ScalarType model_dtype(const TrainConfig& config, at::Device device);

// Builds the model in SHAPES (token ids set), loads config.model.weights when given (errors name the file and
// the tensors), adds LoRA, sets what trains and activation checkpointing, and moves it to DEVICE and DTYPE.
model::Sa2VAModel build_model(const ModelShapes& shapes, const TrainConfig& config, at::Device device,
                              at::ScalarType dtype);

// Trainable and frozen parameters per top-level module, in registration order.
std::vector<ParameterCount> count_parameters(const torch::nn::Module& model);

}  // namespace vesseltune::train
