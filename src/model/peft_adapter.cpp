#include "vesseltune/model/peft_adapter.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "vesseltune/core/check.h"
#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/lora_linear.h"

namespace vesseltune::model {
namespace {

using nlohmann::json;

// Every LoraLinear of the model that has an adapter, with its key.
std::vector<std::pair<std::string, std::shared_ptr<LoraLinearImpl>>> adapted_layers(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, std::shared_ptr<LoraLinearImpl>>> found;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto layer = std::dynamic_pointer_cast<LoraLinearImpl>(item.value());
    if (layer && layer->has_lora()) found.emplace_back(item.key(), layer);
  }
  return found;
}

// PEFT matches a string target_modules with re.fullmatch against each module key: scope the adapters to
// `scope` so the SAM2 decoder's q_proj/k_proj/v_proj are not taken too.
std::string target_regex(const LoraConfig& config) {
  std::string names;
  for (const std::string& name : config.target_modules) names += (names.empty() ? "" : "|") + name;
  std::string scope;
  for (char c : config.scope) scope += c == '.' ? std::string("\\.") : std::string(1, c);
  return scope + ".*\\.(" + names + ")";
}

}  // namespace

void save_peft_adapter(const torch::nn::Module& model, const LoraConfig& config, const std::string& directory,
                       const std::string& base_model) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [key, layer] : adapted_layers(model)) {
    VT_CHECK(!layer->merged(), "save_peft_adapter: the adapter of ", key, " is merged; unmerge it first");
    tensors.emplace_back(kPeftKeyPrefix + key + ".lora_A.weight", layer->lora_A->weight.detach().cpu().contiguous());
    tensors.emplace_back(kPeftKeyPrefix + key + ".lora_B.weight", layer->lora_B->weight.detach().cpu().contiguous());
  }
  VT_CHECK(!tensors.empty(), "save_peft_adapter: the model has no LoRA adapter");
  std::filesystem::create_directories(directory);
  json cfg = {
      {"peft_type", "LORA"},
      {"task_type", nullptr},
      {"base_model_name_or_path", base_model.empty() ? json(nullptr) : json(base_model)},
      {"r", config.r},
      {"lora_alpha", config.alpha},
      {"lora_dropout", config.dropout},
      {"target_modules", config.scope.empty() ? json(config.target_modules) : json(target_regex(config))},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"use_rslora", false},
      {"use_dora", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"revision", nullptr},
  };
  const std::filesystem::path dir(directory);
  {
    std::ofstream out(dir / "adapter_config.json");
    VT_CHECK(out.good(), "save_peft_adapter: cannot write ", (dir / "adapter_config.json").string());
    out << cfg.dump(2) << "\n";
  }
  io::save_safetensors((dir / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
}

LoraConfig read_peft_config(const std::string& directory) {
  const std::string path = (std::filesystem::path(directory) / "adapter_config.json").string();
  std::ifstream in(path);
  VT_CHECK(in.good(), "cannot open ", path);
  LoraConfig config;
  try {
    const json cfg = json::parse(in);
    VT_CHECK(cfg.value("peft_type", "") == "LORA", path, ": peft_type must be LORA");
    VT_CHECK(!cfg.value("use_dora", false) && !cfg.value("use_rslora", false), path,
             ": DoRA and rsLoRA adapters are not supported");
    VT_CHECK(cfg.value("rank_pattern", json::object()).empty() && cfg.value("alpha_pattern", json::object()).empty(),
             path, ": per-layer rank_pattern / alpha_pattern are not supported");
    config.r = cfg.at("r").get<int64_t>();
    config.alpha = cfg.at("lora_alpha").get<double>();
    config.dropout = cfg.value("lora_dropout", 0.0);
    const json& targets = cfg.at("target_modules");
    if (targets.is_array()) {
      config.target_modules = targets.get<std::vector<std::string>>();
      config.scope.clear();
    } else {  // our regex form: <scope>.*\.(a|b|c)
      const std::string regex = targets.get<std::string>();
      const size_t open = regex.rfind("\\.("), close = regex.rfind(')');
      const size_t any = regex.find(".*");
      VT_CHECK(open != std::string::npos && close == regex.size() - 1 && any != std::string::npos, path,
               ": target_modules regex '", regex, "' is not of the form <scope>.*\\.(names)");
      config.target_modules.clear();
      std::string names = regex.substr(open + 3, close - open - 3);
      for (size_t start = 0; start <= names.size();) {
        size_t bar = std::min(names.find('|', start), names.size());
        config.target_modules.push_back(names.substr(start, bar - start));
        start = bar + 1;
      }
      config.scope.clear();
      const std::string scope = regex.substr(0, any);
      for (size_t i = 0; i < scope.size(); ++i) {
        if (scope[i] == '\\' && i + 1 < scope.size()) ++i;
        config.scope += scope[i];
      }
    }
  } catch (const json::exception& e) {
    VT_FAIL(path, ": malformed adapter config: ", e.what());
  }
  return config;
}

void load_peft_adapter(torch::nn::Module& model, const std::string& directory) {
  const LoraConfig config = read_peft_config(directory);
  const std::string path = (std::filesystem::path(directory) / "adapter_model.safetensors").string();
  io::SafetensorsFile file(path);
  std::set<std::string> unused;
  for (const io::TensorInfo& info : file.tensors()) unused.insert(info.name);
  std::vector<std::string> missing;
  torch::NoGradGuard no_grad;
  for (auto& [key, layer] : adapted_layers(model)) {
    VT_CHECK(layer->lora_settings().r == config.r && layer->lora_settings().alpha == config.alpha, path,
             ": adapter r ", config.r, " / alpha ", config.alpha, " differs from the model's layer ", key, " (r ",
             layer->lora_settings().r, ", alpha ", layer->lora_settings().alpha, ")");
    for (const char* part : {".lora_A.weight", ".lora_B.weight"}) {
      const std::string name = kPeftKeyPrefix + key + part;
      if (!file.contains(name)) {
        missing.push_back(name);
        continue;
      }
      at::Tensor& target = std::string(part) == ".lora_A.weight" ? layer->lora_A->weight : layer->lora_B->weight;
      at::Tensor source = file.tensor(name);
      VT_CHECK(source.sizes() == target.sizes(), path, ": ", name, " has shape ", source.sizes(), ", the model ",
               target.sizes());
      target.copy_(source.to(target.device(), target.scalar_type()));
      unused.erase(name);
    }
  }
  auto join = [](const auto& names) {
    std::string text;
    for (const std::string& n : names) text += (text.empty() ? "" : ", ") + n;
    return text;
  };
  VT_CHECK(missing.empty(), path, ": adapters missing from the file: ", join(missing));
  VT_CHECK(unused.empty(), path, ": tensors with no adapter in the model (apply_lora first?): ", join(unused));
}

}  // namespace vesseltune::model
