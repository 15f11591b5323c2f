"""Time per slice by its distance from the prompted slice, for volumes of several lengths: does
per-slice time grow with length (W4 against W1), or with the position in a pass?

sam2 attends to up to ``num_maskmem`` mask memories and ``max_obj_ptrs_in_encoder`` object
pointers, so the first slices of a pass have fewer to attend to.  Each volume runs after a
warm-up run on a short one.

    python benchmarks/slice_times.py [--slices 96 512] [--results FOLDER]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import box_prompts, case_from_child, medsam2  # noqa: E402

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession  # noqa: E402

BANDS = [(0, 1), (1, 8), (8, 17), (17, 48), (48, 10 ** 6)]  # positions in a pass (0: the prompted slice)


def slice_times(model, slices: int) -> dict:
    volume, _, middle, box = case_from_child((slices, 512))
    stamps = []
    session = VolumeSession(model, volume, axis="k", window="soft-tissue")
    options = PropagationOptions(auto_stop=False, postprocess=None)
    started = time.perf_counter()
    session.propagate(box_prompts(box, middle), options,
                      on_progress=lambda done, total, index, name: stamps.append((name, index, time.perf_counter())))
    total = time.perf_counter() - started
    by_band = {band: [] for band in BANDS}
    last = started  # the passes run one after the other: each slice's time is since the one before
    for _, index, stamp in stamps:
        position = abs(index - middle)
        band = next(b for b in BANDS if b[0] <= position < b[1])
        by_band[band].append(1000 * (stamp - last))
        last = stamp
    return {"slices": slices + 1, "seconds": total, "ms_per_slice": 1000 * total / (slices + 1),
            "bands": {_label(lo, hi): {"n": len(v), "median_ms": statistics.median(v)}
                      for (lo, hi), v in by_band.items() if v}}


def _label(lo: int, hi: int) -> str:
    return f"{lo}" if hi == lo + 1 else f"{lo}+" if hi > 10 ** 5 else f"{lo}-{hi - 1}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[96, 512])
    parser.add_argument("--results", type=Path)
    args = parser.parse_args(argv)
    model = medsam2("auto")
    slice_times(model, 8)  # warm-up: first-call costs out of the way
    rows = {n: slice_times(model, n) for n in args.slices}
    bands = sorted({b for r in rows.values() for b in r["bands"]}, key=lambda b: int(b.split("-")[0].rstrip("+")))
    lines = ["| slices | total s | mean ms/slice | " + " | ".join(f"pos {b} median ms" for b in bands) + " |",
             "|---" * (3 + len(bands)) + "|"]
    for n, r in rows.items():
        cells = [f"{r['bands'][b]['median_ms']:.0f} (n={r['bands'][b]['n']})" if b in r["bands"] else "-"
                 for b in bands]
        lines.append(f"| {r['slices']} | {r['seconds']:.1f} | {r['ms_per_slice']:.0f} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "slice-times.json").write_text(json.dumps(rows, indent=1))
        (args.results / "slice-times.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
