"""Cases per hour of ``batch`` embedded, ``batch --ray local --workers 2`` and a loop over the
Python API (load_model once, then read, segment and write each case), on the same cases and model,
each timed from nothing (model load and, for Ray, the cluster's start included); per-case overhead
is a mode's extra seconds over the API loop, per case (issue 19):

    python benchmarks/batch_throughput.py [--cases 6]

micro (its shipped weights) and the MedSAM2 architecture with random weights (time does not depend
on the weights; auto-stop off so every case runs all its slices).
Writes benchmarks/results/batch-throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SegmentWithSAM2Lib import api
from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.core.metrics import middle_slice_box
from SegmentWithSAM2Lib.io.prompt_file import read_prompt_file
from SegmentWithSAM2Lib.machine import describe_machine, one_line

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {"micro": ["--model", "micro"], "medsam2 (random)": ["--model", "medsam2-latest", "--random-init"]}
SHAPE = (16, 160, 160)


def make_cases(root: Path, count: int) -> tuple[Path, Path]:
    images, prompts = root / "images", root / "prompts"
    images.mkdir()
    prompts.mkdir()
    rng = np.random.default_rng(0)
    grid = np.indices(SHAPE, dtype=np.float32)
    for n in range(count):
        organ = (((grid[0] - 8) / 6) ** 2 + ((grid[1] - 70 - 3 * n) / 30) ** 2 + ((grid[2] - 80) / 25) ** 2 <= 1)
        image = sitk.GetImageFromArray((40 + 120 * organ + rng.normal(0, 12, SHAPE)).astype(np.int16))
        image.SetSpacing((0.8, 0.8, 2.5))
        sitk.WriteImage(image, str(images / f"case{n}.nii.gz"))
        (prompts / f"case{n}.json").write_text(json.dumps(middle_slice_box(organ.astype(np.uint8), 1)))
    return images, prompts


def api_loop(images: Path, prompts: Path, out: Path, model_args: list) -> None:
    model = api.load_model(model_args[1], random_init="--random-init" in model_args, device="cpu")
    out.mkdir()
    for image in sorted(images.iterdir()):
        case = image.name.split(".")[0]
        volume = api.read_volume(image)
        result = api.segment(model, volume, read_prompt_file(prompts / f"{case}.json", volume), auto_stop=False)
        api.write_result(result, out / f"{case}.nii.gz")


def batch(images: Path, prompts: Path, out: Path, model_args: list, *extra) -> None:
    with contextlib.redirect_stderr(io.StringIO()):
        code = main(["batch", str(images), "--prompts", str(prompts), "--output", str(out), "--device", "cpu",
                     "--no-auto-stop", *model_args, *extra])
    if code != 0:
        raise SystemExit(f"batch {' '.join(extra)} failed ({code}); see {out}/manifest.jsonl")


def timed(run) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def measure(count: int) -> list[dict]:
    rows = []
    for name, model_args in MODELS.items():
        root = Path(tempfile.mkdtemp(prefix="batch-bench-"))
        images, prompts = make_cases(root, count)
        modes = {"API loop": lambda: api_loop(images, prompts, root / "api", model_args),
                 "batch (embedded)": lambda: batch(images, prompts, root / "embedded", model_args),
                 "batch --ray local --workers 2": lambda: batch(images, prompts, root / "ray", model_args,
                                                                "--ray", "local", "--workers", "2")}
        seconds = {mode: timed(run) for mode, run in modes.items()}
        for mode, s in seconds.items():
            rows.append({"model": name, "mode": mode, "cases": count, "seconds": round(s, 2),
                         "cases_per_hour": round(count * 3600 / s), "ratio_to_api": round(seconds["API loop"] / s, 2),
                         "overhead_per_case_s": round((s - seconds["API loop"]) / count, 2)})
        shutil.rmtree(root)
    return rows


def markdown(rows, machine) -> str:
    lines = ["| model | mode | cases | seconds | cases/hour | speed vs API loop | overhead per case (s) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['mode']} | {r['cases']} | {r['seconds']:.1f} | {r['cases_per_hour']} | "
              f"{r['ratio_to_api']:.2f} | {r['overhead_per_case_s']:+.2f} |" for r in rows]
    return "\n".join(lines) + f"\n\nVolumes {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, auto-stop off. Machine: {one_line(machine)}"


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    args = parser.parse_args(argv)
    machine = describe_machine()
    rows = measure(args.cases)
    table = markdown(rows, machine)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batch-throughput.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    (RESULTS / "batch-throughput.md").write_text(f"# Batch throughput ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
                                                 + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run())
