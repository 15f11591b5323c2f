"""Per-slice time of the lite architecture on 512x512 slices, end to end through the engine,
beside the MedSAM2 architecture (random weights: speed does not depend on them), same run, each
in its default CPU precision and in fp32 (issue 17: lite no slower than MedSAM2).

    python benchmarks/lite_speed.py [--slices 12] [--repeats 1]

lite runs with LiteMedSAM's weights and whatever memory it has (the registry's ``lite`` once it
is trained, else the untrained transplant): the work per slice is the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
from SegmentWithSAM2Lib.core.metrics import middle_slice_box
from SegmentWithSAM2Lib.core.model import pick_precision
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.machine import describe_machine, one_line
from SegmentWithSAM2Lib.synthetic import demo_ct
from SegmentWithSAM2Lib.training.litemedsam_slices import litemedsam_model

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(RESULTS.parent))
from micro_speed import _median  # noqa: E402  (a warm-up run, then the median)


def models():
    """(name, model) for each architecture and precision measured."""
    auto = pick_precision("auto", __import__("torch").device("cpu"))
    chosen = ["fp32"] if auto == "fp32" else [auto, "fp32"]
    for precision in chosen:
        yield f"MedSAM2 architecture {precision}", load_model(config="medsam2_512.yaml", random_init=True,
                                                              device="cpu", precision=precision)
    lite = litemedsam_model()
    yield "lite fp32", lite
    if auto != "fp32":
        yield f"lite {auto}", load_model(config="lite_256.yaml", checkpoint=_saved(lite), device="cpu", precision=auto)


def _saved(model) -> Path:
    import tempfile

    import torch

    path = Path(tempfile.mkdtemp()) / "lite.pt"
    torch.save({"model": model.predictor.state_dict()}, path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    volume, truth = demo_ct((args.slices, 512, 512), spacing_ijk=(0.7, 0.7, 2.5))
    prompts = middle_slice_box(truth, 1)  # one box on the object's middle slice
    options = PropagationOptions(auto_stop=False, postprocess=None)  # every slice, like for like
    slices_run = args.slices + 1  # the prompted slice runs in both directions
    timings = {}
    for name, model in models():
        timings[name] = _median(lambda: VolumeSession(model, volume, axis="k", window="soft-tissue").propagate(
            prompts, options), args.repeats)
    baseline = next(t for name, t in timings.items() if name.startswith("MedSAM2"))
    rows_out = [{"method": name, "seconds": t, "s_per_slice": t / slices_run, "x_medsam2": baseline / t}
                for name, t in timings.items()]
    table = [f"lite vs MedSAM2 architecture, {args.slices} slices of 512x512, end to end, median of {args.repeats}; "
             f"{one_line(describe_machine())}", "", "| method | s | s/slice | × MedSAM2 (first row) |", "|---|---|---|---|"]
    table += [f"| {r['method']} | {r['seconds']:.1f} | {r['s_per_slice']:.2f} | {r['x_medsam2']:.2f} |" for r in rows_out]
    print("\n".join(table))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lite-speed.json").write_text(json.dumps({"machine": describe_machine(), "rows": rows_out}, indent=2))
    (RESULTS / "lite-speed.md").write_text("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
