"""The command line, ``segment-with-sam2 COMMAND``: a thin shell that maps arguments to typed
library calls, one module per command.  Nothing in the library imports it."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import warnings

from ..errors import Cancelled, SegmentWithSAM2Error
from . import batch, cache, demo, evaluate, segment, serve, train

COMMANDS = (segment, batch, serve, cache, train, evaluate, demo)
# remedies (errors.Remedy actions) in the words of the command line
CLI_REMEDIES = {
    "download": "run `segment-with-sam2 download {subject}` (or add --download)",
    "choose_model": "use --model with one of {subject}, or --checkpoint PATH with --config",
    "give_checkpoint": "give --model ID, or --checkpoint PATH with --config",
    "choose_config": "pass --config {subject}",
    "use_cpu": "use --device cpu",
    "give_window": "give an explicit --window CENTER,WIDTH",
    "restore_file": "restore {subject} from the project's files (git checkout -- model_zoo/, or reinstall)",
    "download_again": "delete {subject} and run `segment-with-sam2 download` again",
    "retry": "run the same command again; the download resumes",
    "go_offline": "check the network or proxy settings, or use --offline with a file already in the cache",
    "choose_precision": "use --precision bf16 or fp32",
    "install_package": "install it into this Python: {subject}",
}


def main(argv=None) -> int:
    args = parser().parse_args(_negative_ranges(sys.argv[1:] if argv is None else list(argv)))
    with warnings.catch_warnings(), _terminate_as_interrupt():
        warnings.simplefilter("default")
        warnings.showwarning = _print_warning
        return _run(args)


def _negative_ranges(argv: list) -> list:
    """``--range -3:5`` as ``--range=-3:5`` and ``--window -600,1500`` as ``--window=-600,1500``:
    argparse takes a value starting with "-" for an option, and the value's own check then says
    what is wrong with it."""
    out = []
    for arg in argv:
        if out and out[-1] in ("--range", "--window") and arg.startswith("-"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


class _Parser(argparse.ArgumentParser):
    """Usage errors end like every other error: one line on stderr and status 1 (argparse: 2)."""

    def error(self, message):
        self.exit(1, f"error: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="segment-with-sam2", description="SAM2-family volume segmentation")
    root.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = root.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return root


def _run(args) -> int:
    try:
        return args.run(args)
    except SegmentWithSAM2Error as error:
        if args.debug:
            raise
        print(f"error: {error.phrased(CLI_REMEDIES)}", file=sys.stderr)
    except Cancelled as error:
        print(f"error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
    except Exception as error:  # a one-line reason, not a traceback, for anything unforeseen
        if args.debug:
            raise
        print(f"error: {type(error).__name__}: {error} (run with --debug for the traceback)", file=sys.stderr)
    return 1


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a job scheduler, `kill`) ends the command as Ctrl-C does: every write in progress
    removes its hidden file and the target is left as it was."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _print_warning(message, category, *_):
    print(f"warning: {message}", file=sys.stderr)
