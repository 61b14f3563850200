"""Packs a small synthetic set with vesseltune-pack and reads it back with h5py alone: the format promise
(docs/data_format.md). Usage: read_with_h5py.py VESSELTUNE_PACK OUT_DIR"""
import json
import shutil
import subprocess
import sys
import zlib

import h5py
import numpy as np

pack, out = sys.argv[1], sys.argv[2]


def read_set(folder, options, image_deflated, masks_deflated):
    """Packs with OPTIONS into FOLDER, checks which datasets are deflated, and returns {(shard, key): (image, mask,
    fov)} read with h5py."""
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([pack, "synth", folder, "--count", "5", "--size", "80", "--samples-per-shard", "2",
                    "--val-fraction", "0.2"] + options, check=True)
    manifest = json.load(open(f"{folder}/manifest.json"))
    assert manifest["format"] == "vesseltune-shard" and manifest["format_version"] == 1, manifest
    assert manifest["splits"] == {"train": 4, "val": 1}, manifest["splits"]
    samples = {}
    for shard in manifest["shards"]:
        path = f"{folder}/{shard['file']}"
        data = open(path, "rb").read()
        assert len(data) == shard["bytes"], path
        assert format(zlib.crc32(data), "08x") == shard["crc32"], path
        with h5py.File(path, "r") as f:
            assert f.attrs["format"] == "vesseltune-shard", path
            assert int(f.attrs["format_version"]) == 1 and int(f.attrs["num_samples"]) == len(shard["samples"])
            for entry in shard["samples"]:
                g = f["samples"][entry["key"]]
                assert (g["image"].compression == "gzip") == image_deflated, (options, g["image"].compression)
                assert (g["mask"].compression == "gzip") == masks_deflated, (options, g["mask"].compression)
                assert (g["fov"].compression == "gzip") == masks_deflated, (options, g["fov"].compression)
                image, mask, fov = g["image"][()], g["mask"][()], g["fov"][()]
                h, w = entry["height"], entry["width"]
                assert image.shape == (h, w, 3) and image.dtype == np.uint8, image.shape
                assert mask.shape == (h, w) and fov.shape == (h, w)
                assert set(np.unique(mask)) <= {0, 1} and set(np.unique(fov)) <= {0, 1}
                assert mask.sum() > 0
                assert list(g.attrs["texts"]) == ["blood vessels"], g.attrs["texts"]
                assert g.attrs["split"] == shard["split"] and g.attrs["dataset"] == "synthetic"
                assert g.attrs["source"].startswith("synthetic:"), g.attrs["source"]
                assert list(g.attrs["original_size"]) == [h, w]
                samples[(shard["file"], entry["key"])] = (image, mask, fov)
    assert len(samples) == 5, len(samples)
    return samples


default = read_set(f"{out}/default", [], image_deflated=False, masks_deflated=True)
deflated = read_set(f"{out}/deflated", ["--image-compression", "4"], image_deflated=True, masks_deflated=True)
stored = read_set(f"{out}/stored", ["--compression", "0"], image_deflated=False, masks_deflated=False)
for other in (deflated, stored):
    assert other.keys() == default.keys()
    for key in default:
        assert all(np.array_equal(a, b) for a, b in zip(default[key], other[key])), key
print(f"h5py read {len(default)} samples with stored and deflated (libdeflate's zlib streams) datasets, equal pixels")
