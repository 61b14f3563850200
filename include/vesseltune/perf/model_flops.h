#pragma once
// Model FLOPs of one Sa2VA training sample, for model FLOPs utilisation (MFU = model FLOPs per second / the card's
// measured bf16 matmul rate). Counted: 2 FLOPs per multiply-add of every matrix product the model needs — linear
// layers, convolutions, attention scores and attention-weighted values (full T², no causal discount, as PaLM and
// Megatron count). Not counted: elementwise work, norms, softmax, and recomputation for activation checkpointing
// (that is work the hardware does, not work the model needs). Per part:
//   frozen encoders whose input needs no gradient (InternViT, SAM2's image encoder): forward only;
//   the LLM: forward + input gradients through every layer (1× forward: embed_tokens and mlp1 train, so the
//     gradient reaches the first layer) + weight gradients of the LoRA adapters and lm_head (1× their forward);
//     lm_head only over the tokens with a label, the only logits the loss needs;
//   mlp1: forward + weight gradients + the input gradient of its second layer only;
//   SAM2's mask decoder (trainable): 3× forward.
// SAM2's decoder is counted from its large products (image-side attention projections, the upscaling and
// high-resolution convolutions); the rest of it is under 0.01 % of a sample.
#include <cstdint>
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::perf {

struct SampleFlops {
  double vision = 0;        // InternViT forward, all tiles
  double projector = 0;     // mlp1, forward + backward
  double llm = 0;           // Qwen2 with LoRA, forward + backward
  double sam2_encoder = 0;  // Hiera + FPN neck forward
  double sam2_decoder = 0;  // mask decoder, forward + backward
  double total() const { return vision + projector + llm + sam2_encoder + sam2_decoder; }
};

// TILES 448² tiles, TOKENS sequence length (image tokens included), LABELS tokens with a label.
SampleFlops training_flops_per_sample(const setup::ModelShapes& shapes, int64_t tiles, int64_t tokens, int64_t labels);

}  // namespace vesseltune::perf
