#include "vesseltune/perf/model_flops.h"

#include <algorithm>

namespace vesseltune::perf {
namespace {

// 2 FLOPs per multiply-add of an [m, k] × [k, n] product.
double matmul(double m, double k, double n) { return 2.0 * m * k * n; }

double intern_vit_forward(const model::VisionConfig& v) {
  const double patches = static_cast<double>(v.patches_per_side() * v.patches_per_side());
  const double n = patches + 1;  // + the class token
  const double d = static_cast<double>(v.hidden_size), f = static_cast<double>(v.intermediate_size);
  const double patch_embed = matmul(patches, 3.0 * v.patch_size * v.patch_size, d);
  const double per_layer = matmul(n, d, 3 * d) + matmul(n, d, d)  // qkv, proj
                           + 2 * matmul(n, d, n)                  // scores, weighted values
                           + matmul(n, d, f) + matmul(n, f, d);   // MLP
  return patch_embed + per_layer * static_cast<double>(v.num_layers);
}

double hiera_forward(const model::sam2::Sam2Config& c) {
  const auto& t = c.trunk;
  const double side = static_cast<double>(c.image_size) / 4;  // patch embedding: 7×7 convolution, stride 4
  double tokens = side * side, dim = static_cast<double>(t.embed_dim);
  double flops = matmul(tokens, 3 * 7 * 7, dim);
  const std::vector<int64_t> ends = t.stage_ends();
  size_t stage = 0;
  for (int64_t i = 0; i < t.num_blocks(); ++i) {
    const bool global = std::find(t.global_att_blocks.begin(), t.global_att_blocks.end(), i) != t.global_att_blocks.end();
    const double window = static_cast<double>(t.window_spec[stage]);
    double dim_out = dim, tokens_out = tokens;
    if (i > 0 && i - 1 == ends[stage]) {
      dim_out = 2 * dim;
      if (static_cast<int64_t>(stage) < t.q_pool) tokens_out = tokens / static_cast<double>(t.q_stride * t.q_stride);
      flops += matmul(tokens, dim, dim_out);  // residual projection
      ++stage;
    }
    const double keys = global ? tokens : window * window;  // per query
    flops += matmul(tokens, dim, 3 * dim_out)                // qkv on the unpooled tokens
             + 2 * matmul(tokens_out, dim_out, keys)         // scores, weighted values
             + matmul(tokens_out, dim_out, dim_out)          // proj
             + 2 * matmul(tokens_out, dim_out, t.mlp_ratio * dim_out);
    tokens = tokens_out;
    dim = dim_out;
  }
  // FPN neck: a 1×1 convolution from each stage to d_model.
  double level_tokens = side * side;
  for (const int64_t stage_dim : t.stage_dims()) {
    flops += matmul(level_tokens, static_cast<double>(stage_dim), static_cast<double>(c.d_model));
    level_tokens /= 4;
  }
  return flops;
}

double mask_decoder_forward(const model::sam2::Sam2Config& c) {
  const double d = static_cast<double>(c.d_model), inner = d / static_cast<double>(c.attention_downsample_rate);
  const double e = static_cast<double>(c.image_embedding_size());
  const double image = e * e;
  // Token→image attention reads keys and values projected from every image position (decoder_depth blocks +
  // the final one); image→token attention projects queries and outputs at every image position.
  const double depth = static_cast<double>(c.decoder_depth);
  const double attention = (depth + 1) * 2 * matmul(image, d, inner) + depth * 2 * matmul(image, d, inner);
  // Upscaling: two 2×2 transposed convolutions (d → d/4 at 2e, d/4 → d/8 at 4e); high-resolution features:
  // 1×1 convolutions of the FPN's 4e and 2e levels to d/8 and d/4.
  const double upscale = matmul(4 * image, d, d / 4) + matmul(16 * image, d / 4, d / 8);
  const double high_res = matmul(16 * image, d, d / 8) + matmul(4 * image, d, d / 4);
  return attention + upscale + high_res;
}

}  // namespace

SampleFlops training_flops_per_sample(const setup::ModelShapes& shapes, int64_t tiles, int64_t tokens, int64_t labels) {
  const model::Sa2VAConfig& m = shapes.sa2va;
  const model::LlmConfig& l = m.llm;
  SampleFlops f;
  const double n_tiles = static_cast<double>(tiles), t = static_cast<double>(tokens);
  f.vision = n_tiles * intern_vit_forward(m.vision);

  const double image_tokens = n_tiles * static_cast<double>(m.image_tokens_per_tile());
  const double shuffled = static_cast<double>(m.shuffled_vision_size()), h = static_cast<double>(l.hidden_size);
  const double first = matmul(image_tokens, shuffled, h), second = matmul(image_tokens, h, h);
  f.projector = (first + second)       // forward
                + (first + second)     // weight gradients
                + second;              // input gradient of the second layer

  const double kv = static_cast<double>(l.num_kv_heads * l.head_dim()), ffn = static_cast<double>(l.intermediate_size);
  // (in, out) of the seven projections of a decoder layer: q, k, v, o, gate, up, down.
  const double shapes_in_out[7][2] = {{h, h}, {h, kv}, {h, kv}, {h, h}, {h, ffn}, {h, ffn}, {ffn, h}};
  double base = 0, lora = 0;
  for (const auto& io : shapes_in_out) {
    base += matmul(t, io[0], io[1]);
    if (m.use_llm_lora) lora += matmul(t, io[0], static_cast<double>(m.lora.r)) + matmul(t, static_cast<double>(m.lora.r), io[1]);
  }
  const double layers = static_cast<double>(l.num_layers);
  const double attention = 2 * matmul(t, h, t);
  const double lm_head = matmul(static_cast<double>(labels), h, static_cast<double>(l.vocab_size));
  const double forward = layers * (base + lora + attention) + lm_head;
  const double backward = layers * (base + 2 * lora + 2 * attention)  // input gradients (+ LoRA weight gradients)
                          + 2 * lm_head;                              // lm_head input and weight gradients
  f.llm = forward + backward;

  f.sam2_encoder = hiera_forward(shapes.sam2);
  f.sam2_decoder = 3 * mask_decoder_forward(shapes.sam2);
  return f;
}

}  // namespace vesseltune::perf
