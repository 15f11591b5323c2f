"""The model options every model-using command shares, and the model they load."""

from __future__ import annotations

import argparse

from ..errors import SegmentWithSAM2Error
from ..options import DEFAULT_MODEL, DEVICES, PRECISIONS, look_up
from .progress import ProgressBar


def choice(choices, what: str):
    """An argparse type that checks with the library's look_up ("did you mean ...")."""
    def check(text: str) -> str:
        try:
            return look_up(text, choices, what)
        except SegmentWithSAM2Error as error:
            raise argparse.ArgumentTypeError(str(error)) from error
    check.__name__ = what
    return check


def add_model_arguments(parser, several: bool = False) -> None:
    """``several``: --model may be repeated (a server loads each once)."""
    parser.add_argument("--model", action="append" if several else "store",
                        help=f"registry model id (see `models`; default {DEFAULT_MODEL})" + ("; repeatable" if several else ""))
    parser.add_argument("--checkpoint", help="checkpoint path (.pt) instead of the cached registry file")
    parser.add_argument("--config", help="config for --checkpoint: registry config, sam2 config name or yaml path")
    parser.add_argument("--adapter", action="append", default=[], help="LoRA adapter (.safetensors + .json, "
                        "or a PEFT folder); repeatable")
    parser.add_argument("--merge-adapters", action="store_true", help="merge adapters into the weights (faster)")
    parser.add_argument("--download", action="store_true", help="download the registry model first if it is missing")
    parser.add_argument("--random-init", action="store_true", help="random weights (tests and benchmarks only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", type=choice(DEVICES, "device"), help=", ".join(DEVICES))
    parser.add_argument("--precision", default="auto", type=choice(PRECISIONS, "precision"), help=", ".join(PRECISIONS))


def model_from_args(args, default=DEFAULT_MODEL, random_init=None):
    """The model the options name (``default`` when they name none); ``--download`` fetches it first."""
    from ..io.model_cache import download_model
    from ..io.models import load_model

    model = args.model or (None if args.config else default)
    random_init = args.random_init if random_init is None else random_init
    if args.download and model and not args.checkpoint and not random_init:
        with ProgressBar("B", model) as bar:
            download_model(model, on_progress=bar.download)
    return load_model(model, checkpoint=args.checkpoint, config=args.config, random_init=random_init,
                      seed=args.seed, device=args.device, precision=args.precision, adapters=args.adapter,
                      merge_adapters=args.merge_adapters)
