#!/usr/bin/env python3
"""Prints issue 8's comparison from bench/gpu_perf.sh's results: RUNS/<name>.json (BENCH_RESULT of vesseltune-train
--benchmark, PEER_RESULT of bench/peer/sa2va_peer.py) and each target with its measured figure.
Usage: perf_table.py RUNS_DIR GPU_TXT"""
import json
import os
import sys

runs_dir, gpu_txt = sys.argv[1], sys.argv[2]
runs = {}
for name in sorted(os.listdir(runs_dir)):
    if name.endswith(".json"):
        try:
            with open(os.path.join(runs_dir, name)) as f:
                runs[name[:-5]] = json.loads(f.read() or "null")
        except json.JSONDecodeError:
            runs[name[:-5]] = None
print("card:", open(gpu_txt).read().strip().splitlines()[0])


def per_gpu(run):
    if not run or "error" in run:
        return None
    return run.get("samples_per_s_per_rank", run.get("samples_per_s_per_gpu"))


def peak_gb(run):
    """The largest allocated peak over the ranks, in GB (1e9 B), as the memory target is stated."""
    return max(run["gpu_peak_gib"]) * 2**30 / 1e9


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def check(label, value, target, higher=True, unit=""):
    if value is None:
        print(f"  [ n/a ] {label}: not measured")
        return
    ok = value >= target if higher else value <= target
    print(f"  [{' met ' if ok else 'MISSED'}] {label}: {value:.3g}{unit} (target {'≥' if higher else '≤'} {target}{unit})")


models = sorted({k.split("-none-")[0].split("-cpu-")[0].split("-peer-")[0] for k in runs})
for model in models:
    print(f"\n{model}: samples/s per GPU, step ms, peak GiB per rank, exposed optimizer share, MFU")
    print(f"  {'run':<34}{'samples/s/GPU':>14}{'step ms':>10}{'peak GiB':>10}{'optimizer':>10}{'MFU':>8}")
    for name, run in runs.items():
        if not name.startswith(model + "-") or not run:
            continue
        if "error" in run:
            print(f"  {name:<34} error: {run['error'][:80]}")
            continue
        step = run.get("step_ms", run.get("ms", {}).get("step"))
        peak = run.get("peak_gib")
        peak = max(run["gpu_peak_gib"]) if peak is None else peak
        share = run.get("optimizer_exposed_share")
        if share is None and run.get("step_ms"):
            share = run["optimizer_ms"] / run["step_ms"]
        mfu = run.get("mfu")
        print(f"  {name:<34}{fmt(per_gpu(run)):>14}{fmt(step, 0):>10}{fmt(peak):>10}{fmt(100 * share, 1) + '%':>10}"
              f"{(fmt(100 * mfu, 1) + '%') if mfu else '-':>8}")
    peer = per_gpu(runs.get(f"{model}-peer-gpu-1gpu"))
    ours = per_gpu(runs.get(f"{model}-none-1gpu"))
    print("  targets:")
    check("optimizer on the GPU, 1 GPU: vesseltune / peer samples/s", ours / peer if ours and peer else None, 3.0, unit="x")
    four = per_gpu(runs.get(f"{model}-cpu-4gpu"))
    check("ZeRO-2 + CPU offload on 4 GPUs, per GPU / peer's 1 GPU", four / peer if four and peer else None, 2.0, unit="x")
    one = runs.get(f"{model}-cpu-1gpu")
    for gpus, target in ((2, 1.9), (4, 3.8)):
        run = runs.get(f"{model}-cpu-{gpus}gpu")
        ratio = run["samples_per_s"] / one["samples_per_s"] if run and one and "error" not in run else None
        check(f"{gpus}-GPU / 1-GPU throughput (ZeRO-2 + offload)", ratio, target, unit="x")
    for gpus in (1, 2, 4):
        run = runs.get(f"{model}-cpu-{gpus}gpu")
        check(f"exposed optimizer share, offload cpu, {gpus} GPU(s)",
              100 * run["optimizer_exposed_share"] if run else None, 10, higher=False, unit="%")
    # Runs with part of the optimizer state on the GPU (RATIOS) or a delayed host update (DELAYED): the same
    # targets, per run.
    for name, run in runs.items():
        variant = "-ratio" in name or "-delayed" in name
        if not name.startswith(f"{model}-cpu-") or not variant or not run or "error" in run:
            continue
        check(f"exposed optimizer share, {name[len(model) + 1:]}", 100 * run["optimizer_exposed_share"], 10,
              higher=False, unit="%")
        if "-4gpu-" in name and peer:
            check(f"{name[len(model) + 1:]}: per GPU / peer's 1 GPU", per_gpu(run) / peer, 2.0, unit="x")
        if "-4gpu-" in name and model == "sa2va-4b":
            check(f"{name[len(model) + 1:]}: peak GPU memory per rank (GB)", peak_gb(run), 12, higher=False,
                  unit=" GB")
    run = runs.get(f"{model}-cpu-4gpu")
    if model == "sa2va-4b":
        peer_peak = runs.get(f"{model}-peer-gpu-1gpu") or {}
        check("peak GPU memory per rank, 4 GPUs, ZeRO-2 + offload (GB = 1e9 B)",
              peak_gb(run) if run else None, 12, higher=False, unit=" GB")
        if run and run.get("gpu_reserved_gib"):
            print(f"          reserved (with CUDA graph pools and cached blocks): "
                  f"{max(run['gpu_reserved_gib']) * 2**30 / 1e9:.2f} GB")
        if peer_peak.get("peak_gib"):
            print(f"          peer (1 GPU, optimizer on the GPU): {peer_peak['peak_gib'] * 2**30 / 1e9:.2f} GB")
    plan = os.path.join(runs_dir, f"{model}-plan.txt")
    if os.path.exists(plan):
        lines = [l.strip() for l in open(plan) if "offload" in l or "fits" in l]
        print("  --plan (4 GPUs, 24 GiB cards):", " | ".join(lines[-2:]))
