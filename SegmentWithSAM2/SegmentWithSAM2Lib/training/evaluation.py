"""Evaluation: Dice, 95 % Hausdorff distance and normalized surface distance (MONAI's metrics,
in millimetres with the volume's spacing) per case, for the engine and for a classical baseline
run from the same prompt (SimpleITK's confidence-connected region growing from the box centre).

Protocols: ``box`` — one box on the object's middle slice (RECIST-like, as in MedSAM2's papers);
``point`` — one positive point at the object's deepest pixel on that slice; ``corrector`` — the
box, then up to N rounds of one click on the worst slice (positive in the largest missed part,
negative in the largest leak, at its deepest pixel) and a re-propagation that corrects the
previous result; Dice is reported after every round with the number of clicks.  The baseline
gets the same treatment from its own errors (positive clicks become extra seeds; region growing
has no use for negative ones).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy import ndimage

from ..core.engine import PropagationOptions, VolumeSession
from ..core.metrics import dice, middle_slice_box
from ..core.model import LoadedModel
from ..errors import SegmentWithSAM2Error
from .litemedsam_slices import litemedsam_slices_mask

NSD_TOLERANCE_MM = 2.0


def prompt_for(labels: np.ndarray, label: int, protocol: str) -> dict:
    prompts = middle_slice_box(labels, label)  # also the corrector's first prompt
    if protocol == "point":
        middle = prompts["objects"][0]["boxes"][0]["corner1"][2]
        depth = ndimage.distance_transform_edt(labels[middle] == label)
        j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
        prompts["objects"][0] = {"label": label, "points": [{"position": [int(i), int(j), middle], "positive": True}]}
    return prompts


def scores(prediction: np.ndarray, truth: np.ndarray, spacing_kji) -> dict:
    """Dice, HD95 (mm) and NSD at 2 mm (MONAI's) between two boolean volumes [k, j, i]."""
    if not prediction.any() or not truth.any():
        return {"dice": dice(prediction, truth), "hd95": float("inf"), "nsd": 0.0}
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    p = torch.from_numpy(prediction.astype(np.float32))[None, None]
    t = torch.from_numpy(truth.astype(np.float32))[None, None]
    onehot = lambda x: torch.cat([1 - x, x], dim=1)  # noqa: E731  (background, object)
    hd95 = float(compute_hausdorff_distance(onehot(p), onehot(t), percentile=95, spacing=list(spacing_kji))[0, 0])
    nsd = float(compute_surface_dice(onehot(p), onehot(t), [NSD_TOLERANCE_MM], spacing=list(spacing_kji))[0, 0])
    return {"dice": dice(prediction, truth), "hd95": hd95, "nsd": nsd}


def engine_mask(model, volume, labels, label, protocol, axis="k", window="auto") -> np.ndarray:
    return engine_run(model, volume, labels, label, protocol, axis, window)["mask"]


def engine_run(model, volume, labels, label, protocol, axis="k", window="auto") -> dict:
    """The engine's mask from the protocol's prompt, the slices it ran through, how far past the
    object's ends it went, and its seconds (frames, features and propagation)."""
    started = time.perf_counter()
    session = VolumeSession(model, volume, axis=axis, window=window)
    result = session.propagate(prompt_for(labels, label, protocol), PropagationOptions())
    return {"mask": result.labelmap == label, **reach(result, session.plan.view_of(labels == label)),
            "seconds": time.perf_counter() - started}


def reach(result, truth_view: np.ndarray) -> dict:
    """Slices run through and ``past_end``: how many slices beyond the object's first or last one
    a direction went on (0: it stopped within the object's slices)."""
    present = np.nonzero(truth_view.any(axis=(1, 2)))[0]
    past = [0]
    if "forward" in result.reached:
        past.append(result.reached["forward"] - int(present.max()))
    if "backward" in result.reached:
        past.append(int(present.min()) - result.reached["backward"])
    return {"slices": sum(result.slices_processed.values()), "past_end": max(past)}


def chain_reach(mask: np.ndarray, truth: np.ndarray) -> dict:
    """``reach`` of a slice-by-slice chain on axis k that stops at its first empty slice: it ran
    through its masked slices and, where it stopped inside the volume, one empty slice more."""
    masked, present = np.nonzero(mask.any(axis=(1, 2)))[0], np.nonzero(truth.any(axis=(1, 2)))[0]
    if masked.size == 0:
        return {"slices": 1, "past_end": 0}
    low, high = max(int(masked.min()) - 1, 0), min(int(masked.max()) + 1, mask.shape[0] - 1)
    return {"slices": high - low + 1, "past_end": max(high - int(present.max()), int(present.min()) - low, 0)}


def region_growing_mask(volume, labels, label, extra_seeds=()) -> np.ndarray:
    """The classical baseline: confidence-connected growing from the prompt's box centre
    (and any further seed voxels (i, j, k))."""
    import SimpleITK as sitk

    box = middle_slice_box(labels, label)["objects"][0]["boxes"][0]
    seed = [int(round((a + b) / 2)) for a, b in zip(box["corner1"], box["corner2"])]
    image = sitk.GetImageFromArray(np.asarray(volume.array, dtype=np.float32))
    grown = sitk.ConfidenceConnected(image, seedList=[tuple(seed), *map(tuple, extra_seeds)], numberOfIterations=2,
                                     multiplier=2.0, initialNeighborhoodRadius=1, replaceValue=1)
    return sitk.GetArrayFromImage(grown).astype(bool)


def corrective_click(prediction: np.ndarray, truth: np.ndarray):
    """The click a user would make: on the slice with the most wrong voxels, in its largest
    error region (missed -> positive, leaked -> negative), at the pixel deepest inside it;
    None when nothing is wrong."""
    wrong = prediction != truth
    if not wrong.any():
        return None
    k = int(np.argmax(wrong.sum(axis=(1, 2))))
    regions, count = ndimage.label(wrong[k])
    largest = 1 + int(np.argmax(ndimage.sum(np.ones_like(regions), regions, range(1, count + 1))))
    depth = ndimage.distance_transform_edt(regions == largest)
    j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return {"position": [int(i), int(j), k], "positive": bool(truth[k, j, i])}


def corrector_rounds(model, volume, labels, label, rounds: int, baseline: bool = True) -> dict:
    """Per method: the masks after the box and after each corrective round, the clicks made,
    and (the engine) the last round's ``reach`` and all rounds' seconds."""
    truth = labels == label
    started = time.perf_counter()
    session = VolumeSession(model, volume, axis="k")
    prompts = middle_slice_box(labels, label)
    result = session.propagate(prompts, PropagationOptions())
    engine, clicks = [result.labelmap == label], []
    grown, seeds = [region_growing_mask(volume, labels, label)] if baseline else [], []
    for _ in range(rounds):
        click = corrective_click(engine[-1], truth)
        if click is not None:
            prompts["objects"][0].setdefault("points", []).append(click)
            clicks.append(click)
            result = session.propagate(prompts, PropagationOptions(), previous=result)
        engine.append(result.labelmap == label)
        if baseline:
            grow = corrective_click(grown[-1], truth)
            if grow is not None and grow["positive"]:
                seeds.append(grow["position"])
            grown.append(region_growing_mask(volume, labels, label, seeds))
    run = {"masks": engine, "clicks": len(clicks), **reach(result, session.plan.view_of(truth)),
           "seconds": time.perf_counter() - started}
    return {"engine": run, **({"region growing": {"masks": grown, "clicks": len(seeds)}} if baseline else {})}


def evaluate(model, cases, protocol="box", rounds: int = 3, baseline: str = "region-growing") -> list[dict]:
    """[{case, method, dice, hd95, nsd}] for the engine and the baseline on every labelled object;
    the corrector adds ``dice_rounds`` (after the box, then each round) and ``clicks``.
    ``baseline``: comma-separated ``region-growing``, ``litemedsam-slices`` (MedSAM's
    slice-by-slice recipe, which takes a box: box protocol only) or ``none``."""
    chosen = set(baseline.split(",")) - {"none"}
    if "litemedsam-slices" in chosen and protocol != "box":
        raise SegmentWithSAM2Error(f"the litemedsam-slices baseline starts from a box; use the box protocol "
                                   f"(got {protocol!r}), or another baseline")
    lite = _litemedsam() if "litemedsam-slices" in chosen else None
    rows = []
    for name, volume, labels in cases:
        spacing_kji = tuple(float(s) for s in volume.spacing[::-1])
        for label in [int(v) for v in np.unique(labels) if v > 0]:
            truth = labels == label
            if protocol == "corrector":
                grown = "region-growing" in chosen
                for method, run in corrector_rounds(model, volume, labels, label, rounds, grown).items():
                    masks = run.pop("masks")
                    rows.append({"case": f"{name}:{label}", "method": method, **scores(masks[-1], truth, spacing_kji),
                                 "dice_rounds": [scores(m, truth, spacing_kji)["dice"] for m in masks], **run})
                continue
            runs = {"engine": engine_run(model, volume, labels, label, protocol)}
            if "region-growing" in chosen:
                runs["region growing"] = _timed(lambda: {"mask": region_growing_mask(volume, labels, label)})
            if lite is not None:
                runs["litemedsam-slices"] = _timed(lambda: _chain(litemedsam_slices_mask(lite, volume, labels, label),
                                                                  truth))
            for method, run in runs.items():
                details = {k: v for k, v in run.items() if k != "mask"}
                rows.append({"case": f"{name}:{label}", "method": method, **scores(run["mask"], truth, spacing_kji),
                             **details})
    return rows


def _chain(mask, truth) -> dict:
    return {"mask": mask, **chain_reach(mask, truth)}


def _timed(run) -> dict:
    started = time.perf_counter()
    return {**run(), "seconds": time.perf_counter() - started}


def _litemedsam():
    from .litemedsam_slices import litemedsam_model

    return litemedsam_model()


def box_dice(model: LoadedModel, volume, labels: np.ndarray, label: int = 1) -> float:
    """The engine from one box on the object's middle slice, scored by Dice (training's validation)."""
    return dice(engine_mask(model, volume, labels, label, "box"), labels == label)


def validator(config, cases):
    """A ``validate(model) -> mean Dice`` callback for the training loop, in fp32 on the model's
    device; ``cases`` are (volume, labels, label values to score), each label from its own box."""
    def validate(model) -> float:
        device = next(model.parameters()).device
        wrapped = LoadedModel(model, model_id="training", config=config, device=device, precision="fp32",
                              weights="training")
        return float(np.mean([box_dice(wrapped, volume, labels, int(label))
                              for volume, labels, values in cases for label in values]))
    return validate


def markdown(rows, model, protocol) -> str:
    rounds = "dice_rounds" in rows[0]
    extra = (" Dice per round | clicks |", "---|---|") if rounds else ("", "")
    lines = [f"Model {model.model_id} (weights {model.weights[:16]}), protocol {protocol}; slices: run through by the "
             "model, past end: slices beyond the object's first or last one it went on (on the mean row: the worst case)", "",
             f"| case | method | Dice | HD95 (mm) | NSD@2mm | slices | past end | seconds |{extra[0]}",
             f"|---|---|---|---|---|---|---|---|{extra[1]}"]
    lines += [_row(r["case"], r, rounds) for r in rows]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        mean = {k: float(np.mean([r[k] for r in mine])) for k in ("dice", "hd95", "nsd", "clicks", "slices", "seconds")
                if k in mine[0]}
        if "past_end" in mine[0]:
            mean["past_end"] = max(r["past_end"] for r in mine)  # the worst case: the rule is "every case"
        if rounds:
            mean["dice_rounds"] = np.mean([r["dice_rounds"] for r in mine], axis=0).tolist()
        lines.append(_row("mean", {"method": method, **mean}, rounds))
    return "\n".join(lines)


def _row(case, r, rounds) -> str:
    line = (f"| {case} | {r['method']} | {r['dice']:.3f} | {_mm(r['hd95'])} | {r['nsd']:.3f} | {_count(r, 'slices')} | "
            f"{_count(r, 'past_end')} | {_count(r, 'seconds', '.1f')} |")
    if rounds:
        line += f" {' -> '.join(f'{d:.3f}' for d in r['dice_rounds'])} | {r['clicks']:g} |"
    return line


def _count(row, key, spec=".0f") -> str:
    return format(row[key], spec) if key in row else "-"


def _mm(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"
