"""Click -> preview latency of the SAM2 Segment Editor effect, through the code the effect runs on
its worker thread (mrml.editing.EditSession.click: the prompt added, the slice's 2D prediction),
on this CPU, for micro and the MedSAM2 architecture (random weights: time does not depend on them),
each in its default CPU precision (issue 18):

    python benchmarks/click_latency.py [--clicks 5]

"encoded slice": a further click on a slice already clicked (its features cached); "new slice":
the first click on a slice (the slice is encoded).  Median of ``--clicks`` clicks after one warm-up.
Writes benchmarks/results/click-latency.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.core.volume import Volume
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.machine import describe_machine, one_line
from SegmentWithSAM2Lib.mrml.editing import EditSession
from SegmentWithSAM2Lib.synthetic import demo_ct

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS_MS = {"encoded slice": 60, "new slice": 150}  # the new-slice target is micro's


def cases():
    """(name, volume, organ centre ijk): the demo CT (192 x 192) and a 512 x 512 CT."""
    volume, truth = demo_ct()
    yield "demo CT 192x192", volume, _centre(truth)
    rng = np.random.default_rng(0)
    grid = np.indices((24, 512, 512), dtype=np.float32)
    organ = ((grid[0] - 12) / 8) ** 2 + ((grid[1] - 256) / 90) ** 2 + ((grid[2] - 240) / 70) ** 2 <= 1
    array = (40 + 120 * organ + rng.normal(0, 12, organ.shape)).astype(np.float32)
    yield "CT 512x512", Volume(array, np.diag([0.7, 0.7, 2.5, 1.0]), {"modality": "CT"}), _centre(organ)


def _centre(mask):
    k, j, i = (int(np.median(a)) for a in np.nonzero(mask))
    return i, j, k


def latencies(model, volume, centre, clicks):
    """{situation: median ms} of clicks on new slices and on an encoded one."""
    session = EditSession(VolumeSession(model, volume, axis="k", window="40,400"), PropagationOptions(auto_stop=False))
    i, j, k = centre
    timed = lambda *click: _ms(lambda: session.click("organ", *click))  # noqa: E731
    timed((i, j, k), True)  # warm-up (and slice k encoded)
    new = [timed((i, j, k + n), True) for n in range(1, clicks + 1)]
    encoded = [timed((i + n, j, k), True) for n in range(1, clicks + 1)]
    return {"encoded slice": statistics.median(encoded), "new slice": statistics.median(new)}


def _ms(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5)
    args = parser.parse_args(argv)
    models = {"micro": load_model("micro", device="cpu"),
              "MedSAM2 architecture": load_model(config="medsam2_512.yaml", random_init=True, device="cpu")}
    rows = []
    for name, volume, centre in cases():
        for model_name, model in models.items():
            for situation, ms in latencies(model, volume, centre, args.clicks).items():
                rows.append({"model": model_name, "precision": model.precision, "case": name,
                             "situation": situation, "ms": round(ms, 1)})
    machine = one_line(describe_machine())
    lines = ["| model | precision | case | click on | target (ms) | ms |", "|---|---|---|---|---|---|"]
    for r in rows:
        target = TARGETS_MS[r["situation"]] if r["situation"] == "encoded slice" or r["model"] == "micro" else "-"
        lines.append(f"| {r['model']} | {r['precision']} | {r['case']} | {r['situation']} | {target} | {r['ms']} |")
    table = "\n".join(lines) + f"\n\nMachine: {machine}\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "click-latency.md").write_text(table)
    (RESULTS / "click-latency.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
