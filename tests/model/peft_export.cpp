// peft_export FIXTURE OUT_DIR: the input of tests/fixtures/check_peft_adapter.py, which loads vesseltune's
// PEFT files with Python's peft. Loads the Qwen2 weights of FIXTURE (llm_parity.safetensors) into the
// vision-language model, adds random LoRA adapters (r 8, alpha 16), and writes
//   OUT_DIR/adapter/{adapter_config.json, adapter_model.safetensors}   (save_peft_adapter)
//   OUT_DIR/expected.safetensors   input_ids, attention_mask and the logits with the adapters applied
#include <torch/torch.h>

#include <cstdio>

#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/peft_adapter.h"
#include "vesseltune/model/sa2va_vision_language.h"

using namespace vesseltune;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: peft_export FIXTURE OUT_DIR\n");
    return 2;
  }
  try {
    const std::string fixture = argv[1], out = argv[2];
    io::SafetensorsFile file(fixture);
    model::Sa2VAConfig config = model::Sa2VAConfig::from_json_text(file.metadata().at("config"), fixture);
    config.image_context_token_id = 290;
    config.seg_token_id = 291;
    config.lora.r = 8;
    config.lora.alpha = 16;
    torch::manual_seed(5);
    model::Sa2VAVisionLanguage net(config);
    io::LoadOptions options;
    options.strict = false;  // the fixture holds the LLM only
    io::load_into(*net, io::Checkpoint(fixture), options);
    model::apply_lora(*net, config.lora);
    torch::NoGradGuard no_grad;
    for (auto& p : net->named_parameters()) {
      if (p.key().find(".lora_") != std::string::npos) p.value().normal_(0.0, 0.05);
    }
    net->eval();
    const at::Tensor ids = file.tensor("input.input_ids"), mask = file.tensor("input.attention_mask");
    const at::Tensor logits = net->language_model->logits(net->language_model->model(net->language_model->embed(ids), mask));
    model::save_peft_adapter(*net, config.lora, out + "/adapter", "vesseltune-llm-parity");
    io::save_safetensors(out + "/expected.safetensors",
                         {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits.contiguous()}});
    std::printf("peft_export: adapter and expected logits %s written to %s\n",
                c10::str(logits.sizes()).c_str(), out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "peft_export: %s\n", e.what());
    return 1;
  }
  return 0;
}
