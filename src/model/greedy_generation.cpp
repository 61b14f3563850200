#include "vesseltune/model/greedy_generation.h"

#include <algorithm>

#include "vesseltune/core/check.h"

namespace vesseltune::model {
namespace {

// Which positions the new ones [FIRST, FIRST + COUNT) see: valid keys up to themselves, and always themselves (so a
// padding position still has a key and yields numbers instead of NaN, which its neighbours never read).
AttentionMask generation_mask(const at::Tensor& key_valid, int64_t first, int64_t count) {
  const int64_t keys = first + count;
  const auto index = at::TensorOptions().dtype(at::kLong).device(key_valid.device());
  const at::Tensor q = at::arange(first, keys, index).unsqueeze(1), k = at::arange(keys, index).unsqueeze(0);
  const at::Tensor visible = at::logical_and((k <= q).unsqueeze(0), key_valid.narrow(1, 0, keys).unsqueeze(1));
  return {at::logical_or(visible, (k == q).unsqueeze(0)).unsqueeze(1)};
}

// RoPE values at POSITIONS [B, T] from the tables [capacity, d] → [B, 1, T, d].
at::Tensor at_positions(const at::Tensor& table, const at::Tensor& positions) {
  return table.index_select(0, positions.reshape(-1)).view({positions.size(0), 1, positions.size(1), -1});
}

// The decoding state of one generate call: the rotary tables, which keys are real, and the cache.
class Decoder {
 public:
  Decoder(Qwen2ForCausalLMImpl& lm, const at::Tensor& embeds, const at::Tensor& valid, const GreedyOptions& options)
      : lm_(lm), padded_(!valid.all().item<bool>()), use_cache_(options.use_cache) {
    const LlmConfig& config = lm.config();
    const int64_t batch = embeds.size(0), capacity = embeds.size(1) + options.max_new_tokens;
    std::tie(cos_, sin_) = rope_tables(capacity, config.head_dim(), config.rope_theta, embeds.device());
    key_valid_ = at::zeros({batch, capacity}, valid.options());
    key_valid_.narrow(1, 0, embeds.size(1)).copy_(valid);
    if (use_cache_) cache_ = lm.model->make_cache(batch, capacity, embeds.scalar_type(), embeds.device());
  }

  // Runs the new positions EMBEDS [B, T, H] at POSITIONS [B, T]; returns the final hidden state of the last one.
  at::Tensor step(const at::Tensor& embeds, const at::Tensor& positions) {
    const int64_t first = length_, count = embeds.size(1);
    if (first > 0) key_valid_.narrow(1, first, count).fill_(true);  // generated tokens (the prompt's were set)
    length_ += count;
    if (!use_cache_) {  // the whole sequence again, through a fresh cache
      sequence_ = sequence_.defined() ? at::cat({sequence_, embeds}, 1) : embeds;
      positions_ = positions_.defined() ? at::cat({positions_, positions}, 1) : positions;
      std::vector<LayerCache> fresh =
          lm_.model->make_cache(embeds.size(0), length_, embeds.scalar_type(), embeds.device());
      return run(sequence_, positions_, 0, fresh);
    }
    return run(embeds, positions, first, cache_);
  }

 private:
  at::Tensor run(const at::Tensor& embeds, const at::Tensor& positions, int64_t first, std::vector<LayerCache>& cache) {
    const AttentionMask mask = padded_ ? generation_mask(key_valid_, first, embeds.size(1)) : AttentionMask{};
    at::Tensor hidden = lm_.model->forward_cached(embeds, at_positions(cos_, positions), at_positions(sin_, positions),
                                                  mask, cache);
    return hidden.select(1, -1);
  }

  Qwen2ForCausalLMImpl& lm_;
  bool padded_, use_cache_;
  at::Tensor cos_, sin_, key_valid_, sequence_, positions_;
  std::vector<LayerCache> cache_;
  int64_t length_ = 0;
};

}  // namespace

at::Tensor GreedyOutput::hidden_after(int64_t sample, int64_t j) const {
  return j + 1 < step_hidden.size(1) ? step_hidden[sample][j + 1] : at::Tensor();
}

GreedyOutput greedy_generate(Qwen2ForCausalLMImpl& lm, const at::Tensor& prompt_embeds, const at::Tensor& prompt_valid,
                             const GreedyOptions& options) {
  VT_CHECK(prompt_embeds.dim() == 3 && prompt_embeds.size(1) > 0, "generate: prompt embeddings must be [batch, tokens, "
           "hidden], got ", prompt_embeds.sizes());
  VT_CHECK(options.max_new_tokens > 0, "generate: max_new_tokens must be positive, got ", options.max_new_tokens);
  const int64_t batch = prompt_embeds.size(0);
  const at::Tensor valid = prompt_valid.defined()
                               ? prompt_valid.to(at::kBool)
                               : at::ones({batch, prompt_embeds.size(1)}, prompt_embeds.options().dtype(at::kBool));
  VT_CHECK(valid.sizes() == prompt_embeds.sizes().slice(0, 2), "generate: prompt mask ", valid.sizes(),
           " for embeddings ", prompt_embeds.sizes());
  Decoder decoder(lm, prompt_embeds, valid, options);
  at::Tensor next_position = valid.sum(1, /*keepdim=*/true);  // [B, 1]: each sample's own token count
  at::Tensor hidden = decoder.step(prompt_embeds, (valid.cumsum(1) - 1).clamp_min(0));

  GreedyOutput out;
  out.tokens.resize(static_cast<size_t>(batch));
  std::vector<bool> finished(static_cast<size_t>(batch), false);
  std::vector<at::Tensor> hiddens;
  for (int64_t step = 0;; ++step) {
    hiddens.push_back(hidden);
    const at::Tensor next = lm.logits(hidden).argmax(-1);  // [B]; first maximum on ties, as torch.argmax
    const at::Tensor ids = next.to(at::kCPU);
    for (int64_t b = 0; b < batch; ++b) {
      if (finished[b]) continue;
      std::vector<int64_t>& tokens = out.tokens[static_cast<size_t>(b)];
      tokens.push_back(ids[b].item<int64_t>());
      const auto& stops = options.stop_token_ids;
      finished[b] = std::find(stops.begin(), stops.end(), tokens.back()) != stops.end() ||
                    (options.stop && options.stop(tokens));
    }
    if (step + 1 == options.max_new_tokens || std::all_of(finished.begin(), finished.end(), [](bool f) { return f; })) {
      break;
    }
    hidden = decoder.step(lm.embed(next.unsqueeze(1)), next_position + step);
  }
  out.step_hidden = at::stack(hiddens, 1);
  return out;
}

}  // namespace vesseltune::model
