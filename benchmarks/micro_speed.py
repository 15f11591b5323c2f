"""Per-slice time of the bundled micro model on 512x512 slices: the engine in fp32 and bf16
against sam2's official predictor (fp32, in-memory frames) on the same weights, same run.

    python benchmarks/micro_speed.py [--slices 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402
from workloads import soft_tissue  # noqa: E402

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession  # noqa: E402
from SegmentWithSAM2Lib.io.models import load_model  # noqa: E402
from SegmentWithSAM2Lib.machine import describe_machine, one_line  # noqa: E402
from SegmentWithSAM2Lib.synthetic import demo_ct as synthetic_ct  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    volume, truth = synthetic_ct((args.slices, 512, 512), spacing_ijk=(0.7, 0.7, 2.5))
    middle = args.slices // 2
    rows, cols = np.nonzero(truth[middle])
    box = [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]
    prompts = {"space": "IJK", "objects": [{"boxes": [{"corner1": [box[0], box[1], middle],
                                                       "corner2": [box[2], box[3], middle]}]}]}
    options = PropagationOptions(auto_stop=False, postprocess=None)  # like for like with official
    slices_run = args.slices + 1  # the prompted slice runs in both directions
    timings = {}
    for precision in ("fp32", "bf16"):
        model = load_model("micro", device="cpu", precision=precision)
        # a fresh session each run: end to end, no features cached between runs (as for official)
        timings[f"engine {precision}"] = _median(
            lambda: VolumeSession(model, volume, axis="k", window="soft-tissue").propagate(prompts, options),
            args.repeats)
    model = load_model("micro", device="cpu", precision="fp32")
    window = soft_tissue(volume)  # the engine's window, for the official baseline
    timings["official fp32"] = _median(
        lambda: baselines.official(model.predictor, volume.array, window, middle, box), args.repeats)
    rows_out = [{"method": name, "seconds": t, "ms_per_slice": 1000 * t / slices_run,
                 "speedup_vs_official": timings["official fp32"] / t} for name, t in timings.items()]
    machine = describe_machine()
    table = [f"micro on {args.slices} slices of 512x512, median of {args.repeats}; {one_line(machine)}", "",
             "| method | s | ms/slice | × official |", "|---|---|---|---|"]
    table += [f"| {r['method']} | {r['seconds']:.2f} | {r['ms_per_slice']:.0f} | {r['speedup_vs_official']:.2f} |"
              for r in rows_out]
    print("\n".join(table))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "micro-speed.json").write_text(json.dumps({"machine": machine, "slices": args.slices,
                                                          "rows": rows_out}, indent=2))
    (RESULTS / "micro-speed.md").write_text("\n".join(table) + "\n")
    return 0


def _median(run, repeats: int) -> float:
    run()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
