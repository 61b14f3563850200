"""Writes the Pillow references that tests/data/test_resample.cpp compares vesseltune's resize against.
Sa2VA's SAM2 branch (DirectResize: PIL Image.resize, default BICUBIC) and InternVL's dynamic_preprocess
(Image.resize, then crops) both resize through Pillow, so Pillow's output is what the model saw in Python.
Run with Debian's python3-pil (Pillow 9.4): /usr/bin/python3 tests/data/make_resample_fixtures.py
Writes tests/data/fixtures/resample/: binary PPM/PGM files and cases.txt, one case per line:
  input_file out_height out_width row_step output_file
where output_file holds every row_step-th row of Pillow's output (row_step 1: all of it)."""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "resample")


def pattern(height, width, channels):
    """The image test_resample.cpp rebuilds: fast-varying (aliasing when shrunk) and with hard 0/255
    edges (the bicubic lobes overshoot and must clip)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    planes = [(x * x * 3 + y * y * 5 + x * y + c * 85) & 255 for c in range(channels)]
    image = np.stack(planes, axis=-1).astype(np.uint8)
    image[(x // 7 + y // 5) % 4 == 0] = 255
    image[(x // 11 + y // 3) % 5 == 0] = 0
    return image if channels == 3 else image[..., 0]


def save(name, array):
    Image.fromarray(array).save(os.path.join(OUT, name))  # .ppm / .pgm: binary P6 / P5


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.RandomState(3)
    noise = rng.randint(0, 256, size=(29, 28, 3), dtype=np.uint8)
    noise_grey = rng.randint(0, 256, size=(29, 28), dtype=np.uint8)
    smooth = np.clip(np.add.outer(np.arange(70) * 3, np.arange(105) * 2)[..., None] +
                     rng.randint(-40, 41, size=(70, 105, 3)), 0, 255).astype(np.uint8)
    save("noise.ppm", noise)
    save("noise_grey.pgm", noise_grey)
    save("smooth.ppm", smooth)
    cases = [
        # Small images at the real ratios: DRIVE 584x565 -> 1024 (up x1.8) and -> 448 (down x1.3),
        # HRF 2336x3504 -> 896x1344 grid (x2.6), -> 1024 (x2.3 / x3.4), -> 448 thumbnail (x5.2 / x7.8).
        ("noise.ppm", 53, 53), ("noise.ppm", 22, 22), ("noise_grey.pgm", 53, 22),
        ("smooth.ppm", 27, 40), ("smooth.ppm", 30, 30), ("smooth.ppm", 13, 13),
        # One axis kept (Pillow skips that pass), both up, one up and one down.
        ("noise.ppm", 29, 40), ("noise.ppm", 40, 28), ("noise.ppm", 15, 60), ("smooth.ppm", 140, 210),
    ]
    lines = []
    for source, h, w in cases:
        image = Image.open(os.path.join(OUT, source))
        name = f"{os.path.splitext(source)[0]}_{h}x{w}.{source.split('.')[-1]}"
        save(name, np.asarray(image.resize((w, h), Image.BICUBIC)))
        lines.append(f"{source} {h} {w} 1 {name}")
    # Full-size pattern images (rebuilt by the test, not stored) resized to the model's sizes; every
    # row_step-th output row is kept so the files stay small.
    for (ih, iw), outputs in {(584, 565): [(1024, 1024, 61), (448, 448, 29)],
                              (2336, 3504): [(1024, 1024, 67), (896, 1344, 53), (448, 448, 31)]}.items():
        image = Image.fromarray(pattern(ih, iw, 3))
        for h, w, step in outputs:
            rows = np.asarray(image.resize((w, h), Image.BICUBIC))[::step]
            name = f"pattern{ih}x{iw}_{h}x{w}_every{step}.ppm"
            save(name, np.ascontiguousarray(rows))
            lines.append(f"pattern:{ih}x{iw} {h} {w} {step} {name}")
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
