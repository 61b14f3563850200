#!/usr/bin/env python3
"""The PyTorch peer of vesseltune's Sa2VA training step: what a Python user would write with transformers + peft.

Sa2VA = InternViT-300M (transformers' InternVLVisionModel, frozen) -> pixel shuffle -> mlp1 -> Qwen2ForCausalLM with
peft LoRA (r128) and a [SEG] token -> text_hidden_fcs -> SAM2 hiera-large mask decoder (transformers' Sam2Model, image
encoder frozen). Random weights, bf16, SDPA attention. One training step = A micro-steps (forward + backward) +
gradient clipping + AdamW on fp32 master copies (on the GPU, or in pinned CPU memory with --optimizer cpu).

Single process:  python3 bench/peer/sa2va_peer.py --preset sa2va-4b --optimizer cpu
Several GPUs:    python3 -m torch.distributed.run --nproc_per_node 4 bench/peer/sa2va_peer.py --preset sa2va-4b
Smoke test:      python3 bench/peer/sa2va_peer.py --tiny --steps 2 --warmup 1   (runs on the CPU without a GPU)
The last line on rank 0 is `PEER_RESULT {json}` (or `PEER_RESULT {"error": ...}` and exit code 1).
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import traceback

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

# Every size comes from these tables; --tiny swaps in TINY so that the smoke test runs the same code path.
VOCAB = 151677  # Sa2VA's Qwen2 vocabulary with its added special tokens
LLM_PRESETS = {
    "sa2va-1b": dict(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2),
    "sa2va-4b": dict(hidden=2048, intermediate=11008, layers=36, heads=16, kv_heads=2),
}
FULL = dict(
    vocab=VOCAB,
    lora_r=128,
    # InternViT-300M-448px
    vision=dict(hidden=1024, intermediate=4096, layers=24, heads=16, patch=14, image=448),
    # SAM2 hiera-large: trunk, FPN neck (lowest resolution dropped = num_feature_levels 3), 1024² images
    sam=dict(embed=144, heads=2, blocks=[2, 6, 36, 4], dims=[144, 288, 576, 1152], heads_per_stage=[2, 4, 8, 16],
             windows=[8, 4, 16, 8], global_blocks=[23, 33, 43], background=[7, 7], image=1024, fpn=256),
)
TINY = dict(
    vocab=1000,
    lora_r=8,
    llm=dict(hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2),
    vision=dict(hidden=64, intermediate=256, layers=2, heads=4, patch=14, image=448),
    # A global-attention block must not open a stage (Sam2MultiScaleBlock's query-stride padding divides by its
    # window size, 0 for global blocks), hence two blocks in stage 2 and the global one second.
    sam=dict(embed=16, heads=1, blocks=[1, 1, 2, 1], dims=[16, 32, 64, 128], heads_per_stage=[1, 1, 1, 1],
             windows=[8, 4, 4, 2], global_blocks=[3], background=[7, 7], image=256, fpn=256),
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ANSWER_TOKENS = 6  # labels sit on the last 6 tokens; [SEG] is 3 positions before the last one


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(LLM_PRESETS), default="sa2va-1b")
    ap.add_argument("--micro-batch", type=int, default=1, help="samples per micro-step per GPU")
    ap.add_argument("--accumulation", type=int, default=2, help="micro-steps per optimizer step")
    ap.add_argument("--tiles", type=int, default=1, help="448² tiles per sample (with T > 1 one is the thumbnail)")
    ap.add_argument("--text-tokens", type=int, default=26, help="non-image tokens per sample")
    ap.add_argument("--steps", type=int, default=10, help="measured steps")
    ap.add_argument("--warmup", type=int, default=3, help="steps run before the measured ones")
    ap.add_argument("--optimizer", choices=["gpu", "cpu"], default="gpu",
                    help="fp32 masters + AdamW state on the GPU, or in pinned CPU memory")
    ap.add_argument("--no-checkpointing", action="store_true", help="no activation checkpointing in the LLM")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true", help="every dimension shrunk (smoke test; CPU without a GPU)")
    args = ap.parse_args()
    assert args.micro_batch >= 1 and args.accumulation >= 1 and args.tiles >= 1, "sizes must be >= 1"
    assert args.steps >= 1 and args.warmup >= 0, "--steps must be >= 1 and --warmup >= 0"
    assert args.text_tokens >= 2 * ANSWER_TOKENS, (
        f"--text-tokens {args.text_tokens}: need >= {2 * ANSWER_TOKENS} (prompt before the image, answer after it)")
    return args


def sizes_for(args):
    if args.tiny:
        return dict(TINY)
    return dict(FULL, llm=LLM_PRESETS[args.preset])


# ----------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def built_on(device, dtype):
    """Create modules directly on `device` in `dtype`: no fp32 CPU copy of a 4B model, and the rotary inv_freq
    buffers, which the models create explicitly in fp32, stay fp32 (a later .to(bf16) would round them)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def pixel_shuffle_v2(x, scale=0.5):
    """InternVL's pixel shuffle (ps_version v2): [n, h*w, c] patch tokens -> [n, h*w*scale², c/scale²]."""
    n, hw, c = x.shape
    side = int(hw ** 0.5)
    assert side * side == hw, f"pixel shuffle needs a square token grid, got {hw} tokens"
    x = x.reshape(n, side, side, c)  # InternVL names this (n, w, h, c)
    x = x.view(n, side, int(side * scale), int(c / scale))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(side * scale), int(side * scale), int(c / (scale * scale)))
    x = x.permute(0, 2, 1, 3).contiguous()
    return x.reshape(n, -1, x.shape[-1])


class Sa2VAPeer(nn.Module):
    """Sa2VA's training forward: returns (total loss, llm CE, mask BCE, mask Dice)."""

    def __init__(self, vision, mlp1, llm, text_hidden_fcs, sam2, image_context_id, seg_id, tokens_per_tile):
        super().__init__()
        self.vision = vision
        self.mlp1 = mlp1
        self.llm = llm
        self.text_hidden_fcs = text_hidden_fcs
        self.sam2 = sam2
        self.image_context_id = image_context_id
        self.seg_id = seg_id
        self.tokens_per_tile = tokens_per_tile

    def forward(self, pixel_values, sam_pixel_values, input_ids, labels, gt_masks):
        # Frozen encoders, as in Sa2VA: no activations kept. SAM2 runs once per image.
        with torch.no_grad():
            vit = self.vision(pixel_values=pixel_values).last_hidden_state[:, 1:, :]  # drop CLS
            vit = pixel_shuffle_v2(vit)
            assert vit.shape[1] == self.tokens_per_tile, f"vision gave {vit.shape[1]} tokens per tile"
            sam_features = self.sam2.get_image_embeddings(sam_pixel_values)
            assert len(sam_features) == 3, (
                f"Sam2Model.get_image_embeddings returned {len(sam_features)} levels, expected 3 "
                "(two high-resolution maps + the image embedding)")
            image_pe = self.sam2.get_image_wide_positional_embeddings()
        vit_embeds = self.mlp1(vit)

        # InternVL/Sa2VA: image-context token embeddings are replaced by the projected vision tokens.
        embeds = self.llm.get_input_embeddings()(input_ids)
        batch, length, hidden = embeds.shape
        embeds = embeds.reshape(batch * length, hidden)
        selected = (input_ids == self.image_context_id).reshape(-1)
        embeds[selected] = vit_embeds.reshape(-1, hidden).to(embeds.dtype)
        embeds = embeds.reshape(batch, length, hidden)

        out = self.llm(inputs_embeds=embeds, labels=labels, output_hidden_states=True, use_cache=False)
        assert out.loss is not None and out.hidden_states is not None, "the LLM returned no loss or hidden states"
        seg_hidden = out.hidden_states[-1][input_ids == self.seg_id]  # [n, H], one [SEG] per sample
        language = self.text_hidden_fcs(seg_hidden)  # [n, 256]
        n = language.shape[0]
        sparse = language.view(n, 1, 1, -1)  # (images, prompts per image, tokens, 256): one mask per [SEG]

        # SAM2's mask decoder as Sam2Model.forward calls it, with the [SEG] embedding as the sparse prompt and the
        # prompt encoder's "no mask" dense embedding.
        prompt_encoder = self.sam2.prompt_encoder
        dense = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            n, -1, *prompt_encoder.image_embedding_size)
        decoded = self.sam2.mask_decoder(
            image_embeddings=sam_features[-1],
            image_positional_embeddings=image_pe.repeat(n, 1, 1, 1),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
            high_resolution_features=list(sam_features[:-1]),
        )
        masks = decoded[0]
        assert masks.dim() == 5 and masks.shape[:3] == (n, 1, 1), f"mask decoder gave masks of {tuple(masks.shape)}"
        logits = masks[:, 0, 0].float()  # [n, 256, 256] low-resolution mask logits
        assert logits.shape == gt_masks.shape, f"mask logits {tuple(logits.shape)} vs ground truth {tuple(gt_masks.shape)}"

        ce = out.loss
        bce = F.binary_cross_entropy_with_logits(logits, gt_masks)
        dice = dice_loss(logits, gt_masks)
        return ce + 2.0 * bce + 0.5 * dice, ce.detach(), bce.detach(), dice.detach()


def dice_loss(logits, target, eps=1.0):
    """Sa2VA's mask Dice (mmdet DiceLoss, use_sigmoid, naive_dice, eps 1), mean over masks."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    return (1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)).mean()


def model_configs(sizes, use_cache=False):
    """transformers configs of the three parts: InternVL vision, Qwen2, SAM2 (also predict_peer.py's)."""
    import transformers
    from transformers import (InternVLVisionConfig, Qwen2Config, Sam2Config, Sam2HieraDetConfig, Sam2MaskDecoderConfig,
                              Sam2PromptEncoderConfig, Sam2VisionConfig)

    v, l, s = sizes["vision"], sizes["llm"], sizes["sam"]
    vision_cfg = InternVLVisionConfig(
        hidden_size=v["hidden"], intermediate_size=v["intermediate"], num_hidden_layers=v["layers"],
        num_attention_heads=v["heads"], patch_size=v["patch"], image_size=v["image"], layer_norm_eps=1e-6,
        attention_bias=True, use_qk_norm=False, norm_type="layer_norm", hidden_act="gelu",
        use_mean_pooling=True,  # InternViT has no final LayerNorm: use_mean_pooling makes it an Identity
        attn_implementation="sdpa")
    llm_cfg = Qwen2Config(
        vocab_size=sizes["vocab"], hidden_size=l["hidden"], intermediate_size=l["intermediate"],
        num_hidden_layers=l["layers"], num_attention_heads=l["heads"], num_key_value_heads=l["kv_heads"],
        rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=False,
        use_cache=use_cache, attn_implementation="sdpa")
    rope = getattr(llm_cfg, "rope_parameters", None) or {}
    assert rope.get("rope_theta", getattr(llm_cfg, "rope_theta", None)) == 1e6, (
        f"Qwen2Config did not take rope_theta 1e6 (rope_parameters={rope!r}): transformers {transformers.__version__}")
    image = s["image"]
    sam_cfg = Sam2Config(
        vision_config=Sam2VisionConfig(
            backbone_config=Sam2HieraDetConfig(
                hidden_size=s["embed"], num_attention_heads=s["heads"], image_size=[image, image],
                blocks_per_stage=s["blocks"], embed_dim_per_stage=s["dims"],
                num_attention_heads_per_stage=s["heads_per_stage"], window_size_per_stage=s["windows"],
                global_attention_blocks=s["global_blocks"],
                window_positional_embedding_background_size=s["background"]),
            backbone_channel_list=list(reversed(s["dims"])),
            backbone_feature_sizes=[[image // 4] * 2, [image // 8] * 2, [image // 16] * 2],
            fpn_hidden_size=s["fpn"], fpn_top_down_levels=[2, 3], num_feature_levels=3),
        prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=s["fpn"], image_size=image, patch_size=16),
        mask_decoder_config=Sam2MaskDecoderConfig(hidden_size=s["fpn"]),
        attn_implementation="sdpa")
    return vision_cfg, llm_cfg, sam_cfg


def build_model(sizes, checkpointing, device, dtype):
    from peft import LoraConfig, get_peft_model
    from transformers import InternVLVisionModel, Qwen2ForCausalLM, Sam2Model

    vision_cfg, llm_cfg, sam_cfg = model_configs(sizes)
    v, l, s = sizes["vision"], sizes["llm"], sizes["sam"]
    llm_hidden = l["hidden"]
    with built_on(device, dtype):
        vision = InternVLVisionModel(vision_cfg)
        llm = Qwen2ForCausalLM(llm_cfg)
        if checkpointing:
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lora = LoraConfig(r=sizes["lora_r"], lora_alpha=2 * sizes["lora_r"], lora_dropout=0.05,
                          target_modules=LORA_TARGETS, bias="none", task_type="CAUSAL_LM")
        # autocast_adapter_dtype=False keeps the LoRA weights in bf16 like every other trainable parameter; the
        # fp32 copies are the optimizer's masters.
        llm = get_peft_model(llm, lora, autocast_adapter_dtype=False)
        sam2 = Sam2Model(sam_cfg)
        vision_width = v["hidden"] * 4  # after the 0.5 pixel shuffle
        mlp1 = nn.Sequential(nn.LayerNorm(vision_width), nn.Linear(vision_width, llm_hidden), nn.GELU(),
                             nn.Linear(llm_hidden, llm_hidden))
        # Maps the [SEG] hidden state to SAM2's prompt width (the FPN width, 256).
        text_hidden_fcs = nn.Sequential(nn.Linear(llm_hidden, llm_hidden), nn.ReLU(inplace=True),
                                        nn.Linear(llm_hidden, s["fpn"]), nn.Dropout(0.0))

    # Sa2VA's trainable set: LoRA (peft froze the rest of the LLM), embed_tokens and lm_head in full, mlp1,
    # text_hidden_fcs and SAM2's mask decoder.
    vision.requires_grad_(False)
    sam2.requires_grad_(False)
    sam2.mask_decoder.requires_grad_(True)
    base = llm.get_base_model()
    base.get_input_embeddings().weight.requires_grad_(True)
    base.get_output_embeddings().weight.requires_grad_(True)
    assert base.get_input_embeddings().weight.data_ptr() != base.get_output_embeddings().weight.data_ptr(), (
        "embed_tokens and lm_head are tied; Sa2VA's LLM has untied embeddings")
    if checkpointing:
        assert getattr(base, "is_gradient_checkpointing", False), "gradient checkpointing did not switch on"
    for name, cfg in (("vision", vision.config), ("llm", base.config), ("sam2", sam2.config)):
        assert cfg._attn_implementation == "sdpa", f"{name} attention is {cfg._attn_implementation!r}, not sdpa"

    vocab = sizes["vocab"]
    tokens_per_tile = (v["image"] // v["patch"]) ** 2 // 4
    net = Sa2VAPeer(vision, mlp1, llm, text_hidden_fcs, sam2, image_context_id=vocab - 10, seg_id=vocab - 1,
                    tokens_per_tile=tokens_per_tile)
    wrong = [f"{n} {p.dtype} {p.device}" for n, p in net.named_parameters()
             if p.dtype != dtype or p.device.type != torch.device(device).type]
    assert not wrong, f"{len(wrong)} parameters not {dtype} on {device}, e.g. {wrong[:5]}"
    assert any("lora_" in n and p.requires_grad for n, p in net.named_parameters()), "peft added no LoRA weights"
    return net


# ----------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------

def make_micro_batch(sizes, args, device, dtype, net):
    """One micro-batch: per sample a prompt, the image-context tokens of all tiles, and an answer with [SEG] that
    carries the labels; random pixels for the tiles and for SAM2; a random 0/1 mask per sample."""
    b, tiles = args.micro_batch, args.tiles
    image_tokens = tiles * net.tokens_per_tile
    prompt = args.text_tokens // 2
    length = args.text_tokens + image_tokens
    # Text ids stay below the image-context id, so neither special id is ever drawn.
    input_ids = torch.randint(0, net.image_context_id, (b, length), device=device)
    input_ids[:, prompt:prompt + image_tokens] = net.image_context_id
    input_ids[:, length - 4] = net.seg_id
    labels = torch.full_like(input_ids, -100)
    labels[:, -ANSWER_TOKENS:] = input_ids[:, -ANSWER_TOKENS:]
    v, s = sizes["vision"], sizes["sam"]
    pixel_values = torch.randn(b * tiles, 3, v["image"], v["image"], device=device, dtype=dtype)
    sam_pixel_values = torch.randn(b, 3, s["image"], s["image"], device=device, dtype=dtype)
    mask_side = s["image"] // 4  # SAM2's low-resolution masks
    gt_masks = (torch.rand(b, mask_side, mask_side, device=device) > 0.5).float()
    return pixel_values, sam_pixel_values, input_ids, labels, gt_masks


# ----------------------------------------------------------------------------------------------------------------
# Optimizer: fp32 masters of the bf16 trainable parameters
# ----------------------------------------------------------------------------------------------------------------

class MasterAdamW:
    """clip (on the bf16 grads) -> copy the grads into the fp32 master grads -> AdamW on the masters -> copy the
    masters back into the bf16 parameters. `offload`: masters, their grads and the AdamW state in pinned CPU
    memory and AdamW on the CPU (foreach), as a Python user offloading the optimizer would write it; otherwise all
    of it on the GPU with the fused AdamW."""

    def __init__(self, params, offload, device):
        self.params = params
        self.offload = offload
        on_cuda = torch.device(device).type == "cuda"
        where = "cpu" if offload else device
        pin = offload and on_cuda

        def empty(shape):
            return torch.empty(shape, dtype=torch.float32, device=where, pin_memory=pin)

        self.masters, self.grads = [], []
        for p in params:
            m = empty(p.shape)
            m.copy_(p.detach())
            self.masters.append(m)
            self.grads.append(empty(p.shape).zero_())
        kw = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
        if offload:
            self.opt = torch.optim.AdamW(self.masters, foreach=True, **kw)
            # AdamW would allocate its moments lazily in pageable memory; create them pinned up front (it keeps
            # state that already exists).
            for m in self.masters:
                self.opt.state[m] = {"step": torch.tensor(0.0, dtype=torch.float32),
                                     "exp_avg": empty(m.shape).zero_(), "exp_avg_sq": empty(m.shape).zero_()}
        else:
            self.opt = torch.optim.AdamW(self.masters, fused=on_cuda, foreach=None if on_cuda else True, **kw)
        if on_cuda:
            torch.cuda.synchronize()

    @torch.no_grad()
    def step(self):
        torch.nn.utils.clip_grad_norm_(self.params, max_norm=1.0)
        for p, m, g in zip(self.params, self.masters, self.grads):
            # A parameter whose output fed no loss this step (DDP's "unused") has no grad: AdamW skips it.
            if p.grad is None:
                m.grad = None
            else:
                g.copy_(p.grad, non_blocking=self.offload)
                m.grad = g
        if self.offload and torch.cuda.is_available():
            torch.cuda.synchronize()  # the grads must have landed before the CPU reads them
        self.opt.step()
        for p, m in zip(self.params, self.masters):
            p.copy_(m, non_blocking=self.offload)
        for p in self.params:
            p.grad = None


# ----------------------------------------------------------------------------------------------------------------
# Run
# ----------------------------------------------------------------------------------------------------------------

def host_peak_gib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB -> GiB
    raise RuntimeError("/proc/self/status has no VmHWM line")


def main():
    args = parse_args()
    distributed = all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    rank, world, local_rank = 0, 1, 0
    if distributed:
        rank, world, local_rank = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        assert torch.cuda.is_available(), "a torchrun launch needs GPUs (NCCL)"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        assert args.tiny, "no GPU: only --tiny runs on the CPU"
        device = torch.device("cpu")
    if distributed:
        dist.init_process_group(backend="nccl", device_id=device)
        # torchrun sets OMP_NUM_THREADS=1 in every process; a user offloading AdamW to the CPU gives each rank its
        # share of the host's cores instead.
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    on_cuda = device.type == "cuda"

    def log(*a):
        if rank == 0:
            print(*a, flush=True)

    def sync():
        if on_cuda:
            torch.cuda.synchronize()

    import peft
    import transformers
    dtype = torch.bfloat16
    sizes = sizes_for(args)
    checkpointing = not args.no_checkpointing
    torch.manual_seed(args.seed)  # same weights on every rank
    t_build = time.perf_counter()
    net = build_model(sizes, checkpointing, device, dtype)
    net.train()
    trainable = [p for p in net.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_total = sum(p.numel() for p in net.parameters())
    model = net
    if distributed:
        # find_unused_parameters: parts of SAM2's mask decoder are trainable but feed no loss (the IoU and object
        # score heads, whose outputs Sa2VA ignores, and conv_s0/conv_s1, which Sam2Model applies inside the
        # no-grad image-encoder pass), so their grads never become ready. broadcast_buffers=False: no buffer
        # changes during training (no BatchNorm), so there is nothing to re-broadcast every forward.
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[local_rank], find_unused_parameters=True,
                                                          broadcast_buffers=False)
    optimizer = MasterAdamW(trainable, offload=args.optimizer == "cpu", device=device)
    sync()
    log(f"built in {time.perf_counter() - t_build:.1f} s: {'tiny' if args.tiny else args.preset}, "
        f"{n_total / 1e6:.1f}M parameters, {n_trainable / 1e6:.1f}M trainable, {world} process(es) on "
        f"{torch.cuda.get_device_name(device) if on_cuda else 'cpu'}")

    torch.manual_seed(args.seed + 1 + rank)  # different data per rank
    batches = [make_micro_batch(sizes, args, device, dtype, net) for _ in range(args.accumulation)]
    tokens_per_sample = batches[0][2].shape[1]
    log(f"micro-batch {args.micro_batch} x accumulation {args.accumulation} x {world} GPU(s), {args.tiles} tile(s), "
        f"{tokens_per_sample} tokens/sample, checkpointing {'on' if checkpointing else 'off'}, "
        f"optimizer {args.optimizer}, {torch.get_num_threads()} CPU threads per process")

    fwd_bwd_ms, optimizer_ms, step_ms = [], [], []
    for step in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            # DDP: reduce the gradients only in the last micro-step's backward.
            with model.no_sync() if distributed and not last else contextlib.nullcontext():
                loss, ce, bce, dice = model(*batch)
                (loss / args.accumulation).backward()
        sync()
        t1 = time.perf_counter()
        optimizer.step()
        sync()
        t2 = time.perf_counter()
        measured = step >= args.warmup
        if measured:
            fwd_bwd_ms.append((t1 - t0) * 1e3)
            optimizer_ms.append((t2 - t1) * 1e3)
            step_ms.append((t2 - t0) * 1e3)
        log(f"step {step + 1}/{args.warmup + args.steps}{'' if measured else ' (warm-up)'}: "
            f"fwd+bwd {(t1 - t0) * 1e3:.1f} ms, optimizer {(t2 - t1) * 1e3:.1f} ms, step {(t2 - t0) * 1e3:.1f} ms, "
            f"loss {loss.item():.4f} (ce {ce.item():.4f}, bce {bce.item():.4f}, dice {dice.item():.4f})")

    peak = torch.tensor([torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda else 0.0, host_peak_gib()],
                        dtype=torch.float64, device=device)
    if distributed:
        dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    step_s = statistics.median(step_ms) / 1e3
    samples_per_step = args.micro_batch * args.accumulation * world
    result = dict(
        preset="tiny" if args.tiny else args.preset,
        gpus=world,
        micro_batch=args.micro_batch,
        accumulation=args.accumulation,
        tiles=args.tiles,
        tokens_per_sample=tokens_per_sample,
        optimizer=args.optimizer,
        checkpointing=checkpointing,
        trainable_params=n_trainable,
        total_params=n_total,
        step_ms=round(statistics.median(step_ms), 3),
        fwd_bwd_ms=round(statistics.median(fwd_bwd_ms), 3),
        optimizer_ms=round(statistics.median(optimizer_ms), 3),
        samples_per_s=round(samples_per_step / step_s, 4),
        samples_per_s_per_gpu=round(samples_per_step / step_s / world, 4),
        tokens_per_s=round(samples_per_step * tokens_per_sample / step_s, 1),
        peak_gib=round(peak[0].item(), 3),
        host_peak_gib=round(peak[1].item(), 3),
        gpu_name=torch.cuda.get_device_name(device) if on_cuda else "cpu",
        torch=torch.__version__,
        transformers=transformers.__version__,
        peft=peft.__version__,
    )
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    log("PEER_RESULT " + json.dumps(result))


def run_reporting_errors(body, prefix=""):
    """Runs BODY; an exception ends with `PEER_RESULT {"error": ...}` as the last line and exit code 1."""
    try:
        body()
    except Exception as e:  # noqa: BLE001 -- the benchmark harness reads the error from the last line
        traceback.print_exc()
        sys.stderr.flush()
        print("PEER_RESULT " + json.dumps({"error": f"{prefix}{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    run_reporting_errors(main, f"rank {os.environ.get('RANK', '0')}: ")
