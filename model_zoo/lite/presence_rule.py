"""Choose the thresholds of lite's presence rule (core/lite_presence.py) on training data only:

    python model_zoo/lite/presence_rule.py collect --output runs/lite-presence    # ~30 min on 2 cores
    python model_zoo/lite/presence_rule.py choose --records runs/lite-presence

``collect`` runs the shipped lite with the rule off from one box on each object's middle slice,
auto-stop off, over the object's slices and 12 beyond each end, and writes per tracked slice the
object score, the mask's area and the two cosines the rule reads (records-*.jsonl): Colin27 + AAL
(the 12 structures lite trains on), the 8 synthetic training volumes (seed 0), and MNI152 + AAL
(validation, never chosen on).  No pyradiomics case: those are evaluation data.

``choose`` replays auto-stop (3 slices in a row without the object end a direction) on the records
for a grid of thresholds, with the contrast bound fixed or raised to the prompted slice's own, and
picks, on the training records, the rule with the most objects ending within 3 slices past either
end, then the most of the objects' mask area kept; it prints the table (presence-rule.md) with
the MNI152 figures of the same rules.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from SegmentWithSAM2Lib.options import STOP_AFTER

MARGIN = 12  # slices tracked beyond each end of an object
LIKENESS = (0.0, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)
CONTRAST = (0.8, 0.85, 0.9, 0.95, 1.01)  # 1.01: no contrast test
COLIN_LABELS = (37, 38, 41, 42, 71, 72, 73, 74, 75, 76, 77, 78)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    collect = sub.add_parser("collect")
    collect.add_argument("--output", type=Path, required=True)
    collect.add_argument("--sets", default="colin,synthetic,mni")
    choose = sub.add_parser("choose")
    choose.add_argument("--records", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "collect":
        args.output.mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            collect_set(name, args.output / f"records-{name}.jsonl")
        return 0
    print(choice_table(args.records))
    return 0


def collect_set(name: str, path: Path) -> None:
    from SegmentWithSAM2Lib.io.models import load_model

    model = load_model("lite")
    model.predictor.presence = None  # the rule's inputs, not its effect
    with path.open("w") as out:
        for case, volume, labels, label in _cases(name):
            for row in _tracked(model, volume, labels, label):
                out.write(json.dumps({"case": case, **row}) + "\n")
            print(name, case, flush=True)


def _cases(name):
    from SegmentWithSAM2Lib.io.volume_files import read_volume
    from SegmentWithSAM2Lib.synthetic import synthetic_volume
    from SegmentWithSAM2Lib.training.atlases import MRICRON_TEMPLATES, mni152_aal

    if name == "synthetic":
        rng = np.random.default_rng(0)  # the training run's 8 volumes (cli train --synthetic 8 --seed 0)
        for n in range(8):
            volume, labels = synthetic_volume(rng)
            yield from ((f"syn{n}-{v}", volume, labels, v) for v in (1, 2) if (labels == v).any())
        return
    if name == "colin":
        pair, values = (MRICRON_TEMPLATES / "ch2.nii.gz", MRICRON_TEMPLATES / "aal.nii.gz"), COLIN_LABELS
    else:
        from SegmentWithSAM2Lib.io.model_zoo import cache_dir
        from SegmentWithSAM2Lib.training.atlases import VALIDATION_LABELS

        folder = mni152_aal(cache_dir() / "atlases").parent
        pair, values = (folder / "mni152.nii.gz", folder / "mni152_aal.nii.gz"), VALIDATION_LABELS
    volume, labels = read_volume(pair[0]), np.asarray(read_volume(pair[1]).array).astype(np.uint16)
    yield from ((f"{name}-{v}", volume, labels, v) for v in values)


def _tracked(model, volume, labels, label):
    """Per tracked slice: frame, whether the label is there, object score, mask area (64-px grid)
    and the cosines to the prompted slice's prototype (likeness) and to the ring (contrast)."""
    from SegmentWithSAM2Lib.core import lite
    from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession
    from SegmentWithSAM2Lib.core.lite_presence import masked_means
    from SegmentWithSAM2Lib.training.evaluation import prompt_for

    steps, original = [], lite.LitePredictor._track_step

    def recording(self, frame_idx, is_init, feats, pos, sizes, points, masks, *rest):
        result = original(self, frame_idx, is_init, feats, pos, sizes, points, masks, *rest)
        low_res = result[1][3]
        inside, around = masked_means(feats[-1], low_res)
        area = float((F.interpolate(low_res.float(), size=(64, 64), mode="bilinear") > 0).sum())
        steps.append((frame_idx, points is not None or masks is not None, float(result[1][6].max()), area,
                      inside[0], around[0]))
        return result

    session = VolumeSession(model, volume, axis="k", window="auto")
    present = session.plan.view_of(labels == label).any(axis=(1, 2))
    slices = np.nonzero(present)[0]
    span = (max(int(slices[0]) - MARGIN, 0), min(int(slices[-1]) + MARGIN, len(present) - 1))
    lite.LitePredictor._track_step = recording
    try:
        session.propagate(prompt_for(labels, label, "box"), PropagationOptions(auto_stop=False, slice_range=span))
    finally:
        lite.LitePredictor._track_step = original
    cond = next(s for s in steps if s[1])
    cosine = lambda a, b: float(F.cosine_similarity(a, b, dim=0))  # noqa: E731
    cond_contrast = cosine(cond[4], cond[5])
    rows = {}
    for frame, prompted, score, area, inside, around in steps:
        if not prompted and frame not in rows:
            rows[frame] = {"frame": frame, "cond": cond[0], "present": bool(present[frame]), "score": score,
                           "area": area, "likeness": cosine(inside, cond[4]) if area else 0.0,
                           "contrast": cosine(inside, around) if area else 1.0, "cond_contrast": cond_contrast}
    return list(rows.values())


def replay(frames: dict, likeness: float, contrast: float, relative: bool):
    """(share of the object's mask area kept, slices past its ends) of auto-stop with the rule;
    ``relative``: the contrast bound raised to the prompted slice's own (core.lite_presence's)."""
    first = next(iter(frames.values()))
    cond = first["cond"]
    contrast = max(contrast, first["cond_contrast"]) if relative else contrast
    inside = [f for f, r in frames.items() if r["present"]] + [cond]
    kept = total = 0.0
    past = 0
    for step in (1, -1):
        absent, frame, last = 0, cond + step, cond
        while frame in frames:
            r, last = frames[frame], frame
            there = r["score"] > 0 and r["area"] > 0 and r["likeness"] >= likeness and r["contrast"] <= contrast
            if r["present"]:
                total, kept = total + r["area"], kept + (r["area"] if there else 0.0)
            absent = 0 if there else absent + 1
            frame += step
            if absent >= STOP_AFTER:
                break
        total += sum(frames[f]["area"] for f in frames if frames[f]["present"] and (f - frame) * step >= 0)
        past = max(past, last - max(inside) if step > 0 else min(inside) - last)
    return kept / max(total, 1e-9), past


def _scores(records: list[dict], likeness, contrast, relative):
    cases = {}
    for r in records:
        cases.setdefault(r["case"], {})[r["frame"]] = r
    replays = [replay(frames, likeness, contrast, relative) for frames in cases.values()]
    return (float(np.mean([p <= 3 for _, p in replays])), float(np.mean([k for k, _ in replays])),
            [p for _, p in replays])


def choice_table(folder: Path) -> str:
    read = lambda name: [json.loads(line) for line in (folder / f"records-{name}.jsonl").open()]  # noqa: E731
    training, validation = read("colin") + read("synthetic"), read("mni")
    grid = {(s, c, r): _scores(training, s, c, r) for s in LIKENESS for c in CONTRAST for r in (False, True)}
    best = max(grid, key=lambda k: grid[k][:2])
    shown = sorted(grid, key=lambda k: grid[k][:2], reverse=True)[:8] + [(0.0, 1.01, False)]
    lines = ["| likeness >= | contrast <= | or the prompt's | training: within 3 past the end | training: area kept | "
             "MNI152: within 3 | MNI152: area kept | MNI152: past end (41, 71, 75, 77) |", "|---|---|---|---|---|---|---|---|"]
    for key in shown:
        within, kept, _ = grid[key]
        v_within, v_kept, v_past = _scores(validation, *key)
        mark = " (chosen)" if key == best else " (no rule)" if key == (0.0, 1.01, False) else ""
        lines.append(f"| {key[0]:.2f}{mark} | {key[1]:.2f} | {'yes' if key[2] else 'no'} | {within:.2f} | {kept:.3f} | "
                     f"{v_within:.2f} | {v_kept:.3f} | {', '.join(map(str, v_past))} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
