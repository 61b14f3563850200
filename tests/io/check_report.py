"""Runs vesseltune-report on a metrics file made by write_metrics and checks its PNGs with Pillow (size, drawn
pixels, curve colours), its printed lines (paths, summary, best validation Dice) and its errors (exit code 1, the
file named on stderr). Usage: check_report.py WRITE_METRICS VESSELTUNE_REPORT OUT_DIR"""
import os
import shutil
import subprocess
import sys

from PIL import Image

writer, report, out = sys.argv[1], sys.argv[2], sys.argv[3]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
metrics = f"{out}/metrics.h5"
subprocess.run([writer, metrics], check=True)

PLOTS = ["losses.png", "lr.png", "grad_norm.png", "throughput.png", "memory.png", "validation.png"]
WIDTH, HEIGHT = 1000, 600
# Curves in the colours report.cpp gives them (tab10), how many each plot has.
CURVES = {"losses.png": 5, "lr.png": 1, "grad_norm.png": 1, "throughput.png": 1, "memory.png": 2,
          "validation.png": 2}
TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
GRID = 220  # grey; its lines are anti-aliased into neighbouring greys


def run(*args):
    return subprocess.run([report, *args], capture_output=True, text=True)


# Default folder: plots/ beside the metrics file.
result = run(metrics)
assert result.returncode == 0, result.stderr
lines = result.stdout.splitlines()
plots_dir = os.path.realpath(f"{out}/plots")
assert [os.path.realpath(line) for line in lines[:len(PLOTS)]] == [f"{plots_dir}/{p}" for p in PLOTS], lines
for name in PLOTS:
    image = Image.open(f"{plots_dir}/{name}")
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT), (name, image.format, image.size)
    rgb = image.convert("RGB")
    background = rgb.getpixel((0, 0))
    assert background == (255, 255, 255), (name, background)
    counts = {colour: n for n, colour in rgb.getcolors(WIDTH * HEIGHT)}
    drawn = WIDTH * HEIGHT - counts[background]
    assert drawn > 0.01 * WIDTH * HEIGHT, (name, drawn)
    grid = sum(n for (r, g, b), n in counts.items() if r == g == b and GRID - 20 <= r <= GRID + 20)
    assert grid > 2000, (name, "no grid", grid)
    for colour in TAB10[:CURVES[name]]:
        assert counts.get(colour, 0) > 50, (name, colour, counts.get(colour, 0))
    for colour in TAB10[CURVES[name]:]:
        assert counts.get(colour, 0) == 0, (name, "unexpected curve", colour)

# The summary: every line after the paths is ours (nothing from PLplot on stdout). One section per table: its
# "NAME: N rows" line, the header, one line per column (rows, first, last, min, max).
summary = lines[len(PLOTS):]
assert summary[-1] == "best validation dice_fov: 0.8 at step 20", summary[-1]
sections = {}
for line in summary[:-1]:
    if not line.startswith("  "):
        name, rows = line.split(": ")
        sections[name] = {"rows": rows}
    elif line.split()[0] != "column":
        sections[name][line.split()[0]] = [float(v) for v in line.split()[1:]]
    else:
        assert line.split() == ["column", "rows", "first", "last", "min", "max"], line
assert list(sections) == ["train", "validation"], list(sections)
train, validation = sections["train"], sections["validation"]
assert train["rows"] == "30 rows" and len(train) == 1 + 15, train
assert validation["rows"] == "3 rows" and len(validation) == 1 + 7, validation


def close(a, b):
    return all(abs(x - y) <= 1e-5 * max(1.0, abs(y)) for x, y in zip(a, b)) and len(a) == len(b)


# rows, first, last, min, max; printed with 6 significant digits.
assert close(train["step"], [30, 1, 30, 1, 30]), train["step"]
assert close(train["lr"], [30, 2e-5, 1e-4, 2e-5, 1e-4]), train["lr"]  # 1e-4 * min(1, s / 5)
assert close(train["loss_mask"], [30, 1, 1 / 30, 1 / 30, 1]), train["loss_mask"]  # the stale -1 rows are gone
assert close(train["llm_loss"], [30, 1, 2 / 31, 2 / 31, 1]), train["llm_loss"]  # NaN at step 7 left out
assert close(train["samples_per_s"], [30, 33, 32, 32, 34]), train["samples_per_s"]  # 32 + s % 3
assert close(validation["dice_fov"], [3, 0.6, 0.75, 0.6, 0.8]), validation["dice_fov"]
assert close(validation["samples"], [3, 20, 20, 20, 20]), validation["samples"]

# --out and --quiet.
result = run(metrics, "--out", f"{out}/elsewhere", "--quiet")
assert result.returncode == 0 and result.stdout == "", (result.returncode, result.stdout)
assert sorted(os.listdir(f"{out}/elsewhere")) == sorted(PLOTS)

# Errors name the file and exit with 1.
for bad in [f"{out}/absent.h5", f"{out}/garbage.h5"]:
    if bad.endswith("garbage.h5"):
        open(bad, "w").write("not a metrics file")
    result = run(bad)
    assert result.returncode == 1, (bad, result.returncode)
    assert bad in result.stderr and result.stdout == "", (bad, result.stderr, result.stdout)
print("vesseltune-report: 6 plots and the summary checked")
