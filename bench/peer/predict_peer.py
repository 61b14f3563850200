#!/usr/bin/env python3
"""The PyTorch peer of `vesseltune-predict`: what a Python user of Sa2VA runs to get a mask from an image.

Sa2VA-4B-shaped random weights built from configs (no downloads), bf16 on the GPU, SDPA attention: InternViT-300M
(transformers' InternVLVisionModel) -> pixel shuffle (v2) -> mlp1 -> Qwen2ForCausalLM (sa2va-4b dims, vocabulary
151677) -> text_hidden_fcs -> SAM2 hiera-large (transformers' Sam2Model, 1024² images), sizes from sa2va_peer.py's
tables. Per image, timed from the raw uint8 array to the mask on the host, as Sa2VA's predict_forward does it:
  preprocess (InternVL dynamic_preprocess: a 448² image is one tile, no thumbnail; SAM2 image: Pillow bicubic to
  1024², ImageNet normalisation; the qwen_chat prompt with <image> expanded, ids from configs/tiny/tokenizer.json)
  -> vision + mlp1 -> image features at the <IMG_CONTEXT> embeddings -> greedy generate with the KV cache of exactly
  --new-tokens tokens (hidden states returned, as Sa2VA asks) -> "first mask": the last generated position's
  last-layer hidden state -> text_hidden_fcs -> SAM2 (image encoded once; one not-a-point + the language embedding,
  multimask, best IoU) -> bilinear to 1024² -> bilinear to the original size -> sigmoid > 0.5 -> to the host.

  python3 bench/peer/predict_peer.py --images 20 --warmup 3 --new-tokens 16
  python3 bench/peer/predict_peer.py --batch 4                # images per generate / SAM2 call
  python3 bench/peer/predict_peer.py --tiny --images 2 --warmup 1   # smoke test (CPU unless --device cuda)
The last line is `PEER_RESULT {json}` (or `PEER_RESULT {"error": ...}` and exit code 1).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
IMAGE_SIDE = 448  # the benchmark's raw images: one InternVL tile each
MAX_TILES = 12  # Sa2VA's max_dynamic_patch


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=20, help="measured images")
    ap.add_argument("--warmup", type=int, default=3, help="batches run before the measured ones")
    ap.add_argument("--batch", type=int, default=1, help="images per call (one generate and one SAM2 pass)")
    ap.add_argument("--new-tokens", type=int, default=16, help="tokens generated per image (exactly)")
    ap.add_argument("--tiny", action="store_true", help="every dimension shrunk (smoke test)")
    ap.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                    help="auto: the GPU, but the CPU with --tiny")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    assert args.images >= 1 and args.warmup >= 0 and args.batch >= 1 and args.new_tokens >= 1, "sizes must be >= 1"
    return args


def pick_device(args):
    if args.device == "cpu" or (args.device == "auto" and args.tiny):
        return torch.device("cpu")
    assert torch.cuda.is_available(), "no GPU: only --tiny (or --device cpu) runs on the CPU"
    return torch.device("cuda", 0)


def sizes_for(args, peer):
    if args.tiny:
        # The tiny tokenizer's special ids go up to 2047.
        return dict(peer.TINY, vocab=2048)
    return dict(peer.FULL, llm=peer.LLM_PRESETS["sa2va-4b"])


class Predictor(nn.Module):
    """Sa2VA's inference modules, merged weights (no LoRA), eval mode."""

    def __init__(self, sizes, device, dtype, peer):
        super().__init__()
        from transformers import InternVLVisionModel, Qwen2ForCausalLM, Sam2Model
        v, l, s = sizes["vision"], sizes["llm"], sizes["sam"]
        # sa2va_peer's configs, without peft (inference runs merged weights).
        vision_cfg, llm_cfg, sam_cfg = peer.model_configs(sizes, use_cache=True)
        image = s["image"]
        hidden = l["hidden"]
        with peer.built_on(device, dtype):
            self.vision = InternVLVisionModel(vision_cfg)
            self.llm = Qwen2ForCausalLM(llm_cfg)
            self.sam2 = Sam2Model(sam_cfg)
            width = v["hidden"] * 4  # after the 0.5 pixel shuffle
            self.mlp1 = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(),
                                      nn.Linear(hidden, hidden))
            self.text_hidden_fcs = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                                 nn.Linear(hidden, s["fpn"]), nn.Dropout(0.0))
        self.eval().requires_grad_(False)
        for name, cfg in (("vision", self.vision.config), ("llm", self.llm.config), ("sam2", self.sam2.config)):
            assert cfg._attn_implementation == "sdpa", f"{name} attention is {cfg._attn_implementation!r}, not sdpa"
        wrong = [f"{n} {p.dtype} {p.device}" for n, p in self.named_parameters()
                 if p.dtype != dtype or p.device.type != device.type]
        assert not wrong, f"{len(wrong)} parameters not {dtype} on {device}, e.g. {wrong[:5]}"
        self.tokens_per_tile = (v["image"] // v["patch"]) ** 2 // 4
        self.sam_image = image


def predict(model, tokenizer, images, new_tokens, device, dtype, fx, peer):
    """Raw uint8 RGB images (one prompt each) -> boolean masks of the images' sizes, on the host."""
    from PIL import Image
    pils = [Image.fromarray(a) for a in images]
    tiles = [fx.internvl_pixel_values(p, 1, MAX_TILES, fx.TILE, True) for p in pils]
    assert len({t.shape[0] for t in tiles}) == 1, "a batch needs the same tile count per image (equal prompts)"
    pixel_values = torch.cat(tiles).to(device=device, dtype=dtype, non_blocking=True)
    sam_pixels = torch.cat([fx.sam_pixel_values(p, model.sam_image) for p in pils]).to(
        device=device, dtype=dtype, non_blocking=True)
    ids = torch.tensor([fx.encode(tokenizer, fx.chat_prompt(fx.QUESTIONS[0], t.shape[0])) for t in tiles],
                       dtype=torch.int64).to(device)
    b, length = ids.shape

    with torch.inference_mode():
        vit = model.vision(pixel_values=pixel_values).last_hidden_state[:, 1:, :]  # drop CLS
        features = model.mlp1(peer.pixel_shuffle_v2(vit))
        embeds = model.llm.get_input_embeddings()(ids)
        selected = ids == fx.IMG_CONTEXT_ID
        assert int(selected.sum()) == features.shape[0] * features.shape[1], "image-context tokens vs features"
        embeds[selected] = features.reshape(-1, features.shape[-1]).to(embeds.dtype)

        out = model.llm.generate(
            inputs_embeds=embeds, attention_mask=torch.ones(b, length, dtype=torch.long, device=device),
            do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, use_cache=True,
            output_hidden_states=True, return_dict_in_generate=True)
        assert out.sequences.shape[1] in (new_tokens, length + new_tokens), f"generated {tuple(out.sequences.shape)}"
        assert len(out.hidden_states) == new_tokens, f"{len(out.hidden_states)} steps of hidden states"
        # The last generated position = the one fed with token new_tokens-1 (the last token itself is never fed).
        last = out.hidden_states[-1][-1][:, -1, :]  # [b, H], after the final norm
        language = model.text_hidden_fcs(last)  # [b, 256]

        sam = model.sam2
        feats = sam.get_image_embeddings(sam_pixels)  # conv_s0, conv_s1, stride-16 level + no_memory_embedding
        assert len(feats) == 3, f"Sam2Model.get_image_embeddings returned {len(feats)} levels"
        points = torch.zeros(b, 1, 1, 2, device=device, dtype=dtype)
        labels = -torch.ones(b, 1, 1, device=device, dtype=torch.int32)
        sparse, dense = sam.prompt_encoder(input_points=points, input_labels=labels, input_boxes=None,
                                           input_masks=None)
        sparse = torch.cat([sparse, language[:, None, None, :].to(sparse.dtype)], dim=2)  # [b, 1, 3, 256]
        masks, iou, _, _ = sam.mask_decoder(
            image_embeddings=feats[-1], image_positional_embeddings=sam.get_image_wide_positional_embeddings().repeat(
                b, 1, 1, 1), sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
            high_resolution_features=list(feats[:-1]))
        best = masks[:, 0][torch.arange(b, device=device), iou[:, 0].argmax(-1)]  # [b, 256, 256], no score gate
        up = F.interpolate(best[:, None].float(), size=(model.sam_image, model.sam_image), mode="bilinear",
                           align_corners=False)
        results = []
        for i, a in enumerate(images):
            full = F.interpolate(up[i:i + 1], size=a.shape[:2], mode="bilinear", align_corners=False)[0, 0]
            results.append(full.sigmoid() > 0.5)
    return [m.cpu().numpy() for m in results]  # what predict_forward returns; also synchronises


def main():
    args = parse_args()
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
    import numpy as np
    import transformers
    import sa2va_peer as peer  # size tables, built_on, pixel_shuffle_v2
    import make_sa2va_predict_fixtures as fx  # Sa2VA's preprocessing and prompt (the predict fixture's reference)

    device = pick_device(args)
    on_cuda = device.type == "cuda"
    dtype = torch.bfloat16

    def sync():
        if on_cuda:
            torch.cuda.synchronize(device)

    sizes = sizes_for(args, peer)
    torch.manual_seed(args.seed)
    t_build = time.perf_counter()
    model = Predictor(sizes, device, dtype, peer)
    tokenizer = fx.load_tokenizer()
    sync()
    n_params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name(device) if on_cuda else "cpu"
    print(f"built in {time.perf_counter() - t_build:.1f} s: {'tiny' if args.tiny else 'sa2va-4b'}, "
          f"{n_params / 1e6:.1f}M parameters, bf16 on {name}", flush=True)

    rng = np.random.default_rng(args.seed)
    batches = args.warmup + -(-args.images // args.batch)
    images = [rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8) for _ in range(batches * args.batch)]
    prompt_tokens = len(fx.encode(tokenizer, fx.chat_prompt(fx.QUESTIONS[0], 1)))

    latencies_ms, measured_images, measured_s = [], 0, 0.0
    for k in range(batches):
        batch = images[k * args.batch:(k + 1) * args.batch]
        sync()
        t0 = time.perf_counter()
        masks = predict(model, tokenizer, batch, args.new_tokens, device, dtype, fx, peer)
        sync()
        dt = time.perf_counter() - t0
        assert len(masks) == len(batch) and masks[0].shape == batch[0].shape[:2], "mask count or size"
        measured = k >= args.warmup
        if measured:
            latencies_ms.append(dt * 1e3)
            measured_images += len(batch)
            measured_s += dt
        print(f"batch {k + 1}/{batches}{'' if measured else ' (warm-up)'}: {len(batch)} image(s) in "
              f"{dt * 1e3:.1f} ms, mask foreground {float(np.mean(masks[0])):.3f}", flush=True)

    result = dict(
        images_per_s=round(measured_images / measured_s, 4),
        first_mask_ms_median=round(statistics.median(latencies_ms), 3),
        new_tokens=args.new_tokens,
        batch=args.batch,
        device=device.type,
        dtype="bfloat16",
        preset="tiny" if args.tiny else "sa2va-4b",
        images=measured_images,
        warmup_batches=args.warmup,
        prompt_tokens=prompt_tokens,
        first_mask_ms_min=round(min(latencies_ms), 3),
        peak_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if on_cuda else 0.0,
        gpu_name=name,
        torch=torch.__version__,
        transformers=transformers.__version__,
    )
    print("PEER_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    import sa2va_peer
    sa2va_peer.run_reporting_errors(main)
