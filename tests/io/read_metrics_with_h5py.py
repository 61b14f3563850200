"""Writes a metrics file with write_metrics (30 train steps, validation every 10, a resume from step 20) and reads it
with h5py alone: the format promise of io/metrics_file.h. The expected values are computed here from the formulas
in write_metrics.cpp. Usage: read_metrics_with_h5py.py WRITE_METRICS OUT_DIR"""
import math
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

writer, out = sys.argv[1], sys.argv[2]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
path = f"{out}/metrics.h5"
subprocess.run([writer, path], check=True)

TRAIN = ["step", "epoch", "loss_mask", "loss_dice", "loss_cldice", "llm_loss", "total", "lr", "grad_norm",
         "step_time_s", "samples_per_s", "tokens_per_s", "gpu_mem_gib", "host_mem_gib", "skipped_steps"]
VALIDATION = ["step", "dice_fov", "dice_full", "best_dice_fov", "loss_mask", "loss_dice", "samples"]


def train_row(s):
    loss_mask, loss_dice, loss_cldice = 1.0 / s, 0.5 / s + 0.1, 0.3 - 0.001 * s
    llm_loss = math.nan if s == 7 else 2.0 / (s + 1.0)
    return [s, math.floor((s - 1) / 10), loss_mask, loss_dice, loss_cldice, llm_loss,
            loss_mask + loss_dice + loss_cldice + llm_loss, 1e-4 * min(1.0, s / 5.0), 1.0 + 1.0 / s, 0.5,
            32.0 + s % 3, 1000.0 + s, 0.0, 3.0 + 0.01 * s, 1.0 if s >= 7 else 0.0]


def validation_row(s):
    dice_fov = {10: 0.6, 20: 0.8, 30: 0.75}[s]
    return [s, dice_fov, dice_fov - 0.05, 0.6 if s == 10 else 0.8, 4.0 / s, 1.0 - dice_fov, 20.0]


def check_table(f, name, columns, rows):
    group = f[name]
    assert list(group.attrs["columns"]) == columns, (name, list(group.attrs["columns"]))
    assert sorted(group.keys()) == sorted(columns + ["_checksum"]), (name, sorted(group.keys()))
    expected = np.array(rows, dtype=np.float64)
    # One content hash per row (xxHash64 of the row's float64 values in column order, as written).
    checksums = group["_checksum"]
    assert checksums.dtype == np.uint64 and checksums.shape == (len(rows),), (name, checksums.dtype, checksums.shape)
    for c, column in enumerate(columns):
        dataset = group[column]
        assert dataset.dtype == np.float64 and dataset.ndim == 1 and dataset.chunks is not None, (name, column)
        assert dataset.maxshape == (None,), (name, column, dataset.maxshape)
        values = dataset[()]
        # Exact equality, NaN where NaN was logged.
        assert np.array_equal(values, expected[:, c], equal_nan=True), (name, column, values, expected[:, c])


with h5py.File(path, "r") as f:
    assert f.attrs["format"] == "vesseltune-metrics", f.attrs["format"]
    assert int(f.attrs["format_version"]) == 1
    assert sorted(f.keys()) == ["train", "validation"], list(f.keys())
    check_table(f, "train", TRAIN, [train_row(s) for s in range(1, 31)])
    check_table(f, "validation", VALIDATION, [validation_row(s) for s in (10, 20, 30)])
print("h5py read 30 train rows and 3 validation rows")
