"""Runs write_eval_report and reads its HDF5 file with h5py alone (the format promise of eval/metrics_report.h).
The expected values are the hand values of the two 4x4 images of hand_images.h, worked out again here.
Usage: read_report_with_h5py.py WRITE_EVAL_REPORT OUT_DIR"""
import csv
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
subprocess.run([writer, out], check=True)

METRICS = ["dice", "iou", "sensitivity", "specificity", "accuracy", "precision", "cldice", "auc"]
COUNTS = ["tp", "fp", "fn", "tn", "skeleton_predicted", "skeleton_predicted_in_truth", "skeleton_truth",
          "skeleton_truth_in_predicted"]
# Image a: TP 3, FP 2, FN 1, TN 10; image b: TP 3, FP 1, FN 1, TN 11 (the FOV is the whole image).
EXPECTED = {  # metric: (a, b, pooled)
    "dice": (6 / 9, 6 / 8, 12 / 17),
    "iou": (3 / 6, 3 / 5, 6 / 11),
    "sensitivity": (3 / 4, 3 / 4, 6 / 8),
    "specificity": (10 / 12, 11 / 12, 21 / 24),
    "accuracy": (13 / 16, 14 / 16, 27 / 32),
    "precision": (3 / 5, 3 / 4, 6 / 9),
    "auc": (45 / 48, 40 / 48, 167 / 192),
}

with h5py.File(f"{out}/metrics.h5", "r") as f:
    assert f.attrs["format"] == "vesseltune-eval-metrics", f.attrs["format"]
    assert int(f.attrs["format_version"]) == 1
    assert float(f.attrs["threshold"]) == 0.5
    assert int(f.attrs["images"]) == 2
    assert list(f.attrs["metrics"]) == METRICS, list(f.attrs["metrics"])
    assert list(f.attrs["counts"]) == COUNTS, list(f.attrs["counts"])
    assert list(f.attrs["regions"]) == ["fov", "full"]
    assert "pooled" in f.attrs["definitions"]
    assert [n.decode() if isinstance(n, bytes) else n for n in f["images/name"][()]] == ["a", "b"]
    for region in ("fov", "full"):
        images = f[f"images/{region}"]
        assert sorted(images.keys()) == sorted(METRICS + COUNTS), sorted(images.keys())
        assert list(images["tp"][()]) == [3, 3] and list(images["fp"][()]) == [2, 1], region
        assert list(images["fn"][()]) == [1, 1] and list(images["tn"][()]) == [10, 11], region
        assert images["tp"].dtype == np.int64 and images["dice"].dtype == np.float64
        summary = f[f"summary/{region}"]
        assert int(summary.attrs["tp"]) == 6 and int(summary.attrs["tn"]) == 21
        assert list(summary["images_used"][()]) == [2] * len(METRICS)
        for metric, (a, b, pooled) in EXPECTED.items():
            row = METRICS.index(metric)
            assert np.allclose(images[metric][()], [a, b], rtol=0, atol=1e-15), (region, metric, images[metric][()])
            mean, sd = (a + b) / 2, abs(a - b) / math.sqrt(2)
            assert math.isclose(summary["per_image_mean"][row], mean, abs_tol=1e-15), (region, metric)
            assert math.isclose(summary["per_image_sd"][row], sd, abs_tol=1e-15), (region, metric)
            assert math.isclose(summary["pooled"][row], pooled, abs_tol=1e-15), (region, metric)

# The CSV files name the metrics exactly as the HDF5 file does.
with open(f"{out}/per_image.csv") as f:
    rows = list(csv.DictReader(f))
assert [(r["image"], r["region"]) for r in rows] == [("a", "fov"), ("a", "full"), ("b", "fov"), ("b", "full")]
assert float(rows[2]["dice"]) == 6 / 8 and rows[2]["tp"] == "3"
with open(f"{out}/summary.csv") as f:
    rows = {(r["region"], r["metric"]): r for r in csv.DictReader(f)}
assert math.isclose(float(rows[("full", "auc")]["pooled"]), 167 / 192, abs_tol=1e-15)
print("h5py read the eval report of 2 images")
