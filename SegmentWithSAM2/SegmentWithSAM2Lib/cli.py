"""The command line: ``segment-with-sam2 segment|models|demo``; a thin shell over the API."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import Cancelled, SegmentWithSAM2Error

DEFAULT_MODEL = "medsam2-latest"
AXES = ("auto", "axial", "coronal", "sagittal", "i", "j", "k")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _print_warning
        return _run(args)


def _run(args) -> int:
    try:
        return args.run(args)
    except (SegmentWithSAM2Error, Cancelled) as error:
        print(f"error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
    except Exception as error:  # a one-line reason, not a traceback, for anything unforeseen
        if args.debug:
            raise
        print(f"error: {type(error).__name__}: {error} (run with --debug for the traceback)", file=sys.stderr)
    return 1


def _print_warning(message, category, *_):
    print(f"warning: {message}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segment-with-sam2", description="SAM2-family volume segmentation")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    segment = commands.add_parser("segment", help="segment a volume from a prompt file")
    segment.add_argument("image", help="NIfTI, NRRD, MetaImage file or DICOM series folder")
    segment.add_argument("--prompts", required=True, help="prompt JSON file (see the README)")
    segment.add_argument("--output", required=True, help="labelmap: .nii.gz, .nrrd or .seg.nrrd (segments)")
    add_model_arguments(segment)
    segment.add_argument("--axis", default="auto", choices=AXES)
    segment.add_argument("--window", default="auto", help="auto, none, mr, percentile[:LOW,HIGH], CENTER,WIDTH or a CT preset")
    segment.add_argument("--direction", default="both", choices=("both", "forward", "backward"))
    segment.add_argument("--range", dest="slice_range", type=_slice_range, help="FIRST:LAST slice indices, inclusive")
    segment.add_argument("--no-auto-stop", dest="auto_stop", action="store_false")
    segment.add_argument("--stop-after", type=int, default=3, help="empty slices before a direction stops (3)")
    segment.add_argument("--no-postprocess", dest="postprocess", action="store_false")
    segment.set_defaults(run=_run_segment)
    models = commands.add_parser("models", help="list the known models")
    models.set_defaults(run=_run_models)
    demo = commands.add_parser("demo", help="segment a bundled sample end to end")
    demo.add_argument("--output", default="demo-output", help="folder for the labelmap and overlay (demo-output)")
    add_model_arguments(demo)
    demo.set_defaults(run=_run_demo)
    return parser


def add_model_arguments(parser):
    parser.add_argument("--model", help=f"registry model id (see `models`; default {DEFAULT_MODEL})")
    parser.add_argument("--checkpoint", help="checkpoint path (.pt) instead of the cached registry file")
    parser.add_argument("--config", help="config for --checkpoint: registry config, sam2 config name or yaml path")
    parser.add_argument("--random-init", action="store_true", help="random weights (tests and benchmarks only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))


def _slice_range(text: str):
    try:
        first, last = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"range must be FIRST:LAST (two slice indices), got {text!r}") from None
    return first, last


def model_from_args(args):
    from .core.model import load_model

    model = args.model or (None if args.config else DEFAULT_MODEL)
    return load_model(model, checkpoint=args.checkpoint, config=args.config, random_init=args.random_init,
                      seed=args.seed, device=args.device, precision=args.precision)


def _run_segment(args) -> int:
    from . import api
    from .core.postprocess import PostProcess
    from .io.images import check_output_path
    from .io.prompt_file import read_prompt_file
    from .progress import ProgressBar

    output = check_output_path(args.output)
    if output.resolve() == Path(args.image).resolve():
        raise SegmentWithSAM2Error(f"output {output} is the input image; give another file name")
    volume = api.read_volume(args.image)
    prompts = read_prompt_file(args.prompts, volume)
    model = model_from_args(args)
    print(f"model {model.model_id} ({model.config.name}, {model.image_size} px, {model.device}, "
          f"{model.precision}), weights {model.weights}", file=sys.stderr)
    with ProgressBar() as bar:
        result = api.segment(model, volume, prompts, axis=args.axis, window=args.window, direction=args.direction,
                             slice_range=args.slice_range, auto_stop=args.auto_stop, stop_after=args.stop_after,
                             postprocess=PostProcess() if args.postprocess else None, on_progress=bar.update)
    api.write_result(result, output)
    print(f"wrote {output} ({result.seconds:.1f} s, slices {result.slices_processed})", file=sys.stderr)
    return 0


def _run_models(args) -> int:
    from .core.registry import cache_dir, load_registry

    print(f"{'id':28} {'image':>5}  {'cached':6}  config")
    for spec in load_registry().values():
        cached = "yes" if (cache_dir() / spec.filename).is_file() else "no"
        print(f"{spec.id:28} {spec.image_size:>5}  {cached:6}  {spec.config}")
    print(f"cache: {cache_dir()}")
    return 0


def _run_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
