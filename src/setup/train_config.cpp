#include "vesseltune/setup/train_config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/optim/deepspeed_config.h"

namespace vesseltune::setup {

namespace fs = std::filesystem;
namespace {

// The one list of keys: reading, writing and the unknown-key check all go through it.
template <class Config, class Visitor>
void visit_fields(Config& c, Visitor&& v) {
  v("model.preset", c.model.preset);
  v("model.config_json", c.model.config_json);
  v("model.weights", c.model.weights);
  v("model.tokenizer", c.model.tokenizer);
  v("model.sam2_preset", c.model.sam2_preset);
  v("model.sam2_image_size", c.model.sam2_image_size);
  v("model.lora.r", c.model.lora_r);
  v("model.lora.alpha", c.model.lora_alpha);
  v("model.lora.dropout", c.model.lora_dropout);
  v("model.activation_checkpointing", c.model.activation_checkpointing);
  v("model.cuda_graphs", c.model.cuda_graphs);
  v("model.extra_trainable", c.model.extra_trainable);
  v("model.object_score_gate", c.model.object_score_gate);
  v("model.dtype", c.model.dtype);

  v("loss.mask_weight", c.loss.mask_weight);
  v("loss.dice_weight", c.loss.dice_weight);
  v("loss.num_points", c.loss.num_points);
  v("loss.dense", c.loss.dense);
  v("loss.cldice_weight", c.loss.cldice_weight);
  v("loss.inside_fov", c.loss.inside_fov);

  v("data.path", c.data.path);
  v("data.train_split", c.data.train_split);
  v("data.val_split", c.data.val_split);
  v("data.repeats", c.data.repeats);
  v("data.min_tiles", c.data.min_tiles);
  v("data.max_tiles", c.data.max_tiles);
  v("data.workers", c.data.workers);
  v("data.prefetch_batches", c.data.prefetch_batches);
  v("data.augment.enabled", c.data.augment.enabled);
  v("data.augment.flip_probability", c.data.augment.flip_probability);
  v("data.augment.rotate90", c.data.augment.rotate90);
  v("data.augment.affine_probability", c.data.augment.affine_probability);
  v("data.augment.max_rotation_degrees", c.data.augment.max_rotation_degrees);
  v("data.augment.max_scale_change", c.data.augment.max_scale_change);
  v("data.augment.photometric_probability", c.data.augment.photometric_probability);
  v("data.augment.max_brightness", c.data.augment.max_brightness);
  v("data.augment.max_contrast", c.data.augment.max_contrast);
  v("data.augment.max_gamma", c.data.augment.max_gamma);
  v("data.augment.clahe_probability", c.data.augment.clahe_probability);
  v("data.augment.clahe_clip_limit", c.data.augment.clahe_clip_limit);
  v("data.augment.clahe_tiles", c.data.augment.clahe_tiles);

  v("train.epochs", c.train.epochs);
  v("train.max_steps", c.train.max_steps);
  v("train.micro_batch", c.train.micro_batch);
  v("train.accumulation", c.train.accumulation);
  v("train.lr", c.train.lr);
  v("train.warmup_ratio", c.train.warmup_ratio);
  v("train.min_lr", c.train.min_lr);
  v("train.weight_decay", c.train.weight_decay);
  v("train.beta1", c.train.beta1);
  v("train.beta2", c.train.beta2);
  v("train.eps", c.train.eps);
  v("train.clip_grad", c.train.clip_grad);
  v("train.seed", c.train.seed);
  v("train.log_interval", c.train.log_interval);
  v("train.val_interval", c.train.val_interval);
  v("train.save_steps", c.train.save_steps);
  v("train.save_total_limit", c.train.save_total_limit);
  v("train.max_nonfinite_steps", c.train.max_nonfinite_steps);
  v("train.deepspeed", c.train.deepspeed);

  v("zero.stage", c.zero.stage);
  v("zero.offload_optimizer", c.zero.offload_optimizer);
  v("zero.offload_ratio", c.zero.offload_ratio);
  v("zero.delayed_update", c.zero.delayed_update);
  v("zero.delayed_update_warmup", c.zero.delayed_update_warmup);
  v("zero.bucket_numel", c.zero.bucket_numel);
  v("zero.optimizer_threads", c.zero.optimizer_threads);

  v("runtime.backend", c.runtime.backend);
  v("runtime.collective_timeout_s", c.runtime.collective_timeout_s);
  v("runtime.work_dir", c.runtime.work_dir);
}

// Leaves of a YAML tree by dotted path ("train.lr" → node). Null values (an empty section) are no leaves.
void flatten(const YAML::Node& node, const std::string& path, std::map<std::string, YAML::Node>& leaves,
             const std::string& origin) {
  if (node.IsNull()) return;
  if (node.IsMap()) {
    for (const auto& item : node) {
      const std::string key = item.first.as<std::string>();
      flatten(item.second, path.empty() ? key : path + "." + key, leaves, origin);
    }
    return;
  }
  VT_CHECK(!path.empty(), origin, ": the top level must be a map of sections (model, loss, data, train, zero, runtime)");
  VT_CHECK(node.IsScalar(), origin, ": key '", path, "' must be a single value, not a list");
  leaves[path] = node;
}

// The keys whose values are files or folders (see the header).
bool is_path_key(const std::string& key) {
  static const std::set<std::string> keys = {"model.config_json", "model.weights",   "model.tokenizer",
                                             "data.path",         "train.deepspeed", "runtime.work_dir"};
  return keys.count(key) > 0;
}

bool is_override(const std::string& source) { return source.rfind("--set ", 0) == 0; }

// PATH made absolute against FOLDER (empty: the working directory); empty stays empty (not set).
std::string absolute_path(const std::string& path, const std::string& folder) {
  if (path.empty()) return path;
  const fs::path base = folder.empty() ? fs::current_path() : fs::path(folder);
  return (fs::path(path).is_absolute() ? fs::path(path) : base / path).lexically_normal().string();
}

std::string format_value(const std::string& value) { return value; }
std::string format_value(bool value) { return value ? "true" : "false"; }
template <class T>
std::string format_value(T value) {
  if constexpr (std::is_floating_point_v<T>) {
    char text[64];
    const auto end = std::to_chars(text, text + sizeof(text), value).ptr;  // shortest exact form
    std::string result(text, end);
    // Keep floats recognisable as floats when read back (1 → 1.0); 1e-05 is fine as it is.
    if (result.find_first_of(".eE") == std::string::npos && result.find_first_of("ni") == std::string::npos) {
      result += ".0";
    }
    return result;
  } else {
    return std::to_string(value);
  }
}

}  // namespace

TrainConfig TrainConfig::load(const std::string& file, const std::vector<std::string>& overrides) {
  std::ifstream in(file);
  VT_CHECK(in.good(), "cannot open training config ", file);
  std::stringstream text;
  text << in.rdbuf();
  return from_yaml_text(text.str(), file, overrides, fs::absolute(file).parent_path().string());
}

TrainConfig TrainConfig::from_yaml_text(const std::string& text, const std::string& origin,
                                        const std::vector<std::string>& overrides, const std::string& text_folder) {
  std::map<std::string, YAML::Node> leaves;
  try {
    flatten(YAML::Load(text), "", leaves, origin);
  } catch (const YAML::Exception& e) {
    VT_FAIL(origin, ": not valid YAML: ", e.what());
  }
  std::map<std::string, std::string> sources;  // where each leaf came from, for messages
  for (const auto& [key, node] : leaves) sources[key] = origin;
  for (const auto& item : overrides) {
    const auto equals = item.find('=');
    VT_CHECK(equals != std::string::npos && equals > 0, "--set ", item, ": expected key=value (e.g. train.lr=2e-4)");
    const std::string key = item.substr(0, equals);
    try {
      leaves[key] = YAML::Load(item.substr(equals + 1));
    } catch (const YAML::Exception& e) {
      VT_FAIL("--set ", item, ": the value is not valid YAML: ", e.what());
    }
    sources[key] = "--set " + item;
  }

  TrainConfig config;
  visit_fields(config, [&](const std::string& key, auto& field) {
    const auto leaf = leaves.find(key);
    using T = std::decay_t<decltype(field)>;
    if (leaf == leaves.end()) {  // the default: a path relative to the working directory
      if constexpr (std::is_same_v<T, std::string>) {
        if (is_path_key(key)) field = absolute_path(field, "");
      }
      return;
    }
    try {
      VT_CHECK(leaf->second.IsScalar(), sources[key], ": key '", key, "' must be a single value");
      field = leaf->second.template as<T>();
      if constexpr (std::is_same_v<T, std::string>) {
        if (is_path_key(key)) field = absolute_path(field, is_override(sources[key]) ? "" : text_folder);
      }
    } catch (const YAML::Exception&) {
      VT_FAIL(sources[key], ": key '", key, "' has value '", leaf->second.Scalar(), "', which is not ",
              std::is_same_v<T, bool> ? "true or false" : std::is_same_v<T, std::string> ? "text"
              : std::is_floating_point_v<T> ? "a number" : "an integer");
    }
    leaves.erase(leaf);
  });
  if (!leaves.empty()) {
    const std::string& key = leaves.begin()->first;
    VT_FAIL(sources[key], ": unknown key '", key, "' (configs/tiny_vessel.yaml lists every key)");
  }
  config.validate();
  return config;
}

std::string TrainConfig::to_yaml() const {
  // The keys come section by section, so nested maps open and close as the dotted paths change.
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::vector<std::string> open;  // the map path currently open
  visit_fields(*this, [&](const std::string& key, const auto& field) {
    std::vector<std::string> parts;
    for (std::string::size_type start = 0;;) {
      const auto dot = key.find('.', start);
      parts.push_back(key.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) ++common;
    for (size_t i = open.size(); i > common; --i) out << YAML::EndMap;
    open.resize(common);
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      out << YAML::Key << parts[i] << YAML::Value << YAML::BeginMap;
      open.push_back(parts[i]);
    }
    out << YAML::Key << parts.back() << YAML::Value << format_value(field);
  });
  for (size_t i = 0; i < open.size(); ++i) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

TrainConfig TrainConfig::with_deepspeed(int world_size) const {
  TrainConfig c = *this;
  if (c.train.deepspeed.empty()) return c;
  optim::TrainingDefaults defaults;
  defaults.micro_batch_per_gpu = static_cast<int>(c.train.micro_batch);
  defaults.gradient_accumulation_steps = static_cast<int>(c.train.accumulation);
  defaults.gradient_clipping = c.train.clip_grad;
  defaults.lr = c.train.lr;
  defaults.beta1 = c.train.beta1;
  defaults.beta2 = c.train.beta2;
  defaults.eps = c.train.eps;
  defaults.weight_decay = c.train.weight_decay;
  defaults.world_size = world_size;
  const optim::DeepSpeedSettings ds = optim::load_deepspeed_config(c.train.deepspeed, defaults);
  for (const auto& note : ds.notes) VT_LOG(info) << note;
  c.train.micro_batch = ds.micro_batch_per_gpu;
  c.train.accumulation = ds.gradient_accumulation_steps;
  c.train.lr = ds.lr;
  c.train.clip_grad = ds.zero.gradient_clipping;
  c.train.beta1 = ds.zero.beta1;
  c.train.beta2 = ds.zero.beta2;
  c.train.eps = ds.zero.eps;
  c.train.weight_decay = ds.zero.weight_decay;
  // The JSON decides the zero.* settings (DeepSpeed's defaults for keys it omits): say so where the training
  // config (or --set) asked for something else, or that value would be dropped without a word.
  auto from_json = [&](const char* key, const auto& json_value, auto& config_value, const char* json_key) {
    if (config_value == json_value) return;
    std::ostringstream said;
    said << c.train.deepspeed << " sets " << key << " to " << json_value << " (" << json_key << "); the training config's "
         << config_value << " is not used: change it in the JSON, or set train.deepspeed to \"\"";
    VT_LOG(warning) << said.str();
    config_value = json_value;
  };
  from_json("zero.stage", ds.zero.stage, c.zero.stage, "zero_optimization.stage");
  from_json("zero.offload_optimizer", std::string(optim::to_string(ds.zero.offload)), c.zero.offload_optimizer,
            "zero_optimization.offload_optimizer.device");
  from_json("zero.offload_ratio", ds.zero.offload_ratio, c.zero.offload_ratio,
            "zero_optimization.offload_optimizer.ratio");
  from_json("zero.bucket_numel", ds.zero.reduce_bucket_numel, c.zero.bucket_numel,
            "zero_optimization.reduce_bucket_size");
  if (!ds.bf16 && c.model.dtype == "auto") c.model.dtype = "fp32";
  c.validate();
  return c;
}

optim::ZeroConfig TrainConfig::zero_config() const {
  const TrainConfig& c = *this;
  optim::ZeroConfig z;
  z.stage = c.zero.stage;
  z.offload = optim::parse_offload_device(c.zero.offload_optimizer);
  z.offload_ratio = c.zero.offload_ratio;
  z.delayed_update = c.zero.delayed_update;
  z.delayed_update_warmup = c.zero.delayed_update_warmup;
  z.reduce_bucket_numel = c.zero.bucket_numel;
  z.gradient_clipping = c.train.clip_grad;
  z.beta1 = c.train.beta1;
  z.beta2 = c.train.beta2;
  z.eps = c.train.eps;
  z.weight_decay = c.train.weight_decay;
  z.optimizer_threads = c.zero.optimizer_threads;
  z.validate();
  return z;
}

void TrainConfig::validate() const {
  auto require = [](bool ok, const char* key, const std::string& what) { VT_CHECK(ok, "config key '", key, "' ", what); };
  require(model.dtype == "auto" || model.dtype == "bf16" || model.dtype == "fp32", "model.dtype",
          "must be auto, bf16 or fp32, not '" + model.dtype + "'");
  require(model.lora_r >= 0, "model.lora.r", "must be >= 0 (0: no LoRA)");
  require(model.lora_dropout >= 0 && model.lora_dropout < 1, "model.lora.dropout", "must be in [0, 1)");
  require(model.sam2_image_size >= 0 && model.sam2_image_size % 16 == 0, "model.sam2_image_size",
          "must be 0 (the preset's) or a multiple of 16");
  require(loss.num_points > 0, "loss.num_points", "must be positive");
  require(data.repeats >= 1, "data.repeats", "must be >= 1");
  require(data.min_tiles >= 1 && data.max_tiles >= data.min_tiles, "data.max_tiles", "must be >= data.min_tiles >= 1");
  require(data.workers >= 1 && data.prefetch_batches >= 1, "data.workers", "and data.prefetch_batches must be >= 1");
  require(train.epochs >= 1 || train.max_steps >= 1, "train.epochs", "or train.max_steps must be >= 1");
  require(train.micro_batch >= 1, "train.micro_batch", "must be >= 1");
  require(train.accumulation >= 1, "train.accumulation", "must be >= 1");
  require(train.lr > 0 && train.min_lr >= 0 && train.min_lr <= train.lr, "train.lr", "must be > 0 and >= train.min_lr >= 0");
  require(train.warmup_ratio >= 0 && train.warmup_ratio < 1, "train.warmup_ratio", "must be in [0, 1)");
  require(train.log_interval >= 1, "train.log_interval", "must be >= 1");
  require(train.val_interval >= 0, "train.val_interval", "must be >= 0");
  require(train.save_steps >= 1, "train.save_steps", "must be >= 1");
  require(train.save_total_limit >= 1, "train.save_total_limit", "must be >= 1");
  require(train.max_nonfinite_steps >= 1, "train.max_nonfinite_steps", "must be >= 1");
  require(zero.stage >= 0 && zero.stage <= 2, "zero.stage", "must be 0, 1 or 2");
  require(zero.offload_optimizer == "none" || zero.offload_optimizer == "cpu", "zero.offload_optimizer",
          "must be none or cpu, not '" + zero.offload_optimizer + "'");
  require(zero.offload_ratio > 0 && zero.offload_ratio <= 1, "zero.offload_ratio", "must lie in (0, 1]");
  require(!zero.delayed_update || zero.offload_optimizer == "cpu", "zero.delayed_update",
          "delays the host part of the optimizer: it needs zero.offload_optimizer cpu");
  require(zero.delayed_update_warmup >= 0, "zero.delayed_update_warmup", "must be >= 0");
  require(zero.bucket_numel > 0, "zero.bucket_numel", "must be positive");
  require(runtime.collective_timeout_s > 0, "runtime.collective_timeout_s", "must be positive");
  require(!runtime.work_dir.empty(), "runtime.work_dir", "must not be empty");
  require(!data.path.empty(), "data.path", "must not be empty");
}

}  // namespace vesseltune::setup
