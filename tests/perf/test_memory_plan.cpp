// The memory plan against the things it predicts: its parameter list against built models (key, shape, order,
// trainability), its optimizer bytes against ZeroOptimizer::footprint() and the real FlatLayout, its peak
// estimate against the measured points of bench/NOTES.md, and advise() / choose_offload() on inputs built to
// need one specific change.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "vesseltune/model/lora.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/optim/zero_optimizer.h"
#include "vesseltune/perf/memory_plan.h"
#include "zero_test_model.h"

using namespace vesseltune;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

perf::PlanInputs inputs_for(const std::string& preset, const std::string& sam2) {
  perf::PlanInputs in;
  in.model = model::Sa2VAConfig::preset(preset);
  in.sam2 = model::sam2::sam2_preset(sam2);
  in.model.image_context_token_id = 1;
  in.model.seg_token_id = 2;
  return in;
}

model::Sa2VAModel build(const perf::PlanInputs& in) {
  torch::NoGradGuard no_grad;
  model::Sa2VAModel net(in.model, in.sam2);
  if (in.model.use_llm_lora) model::apply_lora(*net, in.model.lora);
  model::set_trainable(*net, in.model.trainable_modules);
  return net;
}

// The plan's list, key by key, and its per-module counts against the model's own parameters.
void expect_plan_matches(const perf::PlanInputs& in, const torch::nn::Module& net) {
  const auto planned = perf::plan_parameters(in);
  const auto actual = net.named_parameters(/*recurse=*/true);
  ASSERT_EQ(planned.size(), actual.size());
  std::vector<setup::ParameterCount> counts;
  for (size_t i = 0; i < planned.size(); ++i) {
    const auto& p = planned[i];
    const auto& a = actual[i];
    ASSERT_EQ(p.name, a.key()) << "parameter " << i;
    EXPECT_EQ(p.shape, a.value().sizes().vec()) << p.name;
    EXPECT_EQ(p.trainable, a.value().requires_grad()) << p.name;
    const std::string module = a.key().substr(0, a.key().find('.'));
    if (counts.empty() || counts.back().module != module) counts.push_back({module});
    (a.value().requires_grad() ? counts.back().trainable : counts.back().frozen) += a.value().numel();
  }
  const perf::MemoryPlan plan = perf::plan_memory(in);
  ASSERT_EQ(plan.modules.size(), counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_EQ(plan.modules[i].module, counts[i].module);
    EXPECT_EQ(plan.modules[i].trainable, counts[i].trainable) << counts[i].module;
    EXPECT_EQ(plan.modules[i].frozen, counts[i].frozen) << counts[i].module;
  }
}

}  // namespace

TEST(MemoryPlanParameters, TinyModelWithSa2VADefaults) {
  const auto in = inputs_for("tiny", "tiny");
  expect_plan_matches(in, *build(in));
}

// Every optional piece: RMSNorm + qk-norm ViT without qkv bias, tied embeddings (no lm_head), adapters in the
// ViT too (scope ""), a subset of targets, trainable decoder layers, no dropout; a full-size SAM2 trunk.
TEST(MemoryPlanParameters, TinyModelWithOtherSettings) {
  auto in = inputs_for("tiny", "hiera-tiny");
  in.model.vision.rms_norm = true;
  in.model.vision.qk_norm = true;
  in.model.vision.qkv_bias = false;
  in.model.llm.tie_word_embeddings = true;
  in.model.lora.scope = "";
  in.model.lora.target_modules = {"qkv", "fc2", "v_proj", "down_proj"};
  in.model.lora.dropout = 0;
  in.model.trainable_modules = {"language_model.model.layers.1", "mlp1", "grounding_encoder.sam2_model.sam_mask_decoder"};
  expect_plan_matches(in, *build(in));
}

TEST(MemoryPlanParameters, TinyModelWithoutLora) {
  auto in = inputs_for("tiny", "tiny");
  in.model.use_llm_lora = false;
  expect_plan_matches(in, *build(in));
}

// About 1.1 billion parameters in fp32 (4.5 GB): built once, on one rank only.
TEST(MemoryPlanParameters, Sa2VA1bWithHieraSmall) {
  if (world_size() > 1) GTEST_SKIP() << "rank-independent; runs at world size 1";
  const auto in = inputs_for("sa2va-1b", "hiera-small");
  expect_plan_matches(in, *build(in));
}

// The optimizer's buffers: the plan's bytes from the real optimizer's layout (F padded elements, S owned, H of
// them with their state on the host), and the whole footprint. On the CPU every buffer is host memory and there
// is no staging (the GPU path's pinned copies of the host part), so the footprint is the plan's device items plus
// host items minus 2·H·e.
class MemoryPlanOptimizer : public testing::TestWithParam<std::tuple<int, optim::OffloadDevice, double>> {};

TEST_P(MemoryPlanOptimizer, BytesMatchZeroOptimizerFootprint) {
  const auto [stage, offload, ratio] = GetParam();
  auto in = inputs_for("tiny", "tiny");
  in.world_size = world_size();
  in.zero.stage = stage;
  in.zero.offload = offload;
  in.zero.offload_ratio = ratio;
  in.zero.reduce_bucket_numel = 100'003;  // several buckets, each padded to the world size
  in.zero.optimizer_threads = 1;
  const int64_t e = 2;

  model::Sa2VAModel net(in.model, in.sam2);
  net->to(at::kBFloat16);
  if (in.model.use_llm_lora) model::apply_lora(*net, in.model.lora);
  model::set_trainable(*net, in.model.trainable_modules);
  // As setup::build_model has it: embed_tokens (untied) with sparse gradients, out of the flat gradient buffer.
  net->language_model->model->embed_tokens->options.sparse(model::sparse_embedding_gradient(in.model.llm));
  auto comm = testing_support::make_comm(comm::World::of(MPI_COMM_WORLD));
  optim::ZeroOptimizer optimizer(optim::trainable_parameters(*net), optim::default_param_groups(in.zero), in.zero, *comm);
  const int64_t flat = optimizer.layout().flat_numel(), shard = optimizer.layout().shard_numel();
  ASSERT_GT(optimizer.layout().buckets().size(), 2u);
  const bool cpu = offload == optim::OffloadDevice::cpu;
  const int64_t host = cpu ? std::llround(ratio * static_cast<double>(shard)) : 0;
  EXPECT_EQ(optimizer.host_state_numel(), host);

  const perf::MemoryPlan plan = perf::plan_memory(in);
  const int64_t sparse = optimizer.layout().buckets().back().numel;  // embed_tokens, reduced by rows
  ASSERT_TRUE(optimizer.layout().buckets().back().sparse_rows);
  EXPECT_EQ(plan.gradient_bytes, (stage >= 1 ? flat - sparse + shard : flat) * e);
  EXPECT_EQ(plan.optimizer_device_bytes, 12 * (shard - host));
  EXPECT_EQ(plan.host_bytes, 12 * host + 2 * host * e);
  int64_t frozen = 0;
  for (const auto& m : plan.modules) frozen += m.frozen;
  EXPECT_EQ(plan.weights_bytes, (frozen + flat) * e);

  const auto footprint = optimizer.footprint();
  const int64_t staging = 2 * host * e;
  EXPECT_EQ(footprint.device_bytes + footprint.host_bytes,
            plan.weights_bytes - frozen * e + plan.gradient_bytes + plan.optimizer_device_bytes + plan.host_bytes - staging);
}

INSTANTIATE_TEST_SUITE_P(StagesAndOffload, MemoryPlanOptimizer,
                         testing::Combine(testing::Values(0, 1, 2),
                                          testing::Values(optim::OffloadDevice::none, optim::OffloadDevice::cpu),
                                          testing::Values(1.0, 0.4)));

// bench/NOTES.md (H200, bf16, LoRA r128 alpha 256, batch 1, 56 text tokens, forward + backward, no
// optimizer). Without checkpointing the peak is at the start of the backward pass, which the plan's
// activation item models (autograd then holds only lm_head's gradient, as the plan's fresh-gradient term);
// with checkpointing it is at the end, when autograd holds every trainable gradient.
struct Measured {
  std::string preset, sam2;
  bool vision_language_half;
  int64_t tiles;
  bool checkpointing;
  double peak_gib;
};

class MemoryPlanCalibration : public testing::TestWithParam<Measured> {};

TEST_P(MemoryPlanCalibration, PeakWithinFifteenHundredthsOfAGiB) {
  const Measured m = GetParam();
  auto in = inputs_for(m.preset, m.sam2);
  in.tiles_per_sample = m.tiles;
  in.text_tokens = 56;
  in.model.lora.r = 128;
  in.model.activation_checkpointing = m.checkpointing;
  const perf::MemoryPlan plan = perf::plan_memory(in);
  int64_t trainable = 0;
  setup::ParameterCount sam2;
  for (const auto& module : plan.modules) {
    trainable += module.trainable;
    if (module.module == "grounding_encoder") sam2 = module;
  }
  int64_t predicted = plan.weights_bytes + plan.buffer_bytes + (m.checkpointing ? 2 * trainable : plan.activation_bytes);
  // The half has no SAM2 weights (nor its decoder's gradients); SAM2's activations are below the tolerance.
  if (m.vision_language_half) predicted -= 2 * (sam2.trainable + sam2.frozen) + (m.checkpointing ? 2 * sam2.trainable : 0);
  EXPECT_NEAR(static_cast<double>(predicted) / kGiB, m.peak_gib, 0.15) << m.preset << " " << m.tiles << " tiles";
}

INSTANTIATE_TEST_SUITE_P(
    BenchNotes, MemoryPlanCalibration,
    testing::Values(Measured{"sa2va-4b", "hiera-large", false, 1, false, 10.42},
                    Measured{"sa2va-4b", "hiera-large", false, 7, false, 19.31},
                    Measured{"sa2va-4b", "hiera-large", false, 1, true, 9.62},
                    Measured{"sa2va-4b", "hiera-large", false, 7, true, 9.64},
                    Measured{"sa2va-4b", "hiera-large", true, 1, false, 9.99},
                    Measured{"sa2va-4b", "hiera-large", true, 7, false, 18.89},
                    Measured{"sa2va-4b", "hiera-large", true, 1, true, 9.20},
                    Measured{"sa2va-4b", "hiera-large", true, 7, true, 9.23},
                    Measured{"sa2va-1b", "hiera-large", true, 1, false, 2.79},
                    Measured{"sa2va-1b", "hiera-large", true, 7, false, 5.53},
                    Measured{"sa2va-1b", "hiera-large", true, 1, true, 2.64},
                    Measured{"sa2va-1b", "hiera-large", true, 7, true, 2.66}));

TEST(MemoryPlanActivations, CheckpointingKeepsLessThanOneLayerPerLayer) {
  auto in = inputs_for("sa2va-4b", "hiera-large");
  const int64_t off = perf::plan_memory(in).activation_bytes;
  in.model.activation_checkpointing = true;
  const int64_t on = perf::plan_memory(in).activation_bytes;
  EXPECT_LT(on, off / 4);
  in.micro_batch = 2;
  EXPECT_GT(perf::plan_memory(in).activation_bytes, on);
}

// CUDA graphs keep the frozen encoders' working sets reserved. sa2va-4b + hiera-large, one 448² tile, bf16:
// InternViT-300M (hidden 1024, MLP 4096) on 1 + 32² tokens: 1025 · 2 B · (4·1024 + 2·4096) = 25,190,400 B;
// Hiera-L at 1024²: 16 stage-1 maps of 256² · 144 channels · 2 B = 301,989,888 B; the pools hold 3 times the
// transients (measured: 0.88 GiB more reserved with graphs, bench/NOTES.md).
TEST(MemoryPlanActivations, CudaGraphsReserveTheFrozenEncodersWorkingSets) {
  auto in = inputs_for("sa2va-4b", "hiera-large");
  in.tiles_per_sample = 1;
  ASSERT_EQ(in.model.vision.hidden_size, 1024);
  ASSERT_EQ(in.model.vision.intermediate_size, 4096);
  ASSERT_EQ(in.sam2.trunk.embed_dim, 144);
  ASSERT_EQ(in.sam2.image_size, 1024);
  const perf::MemoryPlan eager = perf::plan_memory(in);
  EXPECT_EQ(eager.graph_pool_bytes, 0);
  in.cuda_graphs = true;
  const perf::MemoryPlan graphed = perf::plan_memory(in);
  EXPECT_EQ(graphed.graph_pool_bytes, 3 * (25190400 + 301989888));
  // The transients leave the activation moments, so the total grows by less than the pools.
  EXPECT_LE(graphed.activation_bytes, eager.activation_bytes);
  EXPECT_GT(graphed.device_total_bytes, eager.device_total_bytes);
  EXPECT_LE(graphed.device_total_bytes - eager.device_total_bytes, graphed.graph_pool_bytes);
  // A trained SAM2 image encoder runs eagerly: only the ViT's pool is left.
  in.model.trainable_modules.push_back("grounding_encoder.sam2_model.image_encoder");
  EXPECT_EQ(perf::plan_memory(in).graph_pool_bytes, 3 * 25190400);
}

// With checkpointing, the decoder layers' graphs keep one layer's recompute + backward in their shared pool (as
// measured, memory_plan.cpp), and they add static buffers. sa2va-4b (H 2048, I 11008, 16 heads of 128, LoRA
// r 128 with dropout on all 7 linears), one tile + 64 text tokens = 320 tokens, bf16. Saved per token by one
// layer: norms 2·(4·2048 + 4) = 16,392; attention 4·2·2048 + 4·16 + 2·2·128 = 16,960; SwiGLU 3·2·11008 = 66,048;
// adapters (2·128 + 3·width each) on width 2048 ×6 = 38,400 and on 11008 ×1 = 33,280: 171,080 B, ×320 =
// 54,745,600; gradients 320·2·(3·11008 + 4·2048) = 26,378,240. Buffers: 4 · 320 · 2 · 2048 = 5,242,880, and one
// layer's LoRA gradients 2 · 6,651,904 elements.
TEST(MemoryPlanActivations, CudaGraphsOfCheckpointedLayersReserveOneLayersBackward) {
  auto in = inputs_for("sa2va-4b", "hiera-large");
  in.tiles_per_sample = 1;
  in.text_tokens = 64;
  in.model.activation_checkpointing = true;
  ASSERT_EQ(in.model.llm.hidden_size, 2048);
  ASSERT_EQ(in.model.llm.intermediate_size, 11008);
  ASSERT_EQ(in.model.llm.num_layers, 36);
  ASSERT_EQ(in.model.lora.r, 128);
  ASSERT_GT(in.model.lora.dropout, 0);
  in.cuda_graphs = true;
  const perf::MemoryPlan graphed = perf::plan_memory(in);
  const int64_t encoders = 25190400 + 301989888, layer = 54745600 + 26378240;
  EXPECT_EQ(graphed.graph_pool_bytes, 3 * encoders + layer + 5242880 + 2 * 6651904);
}

// sa2va-1b, 4 samples of 13 tiles (3392 tokens each) without checkpointing: ~36 GiB of activations. Only
// checkpointing is needed on a 24 GiB GPU (margin 1 + 1.2 GiB): it is the first and only suggestion.
TEST(MemoryPlanAdvice, CheckpointingFirstWhenItIsEnough) {
  auto in = inputs_for("sa2va-1b", "hiera-large");
  in.micro_batch = 4;
  in.tiles_per_sample = 13;
  const perf::MemoryPlan off = perf::plan_memory(in);
  EXPECT_GT(off.device_total_bytes / kGiB, 24 - perf::safety_margin_gib(24));
  const perf::FitAdvice advice = perf::advise(in, 24);
  EXPECT_TRUE(advice.fits);
  ASSERT_EQ(advice.suggestions.size(), 1u);
  EXPECT_EQ(advice.suggestions[0].rfind("model.activation_checkpointing: true (saves ", 0), 0u) << advice.suggestions[0];
  // Without checkpointing even offloading all of the state does not fit.
  EXPECT_EQ(perf::choose_offload(in, 24).device, optim::OffloadDevice::cpu);
  EXPECT_EQ(perf::choose_offload(in, 24).ratio, 1.0);
}

// sa2va-4b on one GPU with checkpointing: 878M trainable parameters, so the fp32 state is 3·4·878M = 9.8 GiB.
// Weights 7.8 + gradients 1.06 (the flat buffer, embed_tokens' rows apart) + 1.64 (the shard) + activations + slack
// ≈ 11.6 GiB without it: fits 20 GiB (18 usable) only with offload, or with the state split over 2 GPUs.
TEST(MemoryPlanAdvice, OffloadWhenOnlyOffloadFits) {
  auto in = inputs_for("sa2va-4b", "hiera-large");
  in.model.activation_checkpointing = true;
  in.zero.offload = optim::OffloadDevice::none;
  const perf::MemoryPlan plan = perf::plan_memory(in);
  EXPECT_NEAR(plan.optimizer_device_bytes / kGiB, 12.0 * 878e6 / kGiB, 0.05);
  // 20 GiB: a part of the state on the host is enough; the chosen ratio fits and 0.05 less does not.
  const perf::OffloadChoice choice = perf::choose_offload(in, 20);
  EXPECT_EQ(choice.device, optim::OffloadDevice::cpu);
  EXPECT_LT(choice.ratio, 1.0);
  auto with_ratio = [&](double ratio) {
    auto trial = in;
    trial.zero.offload = optim::OffloadDevice::cpu;
    trial.zero.offload_ratio = ratio;
    return perf::plan_memory(trial).device_total_bytes / kGiB;
  };
  const double usable = 20 - perf::safety_margin_gib(20);
  EXPECT_LE(with_ratio(choice.ratio), usable);
  if (choice.ratio > 0.05) {
    EXPECT_GT(with_ratio(choice.ratio - 0.05), usable);
  }
  EXPECT_EQ(perf::choose_offload(in, 80).device, optim::OffloadDevice::none);
  const perf::FitAdvice advice = perf::advise(in, 20);
  EXPECT_TRUE(advice.fits);
  ASSERT_EQ(advice.suggestions.size(), 2u);
  EXPECT_EQ(advice.suggestions[0].rfind("zero.offload_optimizer: cpu (saves ", 0), 0u) << advice.suggestions[0];
  EXPECT_EQ(advice.suggestions[1].rfind("more GPUs (world size 2, zero.stage: 2) instead of", 0), 0u)
      << advice.suggestions[1];
  EXPECT_TRUE(perf::advise(in, 80).suggestions.empty());
}

// sa2va-4b, 2 samples of 7 tiles, stage 0, everything on a 12 GiB GPU (10.4 GiB usable): weights 7.8 and
// gradients 1.6 GiB leave ~0.8 GiB for activations, so checkpointing, offload, micro-batch 1 and fewer tiles
// are all needed, in that order; stage 2 saves nothing on one GPU and is left out.
TEST(MemoryPlanAdvice, SuggestionsInOrder) {
  auto in = inputs_for("sa2va-4b", "hiera-large");
  in.micro_batch = 2;
  in.zero.stage = 0;
  const perf::FitAdvice advice = perf::advise(in, 12);
  const std::vector<std::string> keys = {"model.activation_checkpointing: true", "zero.offload_optimizer: cpu",
                                         "train.micro_batch: 1", "data.max_tiles: "};
  ASSERT_GE(advice.suggestions.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(advice.suggestions[i].rfind(keys[i], 0), 0u) << advice.suggestions[i];
  }
  EXPECT_TRUE(advice.fits);
}

// sa2va-4b, checkpointing on, 14 GiB (12.3 usable): offloading fits (~10.8 GiB); keeping the 11.4 GiB of
// fp32 state and gradient shard on the GPUs instead needs it split 8 ways (1.4 GiB each).
TEST(MemoryPlanAdvice, MoreGpusAsTheAlternativeToOffload) {
  auto in = inputs_for("sa2va-4b", "hiera-large");
  in.model.activation_checkpointing = true;
  const perf::FitAdvice advice = perf::advise(in, 14);
  ASSERT_EQ(advice.suggestions.size(), 2u);
  EXPECT_EQ(advice.suggestions[0].rfind("zero.offload_optimizer: cpu (saves ", 0), 0u) << advice.suggestions[0];
  EXPECT_EQ(advice.suggestions[1].rfind("more GPUs (world size 8, zero.stage: 2) instead of", 0), 0u)
      << advice.suggestions[1];
  // Nothing fits 8 GiB: the weights alone are 7.8 GiB.
  EXPECT_FALSE(perf::advise(in, 8).fits);
}

TEST(MemoryPlanFormat, OneLinePerModuleAndItem) {
  auto in = inputs_for("sa2va-4b", "hiera-large");
  in.world_size = 4;
  in.zero.stage = 2;
  in.zero.offload = optim::OffloadDevice::cpu;
  in.model.activation_checkpointing = true;
  const std::string text = perf::format_plan(perf::plan_memory(in), in);
  std::printf("%s", text.c_str());
  for (const char* item : {"vision_model", "mlp1", "language_model", "text_hidden_fcs", "grounding_encoder", "weights",
                           "gradients", "optimizer state", "activations", "device total", "pinned host"}) {
    EXPECT_NE(text.find(item), std::string::npos) << item;
  }
  auto small = inputs_for("sa2va-1b", "hiera-large");
  std::printf("%s", perf::format_plan(perf::plan_memory(small), small).c_str());
}

TEST(MemoryPlanInputs, OutOfRangeTilesNameTheSetting) {
  auto in = inputs_for("tiny", "tiny");
  in.tiles_per_sample = 14;
  try {
    perf::plan_memory(in);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("14 tiles per sample, expected 1 .. 13"), std::string::npos) << e.what();
  }
}
