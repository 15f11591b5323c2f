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
    models = commands.add_parser("models", help="list the known models and what is cached")
    models.add_argument("--verify", action="store_true", help="also check the SHA-256 of cached files")
    models.set_defaults(run=_run_models)
    download = commands.add_parser("download", help="download a registry model into the cache (resumable)")
    download.add_argument("model_id")
    download.add_argument("--timeout", type=float, default=30.0, help="seconds without data before giving up")
    download.add_argument("--offline", action="store_true", help="never touch the network; fail if not cached")
    download.set_defaults(run=_run_download)
    verify = commands.add_parser("verify", help="check a cached model's SHA-256")
    verify.add_argument("model_id")
    verify.set_defaults(run=_run_verify)
    remove = commands.add_parser("remove", help="delete a cached model (and any partial download)")
    remove.add_argument("model_id")
    remove.set_defaults(run=_run_remove)
    train = commands.add_parser("train", help="fine-tune (lora/full) or train (scratch) on annotated volumes")
    train.add_argument("--data", help="list file of 'IMAGE LABELMAP' lines, or a folder with images/ and labels/")
    train.add_argument("--labels", help="only these label values are structures to learn, e.g. 37,38,71-78 "
                       "(others become background)")
    train.add_argument("--synthetic-shapes", help="synthetic structures to draw from: blob,tube,shell,twins "
                       "(default: the blob/tube mix micro was trained on)")
    train.add_argument("--synthetic", type=int, default=0, help="generate this many synthetic volumes to train on")
    train.add_argument("--validation-data", help="held-out (image, labelmap) pairs, as --data, to report the "
                       "validation Dice on (every structure, one box each); default: 6 held-out synthetic volumes")
    train.add_argument("--mode", choices=("lora", "full", "scratch"), default="full")
    train.add_argument("--steps", type=int, default=1000)
    train.add_argument("--clip-length", type=int, default=4)
    train.add_argument("--lr", type=float, default=3e-4)
    train.add_argument("--rank", type=int, default=8, help="LoRA rank")
    train.add_argument("--rescale-image-features", type=float, metavar="RMS",
                       help="full mode: first scale the image features to this RMS (compensated exactly where "
                       "sam2 maps them linearly) when they drown the prompts' positions, e.g. 1.0")
    train.add_argument("--freeze", metavar="MODULES", help="full/scratch mode: leave these modules' weights as "
                       "they are, e.g. image_encoder or image_encoder,memory_encoder")
    train.add_argument("--reinit", metavar="MODULES", help="full mode: start these modules from fresh random weights "
                       "(seeded), e.g. sam_mask_decoder.transformer when a decoder has learned to ignore prompts")
    train.add_argument("--leak-corrections", type=float, default=0.0, metavar="P",
                       help="share of clips whose first frame is a correction: an earlier mask leaking into a "
                       "neighbouring object, with negative clicks on it (teaches negative clicks; default 0)")
    train.add_argument("--output", required=True, help="folder for checkpoints, the log and the result")
    add_model_arguments(train)
    train.set_defaults(run=_run_train)
    evaluate = commands.add_parser("evaluate", help="Dice, HD95 and NSD against known labels, with a baseline")
    evaluate.add_argument("--data", help="list file of 'IMAGE LABELMAP' lines, or a folder with images/ and labels/")
    evaluate.add_argument("--synthetic-shapes", help="synthetic structures to draw from: blob,tube,shell,twins "
                       "(default: the blob/tube mix micro was trained on)")
    evaluate.add_argument("--synthetic", type=int, default=0, help="also evaluate on N held-out synthetic volumes")
    evaluate.add_argument("--protocol", choices=("box", "point", "corrector"), default="box",
                          help="box or point on the middle slice, or the box then corrective clicks")
    evaluate.add_argument("--rounds", type=int, default=3, help="corrector rounds (one click each)")
    evaluate.add_argument("--labels", help="evaluate only these label values, e.g. 1,3-5")
    evaluate.add_argument("--baseline", choices=("region-growing", "none"), default="region-growing",
                          help="the classical baseline run from the same prompts, or none (faster; no SimpleITK)")
    evaluate.add_argument("--report", help="write the table as JSON (and Markdown beside it)")
    add_model_arguments(evaluate)
    evaluate.set_defaults(run=_run_evaluate)
    demo = commands.add_parser("demo", help="segment a bundled sample end to end")
    demo.add_argument("--output", default="demo-output", help="folder for the labelmap and overlay (demo-output)")
    add_model_arguments(demo)
    demo.set_defaults(run=_run_demo)
    return parser


def add_model_arguments(parser):
    parser.add_argument("--model", help=f"registry model id (see `models`; default {DEFAULT_MODEL})")
    parser.add_argument("--checkpoint", help="checkpoint path (.pt) instead of the cached registry file")
    parser.add_argument("--config", help="config for --checkpoint: registry config, sam2 config name or yaml path")
    parser.add_argument("--adapter", action="append", default=[], help="LoRA adapter (.safetensors + .json, "
                        "or a PEFT folder); repeatable")
    parser.add_argument("--merge-adapters", action="store_true", help="merge adapters into the weights (faster)")
    parser.add_argument("--download", action="store_true", help="download the registry model first if it is missing")
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
    if args.download and model and not args.checkpoint and not args.random_init:
        from .io.model_cache import download_model
        from .progress import ByteProgressBar

        with ByteProgressBar(model) as bar:
            download_model(model, on_progress=bar.update)
    return load_model(model, checkpoint=args.checkpoint, config=args.config, random_init=args.random_init,
                      seed=args.seed, device=args.device, precision=args.precision, adapters=args.adapter,
                      merge_adapters=args.merge_adapters)


def _run_segment(args) -> int:
    from . import api
    from .core.postprocess import PostProcess
    from .core.prompts import check_prompts
    from .io.images import check_output_path
    from .io.prompt_file import read_prompt_file
    from .progress import ProgressBar

    output = check_output_path(args.output)
    if output.resolve() == Path(args.image).resolve():
        raise SegmentWithSAM2Error(f"output {output} is the input image; give another file name")
    volume = api.read_volume(args.image)
    prompts = read_prompt_file(args.prompts, volume)
    check_prompts(prompts, volume, args.axis)
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
    from .io.model_cache import entry

    print(f"{'id':26} {'image':>5}  {'cached':>9}  {'state':10} config")
    for model_id, spec in load_registry().items():
        e = entry(model_id, check=args.verify)
        size = f"{e.size / 1e6:.1f}MB" if e.size is not None else "-"
        print(f"{model_id:26} {spec.image_size:>5}  {size:>9}  {e.state:10} {spec.config}")
    print(f"cache: {cache_dir()}")
    return 0


def _run_download(args) -> int:
    from .io.model_cache import download_model
    from .progress import ByteProgressBar

    with ByteProgressBar(args.model_id) as bar:
        path = download_model(args.model_id, timeout=args.timeout, offline=args.offline, on_progress=bar.update)
    print(f"{args.model_id}: {path} (verified)")
    return 0


def _run_verify(args) -> int:
    from .io.model_cache import entry

    e = entry(args.model_id, check=True)
    print(f"{args.model_id}: {e.state} ({e.path})")
    if e.state in ("absent", "MISMATCH"):
        raise SegmentWithSAM2Error(f"{args.model_id} is {e.state.lower()}; run `segment-with-sam2 download {args.model_id}`")
    return 0


def _run_remove(args) -> int:
    from .io.model_cache import remove_model

    print(f"{args.model_id}: {'removed' if remove_model(args.model_id) else 'was not cached'}")
    return 0


def _run_train(args) -> int:
    from .training.command import run_training

    return run_training(args)


def _run_evaluate(args) -> int:
    from .training.report import run_evaluation

    return run_evaluation(args)


def _run_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
