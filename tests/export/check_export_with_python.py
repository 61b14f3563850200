#!/usr/bin/env python3
"""Checks vesseltune-export's folders with the Python libraries users load them with (transformers, peft,
safetensors). Run on the GPU machine (CPU is enough) on the folders tests/export/make_python_check.sh makes:

  bash tests/export/make_python_check.sh build/bin . OUT        # here, with the C++ build
  python3 tests/export/check_export_with_python.py OUT          # where transformers and peft are

1. OUT/merged/config.json builds transformers' Qwen2Config with the dimensions vesseltune wrote, and the Hub's
   sharded loader (huggingface_hub.load_torch_model, through model.safetensors.index.json) fills a Python Sa2VA
   language half (Qwen2ForCausalLM under `language_model`) with the merged weights; the merged folder holds the
   base's names.
2. OUT/peft on OUT/base, the way export_checkpoint.h tells users: PeftModel.from_pretrained, then
   trained_modules.safetensors with load_state_dict(strict=False) (no unexpected key), then merge_and_unload: PEFT's
   own merge gives the merged export's language-model weights (<= 1e-6 relative), and its logits.
Exit 0 on success.
"""
import json
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from huggingface_hub import load_torch_model
from transformers import Qwen2Config, Qwen2ForCausalLM


class Sa2VALanguageHalf(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.language_model = Qwen2ForCausalLM(config)


def folder_tensors(folder):
    """Every tensor of an exported folder: model.safetensors, or the shards of its index."""
    try:
        with open(f"{folder}/model.safetensors.index.json") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    except FileNotFoundError:
        shards = ["model.safetensors"]
    tensors = {}
    for shard in shards:
        tensors.update(load_file(f"{folder}/{shard}"))
    return tensors


def language_half(folder):
    with open(f"{folder}/config.json") as f:
        config_json = json.load(f)
    assert config_json["model_type"] == "sa2va_chat" and config_json["architectures"] == ["Sa2VAChatModel"]
    llm = {k: v for k, v in config_json["llm_config"].items() if k not in ("model_type", "architectures", "dtype")}
    config = Qwen2Config(**llm)
    config._attn_implementation = "eager"
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads"):
        assert getattr(config, key) == llm[key], key
    return Sa2VALanguageHalf(config).eval()


def relative_error(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def main():
    out = sys.argv[1]
    merged = folder_tensors(f"{out}/merged")
    base = folder_tensors(f"{out}/base")
    assert sorted(merged) == sorted(base), "the merged export's names differ from its base's"
    assert not any(".lora_" in k for k in merged)

    # 1. The Hub's sharded loader on the merged folder.
    from_merged = language_half(f"{out}/merged")
    result = load_torch_model(from_merged, f"{out}/merged", strict=False)
    assert not result.missing_keys, result.missing_keys
    for key, value in from_merged.state_dict().items():
        assert torch.equal(value, merged[key]), key
    print(f"merged: {len(merged)} tensors in the shards, the language half loaded through the index")

    # 2. PEFT on the base, then the trained modules, then PEFT's merge.
    model = language_half(f"{out}/merged")
    model.load_state_dict({k: v for k, v in base.items() if k.startswith("language_model.")}, strict=True)
    with open(f"{out}/peft/adapter_config.json") as f:
        assert json.load(f)["base_model_name_or_path"].endswith("/base")
    peft_model = PeftModel.from_pretrained(model, f"{out}/peft").eval()
    modules = {k: v for k, v in load_file(f"{out}/peft/trained_modules.safetensors").items()
               if k.startswith("language_model.")}
    assert modules, "no trained language-model module (embed_tokens, lm_head)"
    result = peft_model.base_model.model.load_state_dict(modules, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    ids = torch.randint(0, from_merged.language_model.config.vocab_size - 8, (2, 12))
    with torch.no_grad():
        adapted_logits = peft_model.base_model.model.language_model(input_ids=ids).logits
        merged_model = peft_model.merge_and_unload()
        worst = 0.0
        for key, value in merged_model.state_dict().items():
            error = relative_error(value, merged[key])
            assert error <= 1e-6, f"{key}: PEFT's merge differs from vesseltune's by {error:.3g} (relative)"
            worst = max(worst, error)
        merged_logits = from_merged.language_model(input_ids=ids).logits
    logits_error = relative_error(merged_logits, adapted_logits)
    assert logits_error <= 1e-4, f"logits of the merged export vs PEFT on the base: {logits_error:.3g}"
    changed = sum(1 for k, v in merged.items() if k.startswith("language_model.") and not torch.equal(v, base[k]))
    assert changed > 0, "training changed no language-model weight: the check would prove nothing"
    print(f"peft: {len(modules)} trained modules loaded, PEFT's merge = vesseltune's (worst {worst:.2g} relative, "
          f"{changed} language-model tensors changed by training), logits within {logits_error:.2g}")
    print("PASS")


if __name__ == "__main__":
    main()
