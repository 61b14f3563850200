// Per-GPU memory plan. Everything is derived from the configuration; nothing is allocated.
//
// Parameters (exact). plan_parameters() lists every parameter the model code registers, with its shape, in
// named_parameters() order (intern_vit.cpp, projector.cpp, qwen2.cpp, sa2va_vision_language.cpp, sam2/*.cpp;
// a module's own parameters come before its children's). The list becomes a tree of meta tensors so that
// model::set_trainable and optim::trainable_parameters decide trainability and parameter groups exactly as for
// the real model; which LoraLinear layers get an adapter follows model::apply_lora's rule (scope prefix and
// last key component). test_memory_plan compares the list with built models key by key.
//
// Optimizer (exact, e = 2 bytes in bf16, 4 in fp32). optim::FlatLayout is built from the trainable tensors,
// giving the padded flat size F and this rank's shard S; ZeroOptimizer then allocates (zero_optimizer.cpp):
//   device: flat parameters F·e (the trainable weights live there), flat gradients F·e, reduced shard S·e
//           (stage >= 1), fp32 master + exp_avg + exp_avg_sq 3·(S-H)·4
//   host:   3·H·4 and the pinned staging of gradients and parameters 2·H·e (twice with zero.delayed_update),
//           where H is the offloaded part of the shard: 0 (offload none), S (offload cpu), or offload_ratio·S
// There are no separate communication buckets: buckets are views of the flat buffers.
//
// Activations (an estimate). Per micro-step, with b samples of t tiles: N = b·t tiles, M = b·(256·t + text)
// tokens. Autograd keeps a tensor only where a gradient needs it, so frozen layers without LoRA record nothing
// (the frozen ViT and SAM2 image encoder leave only forward transients). Saved per token and decoder layer
// without checkpointing (H hidden, I intermediate, r LoRA rank, bool dropout masks):
//   RMSNorms 2·(4H + 4)   (fp32 copy of the input and 1/rms; frozen weights need nothing else)
//   attention 4eH + 4·heads + 2e·head_dim   (q, k, v repeated to all heads, output, log-sum-exp, RoPE tables;
//             an upper bound where the attention kernel shares the KV heads)
//   SwiGLU 3eI   (silu input and both factors of the product)
//   per LoRA layer with input width d: e·r + (1 + e)·d with dropout (mask and dropped input), else e·r plus
//   the layer's input once per distinct input (normed, attention output, normed, product)
// With checkpointing a layer keeps only its input (eH per token) and one layer is recomputed at a time.
// mlp1 (trainable) keeps e·(2·4096 + 2H) per image token. SAM2: 16·(S/4)²·C₁·e forward transient per image,
// 9·(S/16)²·d·e saved in the mask decoder per prompt (one [SEG] per sample assumed).
// With model.cuda_graphs the frozen ViT's and SAM2 image encoder's transients live in the graphs' pools instead,
// reserved for the whole run (graph_pool_bytes), and leave the moments below; with checkpointing the decoder
// layers' graphs add their pools (graph_pool_bytes), and the sequence is padded to kGraphTokenBucket tokens.
// The peak is the largest of these moments of a micro-step, each on top of weights and the flat buffers:
//   ViT forward transient | LLM saved + SAM2 image encoder | start of backward: LLM saved + decoder saved +
//   the fresh gradient of the largest trainable tensor (lm_head [V, H], before it is added into the flat
//   buffer) | checkpointed recompute: layer inputs + one layer | end: the fresh gradient of the largest tensor
//   (embed_tokens when tied; untied it trains with sparse rows, a few MB).
// Calibration: bench/NOTES.md, H200, bf16, LoRA r128, batch 1, text 56 tokens, forward + backward without an
// optimizer (autograd holds .grad, so the moment that peaks differs from training). Without checkpointing the
// measured peak is weights + the start-of-backward moment; with it, weights + every trainable gradient (the
// end of backward). The predictions are within 0.11 GiB of the measured peaks (bench/NOTES.md, "Memory plan
// calibration").
// kSlackBytes (in buffer_bytes) is what the modelled tensors leave unexplained there (cuBLAS / attention
// workspaces, allocator rounding). Not measured: the ZeRO moments (the fresh gradients on top of the flat buffer, the
// recompute transients), a trainable ViT (estimated as if every layer input were saved), micro-batches above 1,
// NCCL's own buffers (left to the safety margin).
#include "vesseltune/perf/memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "memory_plan_parts.h"
#include "vesseltune/core/check.h"
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::perf {

namespace plan {

void check_inputs(const PlanInputs& in) {
  in.model.validate();
  in.zero.validate();
  VT_CHECK(in.world_size >= 1, "memory plan: world size must be >= 1, got ", in.world_size);
  VT_CHECK(in.micro_batch >= 1, "memory plan: train.micro_batch must be >= 1, got ", in.micro_batch);
  const int64_t most = in.model.max_dynamic_patch + (in.model.use_thumbnail ? 1 : 0);
  VT_CHECK(in.tiles_per_sample >= 1 && in.tiles_per_sample <= most, "memory plan: ", in.tiles_per_sample,
           " tiles per sample, expected 1 .. ", most, " (max_dynamic_patch ", in.model.max_dynamic_patch,
           in.model.use_thumbnail ? " + thumbnail)" : ")");
  VT_CHECK(in.text_tokens >= 0, "memory plan: text_tokens must be >= 0, got ", in.text_tokens);
}

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / kGiB);
  return text;
}

}  // namespace plan

namespace {

using plan::check_inputs;
using plan::gib;
using plan::kGiB;
using plan::list_parameters;
using plan::ParameterList;
using plan::Parameters;
// Workspaces and allocator rounding seen in every measured peak beyond the modelled tensors (see top).
constexpr int64_t kSlackBytes = static_cast<int64_t>(0.20 * kGiB);
// SAM2 calibration (bench/NOTES.md, hiera-large alone: 1 image × 1 prompt 0.70 GiB, 2 × 5 prompts 1.15 GiB):
// image-encoder transient in stage-1 feature maps per image, decoder saved tensors in d_model maps per prompt.
constexpr int64_t kSam2EncoderMaps = 16;
constexpr int64_t kSam2DecoderMaps = 9;

// ---------------------------------------------------------------------------------------------------------
// Activations.

bool has_prefix(const std::string& key, const std::string& prefix) { return key.compare(0, prefix.size(), prefix) == 0; }

// What the activation estimate needs to know of the parameter list.
struct TrainableParts {
  bool vision = false;         // any vision_model parameter trains (not Sa2VA's recipe)
  bool mlp1 = false;
  bool llm_base = false;       // a decoder layer's own weights train (full fine-tuning of the layers)
  bool sam2_encoder = false;   // SAM2's image encoder trains (model.extra_trainable)
  int64_t lm_head_numel = 0;   // trainable lm_head (the first fresh gradient of the backward pass), else 0
  int64_t largest_numel = 0;   // largest trainable tensor with a dense gradient (a tied embed_tokens: the last
                               // fresh gradient)
  int64_t llm_layer_numel = 0; // trainable elements of one decoder layer (layer 0: they are all alike)
};

TrainableParts trainable_parts(const std::vector<PlannedParameter>& params) {
  TrainableParts parts;
  for (const auto& p : params) {
    if (!p.trainable) continue;
    const bool lora = p.name.find(".lora_") != std::string::npos;
    parts.vision |= has_prefix(p.name, "vision_model.");
    parts.mlp1 |= has_prefix(p.name, "mlp1.");
    parts.sam2_encoder |= has_prefix(p.name, "grounding_encoder.sam2_model.image_encoder.");
    parts.llm_base |= has_prefix(p.name, "language_model.model.layers.") && !lora;
    if (has_prefix(p.name, "language_model.model.layers.0.")) parts.llm_layer_numel += p.numel();
    if (has_prefix(p.name, "language_model.lm_head.")) parts.lm_head_numel = p.numel();
    if (!p.sparse_rows) parts.largest_numel = std::max(parts.largest_numel, p.numel());
  }
  return parts;
}

// Bytes saved per token by one Qwen2 decoder layer without checkpointing (formula at the top).
int64_t llm_layer_bytes_per_token(const PlanInputs& in, const ParameterList& list, const TrainableParts& parts,
                                  int64_t e) {
  const model::LlmConfig& l = in.model.llm;
  const int64_t h = l.hidden_size, inter = l.intermediate_size, r = in.model.lora.r;
  const bool dropout = in.model.lora.dropout > 0;
  int64_t bytes = 2 * (4 * h + 4) + 4 * e * h + 4 * l.num_heads + 2 * e * l.head_dim() + 3 * e * inter;
  if (parts.llm_base) bytes += 2 * e * h;  // normed inputs, for the norm weights' gradients
  struct Input {
    int64_t width;
    std::vector<std::string> linears;
  };
  const std::vector<Input> inputs = {{h, {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}},
                                     {h, {"self_attn.o_proj"}},
                                     {h, {"mlp.gate_proj", "mlp.up_proj"}},
                                     {inter, {"mlp.down_proj"}}};
  for (const Input& input : inputs) {
    int64_t adapters = 0;
    for (const std::string& name : input.linears) adapters += list.has_adapter("language_model.model.layers.0." + name);
    // The shared input is kept once by trainable base weights or by dropout-free adapters' lora_A.
    if (parts.llm_base || (adapters > 0 && !dropout)) bytes += e * input.width;
    bytes += adapters * (e * r + (dropout ? (1 + e) * input.width : 0));
  }
  return bytes;
}

bool graphed_vit(const PlanInputs& in, const TrainableParts& parts) { return in.cuda_graphs && !parts.vision; }
bool graphed_sam2_encoder(const PlanInputs& in, const TrainableParts& parts) {
  return in.cuda_graphs && !parts.sam2_encoder;
}
bool graphed_llm(const PlanInputs& in) { return in.cuda_graphs && in.model.activation_checkpointing; }

// Tokens through the LLM per micro-step: image tokens of every tile and the text (padded for graphed layers).
int64_t llm_tokens(const PlanInputs& in) {
  const int64_t tokens = in.tiles_per_sample * in.model.image_tokens_per_tile() + in.text_tokens;
  return in.micro_batch * (graphed_llm(in) ? model::graphed_token_count(tokens) : tokens);
}

// A frozen ViT only passes through: one layer's working set (residual, branch, MLP hidden twice).
int64_t vit_transient_bytes(const PlanInputs& in) {
  const model::VisionConfig& v = in.model.vision;
  const int64_t vit_tokens = in.micro_batch * in.tiles_per_sample * (1 + v.patches_per_side() * v.patches_per_side());
  return vit_tokens * (in.bf16 ? 2 : 4) * (4 * v.hidden_size + 2 * v.intermediate_size);
}

int64_t sam2_encoder_transient_bytes(const PlanInputs& in) {
  const model::sam2::Sam2Config& s = in.sam2;
  const int64_t stage1 = (s.image_size / 4) * (s.image_size / 4) * s.trunk.embed_dim;
  return in.micro_batch * kSam2EncoderMaps * stage1 * (in.bf16 ? 2 : 4);
}

// Gradients of a few [tokens, I] tensors in the backward pass of one recomputed layer, beyond its saved tensors.
int64_t recompute_gradient_bytes(const PlanInputs& in) {
  const model::LlmConfig& l = in.model.llm;
  return llm_tokens(in) * (in.bf16 ? 2 : 4) * (3 * l.intermediate_size + 4 * l.hidden_size);
}

// The CUDA graphs' private pools keep working sets reserved for the whole run. Measured on one H200 (sa2va-4b +
// hiera-large, one tile, bench/NOTES.md): the frozen encoders' graphs grew the reserved peak by 0.88 GiB against
// 0.30 GiB of transients, hence the factor 3. The checkpointed decoder layers' graphs (forward and recompute +
// backward of each of 36 layers) are captured on one stream into one pool and reuse each other's blocks: their pool
// holds about one layer's recompute + backward (the reserved peak +0.06 GiB over eager checkpointing, whose
// recomputation needed the same). Those graphs also share static buffers outside the pool: input, output and their
// gradients, and one layer's parameter gradients.
constexpr int64_t kGraphPoolPerTransient = 3;
int64_t graph_pool_bytes(const PlanInputs& in, const ParameterList& list, const TrainableParts& parts) {
  const int64_t e = in.bf16 ? 2 : 4;
  const int64_t encoders = (graphed_vit(in, parts) ? vit_transient_bytes(in) : 0) +
                           (graphed_sam2_encoder(in, parts) ? sam2_encoder_transient_bytes(in) : 0);
  int64_t layers = 0;
  if (graphed_llm(in)) {
    const int64_t tokens = llm_tokens(in);
    const int64_t layer = tokens * llm_layer_bytes_per_token(in, list, parts, e) + recompute_gradient_bytes(in);
    layers = layer + 4 * tokens * e * in.model.llm.hidden_size + e * parts.llm_layer_numel;
  }
  return kGraphPoolPerTransient * encoders + layers;
}

int64_t activation_bytes(const PlanInputs& in, const ParameterList& list, const TrainableParts& parts) {
  const int64_t e = in.bf16 ? 2 : 4;
  const model::Sa2VAConfig& m = in.model;
  const model::VisionConfig& v = m.vision;
  const bool checkpointing = m.activation_checkpointing;
  const int64_t tiles = in.micro_batch * in.tiles_per_sample;
  const int64_t vit_tokens = tiles * (1 + v.patches_per_side() * v.patches_per_side());
  const int64_t image_tokens = tiles * m.image_tokens_per_tile();
  const int64_t tokens = llm_tokens(in);
  const int64_t h = m.llm.hidden_size;

  // One layer's saved tensors, and what stays for all layers until the backward pass.
  const int64_t llm_layer = tokens * llm_layer_bytes_per_token(in, list, parts, e);
  const int64_t vit_layer = parts.vision ? vit_tokens * e * (11 * v.hidden_size + 2 * v.intermediate_size) : 0;
  const int64_t layer_inputs = m.llm.num_layers * tokens * e * h +
                               (parts.vision ? v.num_layers * vit_tokens * e * v.hidden_size : 0);
  const int64_t kept = checkpointing ? layer_inputs : m.llm.num_layers * llm_layer + v.num_layers * vit_layer;
  const int64_t mlp1 = parts.mlp1 || parts.vision ? image_tokens * e * (2 * m.shuffled_vision_size() + 2 * h) : 0;

  const int64_t vit_transient = vit_transient_bytes(in);
  const int64_t sam2_encoder = sam2_encoder_transient_bytes(in);
  const model::sam2::Sam2Config& s = in.sam2;
  const int64_t embedding = s.image_embedding_size() * s.image_embedding_size() * s.d_model;
  const int64_t sam2_decoder = in.micro_batch * kSam2DecoderMaps * embedding * e;
  // Backward of one recomputed layer: its saved tensors plus gradients of a few [tokens, I] tensors. (Graphed
  // decoder layers do that in their pool, but each shape's first sighting runs eagerly, so it stays here.)
  const int64_t recompute = std::max(llm_layer, vit_layer) + recompute_gradient_bytes(in);

  // Graphed frozen encoders keep their transients in the graphs' pools (graph_pool_bytes), outside these moments.
  int64_t peak = graphed_vit(in, parts) ? 0 : vit_transient;
  peak = std::max(peak, kept + mlp1 + (graphed_sam2_encoder(in, parts) ? 0 : sam2_encoder));
  peak = std::max(peak, kept + mlp1 + sam2_decoder + e * parts.lm_head_numel);
  if (checkpointing) peak = std::max(peak, layer_inputs + mlp1 + sam2_decoder + recompute);
  peak = std::max(peak, e * parts.largest_numel);
  return peak;
}

// ---------------------------------------------------------------------------------------------------------
}  // namespace


int64_t PlannedParameter::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<PlannedParameter> plan_parameters(const PlanInputs& in) {
  check_inputs(in);
  ParameterList list(in);
  return list_parameters(in, list).all;
}

MemoryPlan plan_memory(const PlanInputs& in) {
  check_inputs(in);
  ParameterList list(in);
  const Parameters params = list_parameters(in, list);

  MemoryPlan plan;
  int64_t frozen = 0;
  for (const auto& p : params.all) {
    const std::string module = p.name.substr(0, p.name.find('.'));
    if (plan.modules.empty() || plan.modules.back().module != module) plan.modules.push_back({module});
    (p.trainable ? plan.modules.back().trainable : plan.modules.back().frozen) += p.numel();
    if (!p.trainable) frozen += p.numel();
  }

  // Rank 0's shard: every rank owns the same number of elements of every padded bucket.
  const optim::FlatLayout layout(params.trainable, in.zero.reduce_bucket_numel, in.world_size, 0, in.zero.stage >= 1);
  const int64_t e = in.bf16 ? 2 : 4, flat = layout.flat_numel(), shard = layout.shard_numel();
  const int64_t host = in.zero.host_state_numel(shard);  // elements whose state and staging are on the host
  plan.weights_bytes = (frozen + flat) * e;
  plan.gradient_bytes = (layout.gradient_numel() + (in.zero.stage >= 1 ? shard : 0)) * e;
  plan.optimizer_device_bytes = 3 * (shard - host) * 4;
  plan.host_bytes = 3 * host * 4 + (in.zero.delayed_update ? 2 : 1) * 2 * host * e;  // a delayed update: 2 stagings
  const TrainableParts parts = trainable_parts(params.all);
  plan.activation_bytes = activation_bytes(in, list, parts);
  plan.graph_pool_bytes = graph_pool_bytes(in, list, parts);
  plan.buffer_bytes = kSlackBytes;
  plan.device_total_bytes = plan.weights_bytes + plan.gradient_bytes + plan.optimizer_device_bytes +
                            plan.activation_bytes + plan.graph_pool_bytes + plan.buffer_bytes;
  return plan;
}

std::string format_plan(const MemoryPlan& plan, const PlanInputs& in) {
  const int64_t tokens = in.tiles_per_sample * in.model.image_tokens_per_tile() + in.text_tokens;
  std::string out;
  std::string offload = optim::to_string(in.zero.offload);
  if (in.zero.offload == optim::OffloadDevice::cpu && in.zero.offload_ratio != 1.0) {
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, " (ratio %.2f)", in.zero.offload_ratio);
    offload += ratio;
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "memory plan per GPU: %d GPU(s), ZeRO stage %d, offload %s, %s, micro-batch %lld x %lld tiles "
                "(%lld tokens), LoRA %s, activation checkpointing %s\n",
                in.world_size, in.zero.stage, offload.c_str(), in.bf16 ? "bf16" : "fp32",
                static_cast<long long>(in.micro_batch), static_cast<long long>(in.tiles_per_sample),
                static_cast<long long>(tokens),
                in.model.use_llm_lora ? ("r" + std::to_string(in.model.lora.r)).c_str() : "off",
                in.model.activation_checkpointing ? "on" : "off");
  out += line;
  out += setup::format_parameter_counts(plan.modules);
  const std::vector<std::pair<const char*, int64_t>> items = {
      {"weights", plan.weights_bytes},
      {"gradients", plan.gradient_bytes},
      {"optimizer state", plan.optimizer_device_bytes},
      {"activations (est.)", plan.activation_bytes},
      {"CUDA graph pools", plan.graph_pool_bytes},
      {"workspace slack", plan.buffer_bytes},
      {"device total", plan.device_total_bytes},
      {"pinned host", plan.host_bytes}};
  for (const auto& [name, bytes] : items) {
    std::snprintf(line, sizeof line, "  %-20s %14s\n", name, gib(bytes).c_str());
    out += line;
  }
  return out;
}

PlanInputs memory_plan_inputs(const setup::TrainConfig& config, int world_size) {
  const setup::ModelShapes shapes = setup::model_shapes(config);
  PlanInputs in;
  in.model = shapes.sa2va;
  in.sam2 = shapes.sam2;
  in.world_size = world_size;
  in.micro_batch = config.train.micro_batch;
  in.tiles_per_sample = config.data.max_tiles + (shapes.sa2va.use_thumbnail && config.data.max_tiles > 1 ? 1 : 0);
  in.zero = config.zero_config();
  in.bf16 = config.model.dtype != "fp32";
  in.cuda_graphs = config.model.cuda_graphs;  // the plan is for GPUs
  return in;
}

}  // namespace vesseltune::perf
