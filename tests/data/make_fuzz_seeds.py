#!/usr/bin/env python3
"""Seed corpus of the image decoder fuzzer (tests/data/fuzz_image_decoders.cpp): an 8x6 image in every format the
harness picks by its first byte (index into its extension list), written with Pillow.

  make_fuzz_seeds.py CORPUS_DIR
"""
import gzip
import io
import os
import sys

from PIL import Image

EXTENSIONS = [".tif", ".png", ".gif", ".jpg", ".ppm", ".pgm", ".bmp", ".ppm.gz"]
FORMATS = {".tif": ("TIFF", "RGB"), ".png": ("PNG", "RGB"), ".gif": ("GIF", "P"), ".jpg": ("JPEG", "RGB"),
           ".ppm": ("PPM", "RGB"), ".pgm": ("PPM", "L"), ".bmp": ("BMP", "RGB"), ".ppm.gz": ("PPM", "RGB")}


def main(out):
    os.makedirs(out, exist_ok=True)
    image = Image.new("RGB", (8, 6))
    image.putdata([(x * 30, y * 40, (x + y) * 15) for y in range(6) for x in range(8)])
    for index, extension in enumerate(EXTENSIONS):
        fmt, mode = FORMATS[extension]
        buffer = io.BytesIO()
        image.convert(mode).save(buffer, fmt)
        data = buffer.getvalue()
        if extension.endswith(".gz"):
            data = gzip.compress(data)
        with open(os.path.join(out, "seed" + extension.replace(".", "_")), "wb") as f:
            f.write(bytes([index]) + data)


if __name__ == "__main__":
    main(sys.argv[1])
