#pragma once
// Greedy decoding of the language model from prompt embeddings, as transformers' generate(do_sample=False) runs it
// for Sa2VA's predict_forward: each step appends the most likely token of every unfinished sample. Prompts of a batch
// are left-padded; each sample's positions count its own tokens only, and padding is never attended to. With the KV
// cache each step runs the new position alone; without it every step runs the whole sequence again (a reference).

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "vesseltune/model/qwen2.h"

namespace vesseltune::model {

struct GreedyOptions {
  int64_t max_new_tokens = 2048;  // Sa2VA's default
  bool use_cache = true;
  std::vector<int64_t> stop_token_ids;  // EOS and friends: generating one ends the sample (and is kept)
  // Called after each token of a sample with its tokens so far; true ends the sample (stop words that span tokens).
  std::function<bool(const std::vector<int64_t>& tokens)> stop;
};

struct GreedyOutput {
  std::vector<std::vector<int64_t>> tokens;  // per sample: the generated ids, the stopping one included
  // [B, steps, H]: final hidden state (after the final norm) of the position each step ran last: step 0 the
  // prompt's last position, step j the position fed with generated token j - 1.
  at::Tensor step_hidden;
  // Final hidden state of the position fed with generated token J of SAMPLE; undefined when J was never fed (the
  // last token of a sample cut off by max_new_tokens).
  at::Tensor hidden_after(int64_t sample, int64_t j) const;
};

// prompt_embeds [B, T, H] in the model's dtype; prompt_valid [B, T] bool, false at left padding (undefined: none).
GreedyOutput greedy_generate(Qwen2ForCausalLMImpl& lm, const at::Tensor& prompt_embeds, const at::Tensor& prompt_valid,
                             const GreedyOptions& options);

}  // namespace vesseltune::model
