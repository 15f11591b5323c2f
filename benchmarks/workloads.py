"""The benchmark workloads W1-W6 (see bench.py); run one as a child process:

    python benchmarks/workloads.py W1 engine --repeats 3 [--quick]

prints one JSON line: seconds (median), per-slice time, peak RSS, and what the workload checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402

from SegmentWithSAM2Lib.core.engine import PropagationOptions, VolumeSession  # noqa: E402
from SegmentWithSAM2Lib.io.models import load_model  # noqa: E402
from SegmentWithSAM2Lib.core.volume import Volume  # noqa: E402
from SegmentWithSAM2Lib.core.metrics import dice
from SegmentWithSAM2Lib.synthetic import demo_ct as synthetic_ct  # noqa: E402

MEDSAM2 = "medsam2_512.yaml"
WORKLOADS = {
    "W1": {"methods": ["official", "jpeg", "engine-fp32", "engine"]},
    "W2": {"methods": ["engine"]},
    "W3": {"methods": ["engine"]},
    "W4": {"methods": ["engine"]},
    "W5": {"methods": ["auto-stop", "no-auto-stop"]},
    "W6": {"methods": ["engine", "engine-fp32", "engine-fp32-unbatched", "official"]},
}


def ct_case(slices: int, size: int, organ_slices: int | None = None):
    """A CT-like int16 volume (HU) with one organ; box prompt on the middle slice."""
    spacing = (0.7 * 512 / size, 0.7 * 512 / size, 2.5)
    radius_z = 2.5 * (organ_slices or max(slices // 3, 3)) / 2
    volume, truth = synthetic_ct((slices, size, size), spacing_ijk=spacing, organ_radii_mm=(60.0, 45.0, radius_z))
    middle = slices // 2
    rows, cols = np.nonzero(truth[middle])
    box = [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]
    return volume, truth, middle, box


def case_from_child(shape):
    """ct_case made in a child process and read back: its generation (float grids of the whole
    volume) would otherwise set the peak RSS that W4 measures for the engine."""
    with tempfile.TemporaryDirectory() as folder:
        child = multiprocessing.get_context("spawn").Process(target=_save_case, args=(shape, folder))
        child.start()
        child.join()
        saved = np.load(Path(folder) / "case.npz")
        volume = Volume(saved["array"], saved["ijk_to_ras"], {"modality": "CT"})
        return volume, saved["truth"], int(saved["middle"]), [int(v) for v in saved["box"]]


def _save_case(shape, folder):
    volume, truth, middle, box = ct_case(*shape)
    np.savez(Path(folder) / "case.npz", array=volume.array, ijk_to_ras=volume.ijk_to_ras, truth=truth,
             middle=middle, box=box)


def ellipsoid_case(slices, size, organ_slices):
    """Soft tissue (40 HU, noise) with one denser ellipsoid spanning ``organ_slices`` slices: the
    kind of object the bundled micro model follows and stops at."""
    rng = np.random.default_rng(5)
    k, j, i = np.ogrid[:slices, :size, :size]
    middle = slices // 2
    organ = ((k - middle) / (organ_slices / 2)) ** 2 + ((j - size / 2) / (size / 5)) ** 2 \
        + ((i - size / 2) / (size / 6)) ** 2 <= 1
    hu = np.where(organ, 160.0, 40.0) + rng.normal(0, 12, organ.shape)
    volume = Volume(hu.astype(np.int16), np.diag([0.8, 0.8, 2.0, 1.0]), {"modality": "CT"})
    rows, cols = np.nonzero(organ[middle])
    return volume, organ.astype(np.uint8), middle, [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]


def soft_tissue(volume):
    from SegmentWithSAM2Lib.core.intensity import resolve_window

    window = resolve_window("soft-tissue", volume.array)
    return window.lower, window.upper


def box_prompts(box, k):
    return {"space": "IJK", "objects": [{"label": 1, "boxes": [{"corner1": [box[0], box[1], k],
                                                                "corner2": [box[2], box[3], k]}]}]}


def medsam2(precision="fp32", device="cpu"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(config=MEDSAM2, random_init=True, seed=0, device=device, precision=precision)


def timed(run, repeats: int):
    run()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def digest(labelmap: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labelmap, dtype=np.uint8).tobytes()).hexdigest()[:16]


def w1(method, repeats, quick):
    volume, truth, middle, box = ct_case(*((8, 512) if quick else (96, 512)))
    slices = volume.array.shape[0] + 1  # the prompted slice runs in both directions
    if method in ("official", "jpeg"):
        model = medsam2("fp32")
        window = soft_tissue(volume)  # as the engine below
        if method == "official":
            run = lambda: baselines.official(model.predictor, volume.array, window, middle, box)  # noqa: E731
        else:
            run = lambda: baselines.jpeg(model.predictor, volume.array, middle, box)  # noqa: E731
    else:
        model = medsam2("fp32" if method == "engine-fp32" else "auto")
        options = PropagationOptions(auto_stop=False, postprocess=None)
        # a fresh session each run: end to end, nothing cached between runs (as for the baselines)
        run = lambda: VolumeSession(model, volume, axis="k", window="soft-tissue").propagate(  # noqa: E731
            box_prompts(box, middle), options).labelmap
    seconds, labelmap = timed(run, repeats)
    return {"seconds": seconds, "slices": slices, "ms_per_slice": 1000 * seconds / slices,
            "labelmap": digest(labelmap), "precision": getattr(model, "precision", "fp32")}


def w2(method, repeats, quick):
    volume, truth, middle, box = ct_case(*((8, 512) if quick else (96, 512)))
    corrected_slice = min(middle + 10, volume.array.shape[0] - 1)
    model = medsam2("auto")
    options = PropagationOptions(auto_stop=False, postprocess=None)
    prompts = box_prompts(box, middle)
    sessions = []  # W1 end to end, a fresh session each run; the correction then reuses the last

    def first_run():
        sessions.append(VolumeSession(model, volume, axis="k", window="soft-tissue"))
        return sessions[-1].propagate(prompts, options)

    first_seconds, first = timed(first_run, repeats)
    session = sessions[-1]
    corrected = box_prompts(box, middle)
    corrected["objects"][0]["points"] = [{"position": [(box[0] + box[2]) // 2, (box[1] + box[3]) // 2,
                                                       corrected_slice], "positive": False}]
    last = volume.array.shape[0] - 1  # re-propagate from the corrected slice on, the rest is kept
    from_there = PropagationOptions("forward", (corrected_slice, last), auto_stop=False, postprocess=None)
    seconds, _ = timed(lambda: session.propagate(corrected, from_there, previous=first), repeats)
    return {"seconds": seconds, "w1_seconds": first_seconds, "ratio_to_w1": seconds / first_seconds}


def w3(method, repeats, quick):
    volume, truth, middle, box = ct_case(*((8, 512) if quick else (96, 512)))
    session = VolumeSession(medsam2("auto"), volume, axis="k", window="soft-tissue")
    session.propagate(box_prompts(box, middle), PropagationOptions(auto_stop=False, postprocess=None))
    rng = np.random.default_rng(0)
    times = []
    for _ in range(20):
        k = int(rng.integers(volume.array.shape[0]))
        click = {"space": "IJK", "objects": [{"label": 1, "points": [
            {"position": [int(rng.integers(box[0], box[2])), int(rng.integers(box[1], box[3])), k]}]}]}
        started = time.perf_counter()
        session.preview(click, k)
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "ms_per_click": 1000 * statistics.median(times)}


def w4(method, repeats, quick):
    volume, truth, middle, box = case_from_child((16, 512) if quick else (512, 512))
    model = medsam2("auto")
    warm, _, warm_middle, warm_box = ct_case(8, 512)  # first-call costs out of the timing, as W1's warm-up run
    VolumeSession(model, warm, axis="k", window="soft-tissue").propagate(
        box_prompts(warm_box, warm_middle), PropagationOptions(auto_stop=False, postprocess=None))
    session = VolumeSession(model, volume, axis="k", window="soft-tissue")
    started = time.perf_counter()  # one run: a long volume is its own repetition
    session.propagate(box_prompts(box, middle), PropagationOptions(auto_stop=False, postprocess=None))
    seconds = time.perf_counter() - started
    slices = volume.array.shape[0] + 1
    return {"seconds": seconds, "slices": slices, "ms_per_slice": 1000 * seconds / slices}


def w5(method, repeats, quick):
    volume, truth, middle, box = ellipsoid_case(*((40, 128, 8) if quick else (160, 256, 30)))
    ks = np.nonzero(truth.any(axis=(1, 2)))[0]
    model = load_model("micro", device="cpu")
    options = PropagationOptions(auto_stop=method == "auto-stop")
    seconds, result = timed(lambda: VolumeSession(model, volume, axis="k", window="soft-tissue").propagate(
        box_prompts(box, middle), options), repeats)
    return {"seconds": seconds, "slices": sum(result.slices_processed.values()),
            "object_extent": int(ks.max() - ks.min() + 1), "stop_after": options.stop_after,
            "dice": dice(result.labelmap == 1, truth == 1)}


def w6(method, repeats, quick):
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine"}
    volume, truth, middle, box = ct_case(*((16, 512) if quick else (300, 512)))
    with warnings.catch_warnings():  # sam2's own tiny config, random weights, at its 1024 px
        warnings.simplefilter("ignore")
        model = load_model(config="configs/sam2.1/sam2.1_hiera_t.yaml", random_init=True, seed=0, device="cuda",
                           precision="fp32" if "fp32" in method or method == "official" else "auto")
    if method == "official":
        run = lambda: baselines.official(model.predictor, volume.array, soft_tissue(volume), middle, box)  # noqa: E731
    else:
        batch = 0 if method.endswith("unbatched") else None
        options = PropagationOptions(auto_stop=False, postprocess=None)
        run = lambda: VolumeSession(model, volume, axis="k", window="soft-tissue",  # noqa: E731
                                    encode_batch=batch).propagate(box_prompts(box, middle), options).labelmap
    torch.cuda.reset_peak_memory_stats()
    seconds, labelmap = timed(run, repeats)
    slices = volume.array.shape[0] + 1
    return {"seconds": seconds, "slices": slices, "ms_per_slice": 1000 * seconds / slices,
            "slices_per_second": slices / seconds, "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2 ** 20,
            "labelmap": digest(labelmap), "precision": model.precision, "gpu": torch.cuda.get_device_name()}


def summary(rows, machine) -> str:
    """The results table and each target of the performance issue with its measured ratio."""
    by = {(r["workload"], r["method"]): r for r in rows}
    lines = ["| workload | method | s | ms/slice | peak RSS (MB) | notes |", "|---|---|---|---|---|---|"]
    for r in rows:
        notes = r.get("error") or r.get("skipped") or ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
            if k in ("ratio_to_w1", "ms_per_click", "slices", "object_extent", "dice", "labelmap", "precision",
                     "slices_per_second", "peak_gpu_mb"))
        seconds = f"{r['seconds']:.2f}" if "seconds" in r else "-"
        per_slice = f"{r['ms_per_slice']:.0f}" if "ms_per_slice" in r else "-"
        rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-"
        lines.append(f"| {r['workload']} | {r['method']} | {seconds} | {per_slice} | {rss} | {notes} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for text, value, met in _targets(by):
        lines.append(f"| {text} | {value} | {'yes' if met else 'NO'} |")
    return "\n".join(lines)


def _targets(by):
    def get(w, m, key):
        return by.get((w, m), {}).get(key)

    engine, official, jpeg = get("W1", "engine", "seconds"), get("W1", "official", "seconds"), get("W1", "jpeg", "seconds")
    if engine and official:
        yield "W1 engine ≥ 1.6× faster than official", f"{official / engine:.2f}×", official / engine >= 1.6
    if engine and jpeg:
        yield "W1 engine ≥ 2× faster than jpeg", f"{jpeg / engine:.2f}×", jpeg / engine >= 2
    if get("W1", "engine-fp32", "labelmap") and get("W1", "official", "labelmap"):
        same = get("W1", "engine-fp32", "labelmap") == get("W1", "official", "labelmap")
        yield "W1 engine fp32 labelmap equals official", "identical" if same else "differs", same
    if get("W2", "engine", "ratio_to_w1") is not None:
        ratio = get("W2", "engine", "ratio_to_w1")
        yield "W2 correction ≤ 0.45× W1", f"{ratio:.2f}×", ratio <= 0.45
    if get("W3", "engine", "ms_per_click") is not None:
        ms = get("W3", "engine", "ms_per_click")
        yield "W3 ≤ 60 ms per click", f"{ms:.0f} ms", ms <= 60
    if get("W4", "engine", "peak_rss_mb") is not None:
        rss = get("W4", "engine", "peak_rss_mb")
        yield "W4 peak RSS ≤ 3 GB", f"{rss / 1024:.2f} GB", rss <= 3 * 1024
        w1_slice, w4_slice = get("W1", "engine", "ms_per_slice"), get("W4", "engine", "ms_per_slice")
        if w1_slice and w4_slice:
            yield "W4 per-slice time within 10 % of W1", f"{w4_slice / w1_slice:.2f}×", w4_slice <= 1.1 * w1_slice
    if get("W5", "auto-stop", "slices") is not None:
        slices, extent = get("W5", "auto-stop", "slices"), get("W5", "auto-stop", "object_extent")
        bound = extent + 2 * get("W5", "auto-stop", "stop_after") + 1  # +1: the prompted slice runs twice
        yield "W5 slices with auto-stop ≤ extent + 2 × margin", f"{slices} (bound {bound})", slices <= bound
    for method in ("engine-fp32", "engine-fp32-unbatched"):
        if get("W6", method, "labelmap") and get("W6", "official", "labelmap"):
            same = get("W6", method, "labelmap") == get("W6", "official", "labelmap")
            yield f"W6 {method} labelmap equals official (CUDA)", "identical" if same else "differs", same
    if get("W6", "engine", "slices_per_second"):
        rate = get("W6", "engine", "slices_per_second")
        yield "W6 ≥ 150 slices/s", f"{rate:.0f}/s", rate >= 150
        if get("W6", "official", "slices_per_second"):
            ratio = rate / get("W6", "official", "slices_per_second")
            yield "W6 ≥ 2× official on the same GPU", f"{ratio:.2f}×", ratio >= 2


RUNNERS = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5, "W6": w6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=sorted(RUNNERS))
    parser.add_argument("method")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    row = {"workload": args.workload, "method": args.method}
    row.update(RUNNERS[args.workload](args.method, 1 if args.quick else args.repeats, args.quick))
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
