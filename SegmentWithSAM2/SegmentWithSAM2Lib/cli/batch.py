"""``segment-with-sam2 batch IMAGES --output OUT``: one propagation per case over a dataset,
resumable, one manifest line per attempt; exit 0 when every case succeeded, 3 when some failed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..options import DEFAULT_MODEL, SEG_TYPES
from .model_args import add_model_arguments, choice, model_from_args
from .segment import add_segment_options, at_least_one, segment_options

FORMATS = ("nii.gz", "nrrd", "mha", "seg.nrrd", "dcm")
SOME_FAILED = 3


def add_parser(commands) -> None:
    parser = commands.add_parser("batch", help="segment every case of a dataset (resumable)")
    parser.add_argument("images", nargs="?", help="a folder of volumes (files or DICOM series folders) or one volume")
    parser.add_argument("--output", required=True, help="folder for <case>.<format>, <case>.json, manifest.jsonl")
    source = parser.add_argument_group("prompts (matched to images by case id, the file stem)")
    source.add_argument("--prompts", help="folder of <case>.json prompt files")
    source.add_argument("--boxes", help="CSV of boxes: case_id,object,label,corner1,corner2,space")
    source.add_argument("--labels", help="folder of <case> labelmaps to prompt from")
    source.add_argument("--from-labels", default="box", type=choice(("box", "mask"), "prompt kind"),
                        help="box (default) or mask: on the largest slice of each connected component")
    source.add_argument("--label-values", help="the label values to prompt from, e.g. 1,3-5 (default all)")
    source.add_argument("--cases", help="CSV or JSONL of cases (case_id,image,prompts|labels[,series]); "
                        "overrides matching")
    parser.add_argument("--format", default="nii.gz", type=choice(FORMATS, "format"),
                        help=", ".join(FORMATS) + " (dcm: DICOM-SEG, for DICOM series inputs)")
    parser.add_argument("--seg-type", default="binary", type=choice(SEG_TYPES, "DICOM-SEG type"),
                        help="with --format dcm: binary (default) or labelmap")
    parser.add_argument("--overwrite", action="store_true", help="recompute every case (default: resume)")
    parser.add_argument("--retry-failed", action="store_true", help="recompute the cases that failed before")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failed case")
    parser.add_argument("--shard", type=shard, help="I/N: run part I (0..N-1) of the cases, for job arrays")
    parser.add_argument("--evaluate", action="store_true", help="with --labels: Dice, HD95, NSD per object")
    parser.add_argument("--progress", default="bar", type=choice(("bar", "jsonl"), "progress"),
                        help="bar (stderr) or jsonl (one event per line on stdout)")
    cluster = parser.add_argument_group("Ray (pip install 'segment-with-sam2[ray]'; see the README)")
    cluster.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: local (start one here), auto "
                         "(RAY_ADDRESS or the cluster of this node) or its address")
    cluster.add_argument("--workers", type=at_least_one, default=2, help="workers (each loads the model once)")
    cluster.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each worker reserves (e.g. 1)")
    cluster.add_argument("--max-retries", type=int, default=2, help="retries of a case whose worker died")
    add_model_arguments(parser)
    add_segment_options(parser)
    parser.set_defaults(run=run)


def shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"shard must be I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return index, count


def run(args) -> int:
    from ..batch.embedded import Batch, BatchRequest
    from ..batch.records import Outputs
    from ..errors import SegmentWithSAM2Error

    if args.overwrite and args.retry_failed:
        raise SegmentWithSAM2Error("--overwrite recomputes every case already; give it or --retry-failed, not both")
    cases = _cases(args)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise SegmentWithSAM2Error(f"--output {out} is a file; give a folder")
    outputs = Outputs(out, "." + args.format)
    request = BatchRequest(_settings(args), segment_options(args), _source(args),
                           "overwrite" if args.overwrite else "retry-failed" if args.retry_failed else "resume",
                           args.fail_fast, args.evaluate, args.seg_type)
    with _Progress(args.progress, len(cases)) as progress:
        batch = Batch(cases, outputs, request, progress.event)
        todo, bad = batch.check()
        batch.report_bad(bad)
        _say_bad(bad)
        if todo and not (args.fail_fast and bad):
            _run_cases(batch, todo, args)
    summary = batch.summary()
    outputs.write_summary(summary)
    print(json.dumps(summary) if args.progress == "jsonl" else _summary_line(summary, out), file=sys.stderr)
    if "evaluation" in summary and args.progress != "jsonl":
        print(evaluation_table(summary["evaluation"]))
    return 0 if summary["failed"] == summary["invalid-prompts"] == 0 else SOME_FAILED


def _run_cases(batch, todo, args) -> None:
    if not args.ray:
        batch.run(todo, model_from_args(args))
        return
    import importlib.util

    from ..batch.ray_driver import run_on_ray
    from ..errors import Remedy, SegmentWithSAM2Error

    if importlib.util.find_spec("ray") is None:
        raise SegmentWithSAM2Error("--ray needs Ray, which is not installed",
                                   Remedy("install_package", "pip install 'segment-with-sam2[ray]'"))
    options = {"model": args.model or (None if args.config else DEFAULT_MODEL), "checkpoint": args.checkpoint,
               "config": args.config, "random_init": args.random_init, "seed": args.seed, "device": args.device,
               "precision": args.precision, "adapters": args.adapter, "merge_adapters": args.merge_adapters}
    run_on_ray(batch, todo, options, batch.request.settings["checkpoint_sha256"], address=args.ray,
               workers=args.workers, gpus_per_worker=args.gpus_per_worker, max_retries=args.max_retries)


def _cases(args):
    from ..batch.cases import match_cases, read_cases_file, take_shard
    from ..errors import SegmentWithSAM2Error

    if args.cases:
        cases = read_cases_file(args.cases)
    elif args.images:
        cases = match_cases(args.images, args.prompts, args.labels)
    else:
        raise SegmentWithSAM2Error("give IMAGES (a folder or a volume) or --cases FILE")
    if not (args.prompts or args.boxes or args.labels or args.cases):
        raise SegmentWithSAM2Error("give a prompt source: --prompts DIR, --boxes FILE.csv, --labels DIR or --cases FILE")
    if args.evaluate and not (args.labels or any(c.labels for c in cases)):
        raise SegmentWithSAM2Error("--evaluate needs labels to compare with: give --labels DIR (or a labels column)")
    return take_shard(cases, args.shard)


def _source(args):
    from ..batch.inputs import PromptSource
    from ..batch.prompt_sources import read_box_rows
    from ..training.data import parse_labels

    values = parse_labels(args.label_values)
    return PromptSource(read_box_rows(args.boxes) if args.boxes else {}, args.from_labels,
                        frozenset(values) if values is not None else None, args.axis)


def _settings(args) -> dict:
    """Every option that changes a case's output; a file given is named by its SHA-256."""
    from ..batch.records import path_digest
    from ..errors import SegmentWithSAM2Error

    def digest(path, what="checkpoint"):
        if path and not Path(path).exists():
            raise SegmentWithSAM2Error(f"{what} not found: {path}")
        return path_digest(Path(path)) if path else None
    return {"model": args.model, "checkpoint_sha256": digest(args.checkpoint), "config": args.config,
            "adapters": [digest(a, "adapter") for a in args.adapter], "merge_adapters": args.merge_adapters,
            "random_init": args.random_init, "seed": args.seed, "device": args.device, "precision": args.precision,
            "axis": args.axis, "window": args.window, "direction": args.direction,
            "range": list(args.slice_range) if args.slice_range else None, "auto_stop": args.auto_stop,
            "stop_after": args.stop_after, "postprocess": args.postprocess, "format": args.format,
            "keep_largest_component": args.keep_largest_component, "fill_holes_px": args.fill_holes_px,
            "preset": args.preset,
            "seg_type": args.seg_type if args.format == "dcm" else None,
            "from_labels": args.from_labels, "label_values": args.label_values}


def evaluation_table(evaluation: dict) -> str:
    """Markdown: Dice, HD95 and NSD per case and object, against the labelmaps the prompts came from."""
    lines = ["| case | object | label | Dice | HD95 (mm) | NSD |", "|---|---|---|---|---|---|"]
    for case, objects in sorted(evaluation["cases"].items()):
        lines += [f"| {case} | {name} | {s['label']} | {s['dice']:.3f} | {s['hd95']:.1f} | {s['nsd']:.3f} |"
                  for name, s in objects.items()]
    return "\n".join(lines + [f"\nmean Dice {evaluation['mean_dice']:.3f}"])


def _say_bad(bad) -> None:
    if bad:
        print(f"{len(bad)} case(s) cannot run (listed in manifest.jsonl, errors/):", file=sys.stderr)
        for inputs in bad:
            print(f"  {inputs.case.case_id}: {inputs.status}: {inputs.error}", file=sys.stderr)


def _summary_line(summary: dict, out: Path) -> str:
    return (f"{summary['cases']} case(s): {summary['ok']} ok, {summary['failed']} failed, "
            f"{summary['invalid-prompts']} with invalid prompts, {summary['skipped']} skipped "
            f"({summary['seconds']:.1f} s); see {out / 'manifest.jsonl'}")


class _Progress:
    """A bar over cases (done, failed, skipped, ETA) on stderr, or JSON events on stdout."""

    def __init__(self, kind: str, total: int):
        self.kind, self.total, self._bar = kind, total, None

    def __enter__(self):
        if self.kind == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit="case", file=sys.stderr, dynamic_ncols=True)
        else:
            self.event({"event": "start", "cases": self.total})
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
        return False

    def event(self, event: dict) -> None:
        if self._bar is None:
            print(json.dumps(event), flush=True)
            return
        totals = event.get("totals", {})
        self._bar.set_postfix(ok=totals.get("ok", 0), failed=totals.get("failed", 0) + totals.get("invalid-prompts", 0),
                              skipped=totals.get("skipped", 0), refresh=False)
        self._bar.update(1)
