"""A per-slice progress bar on stderr for the command line."""

from __future__ import annotations

import sys


class ProgressBar:
    def __enter__(self):
        from tqdm import tqdm

        self._bar = tqdm(total=1, unit="slice", file=sys.stderr, dynamic_ncols=True)
        return self

    def update(self, done: int, total: int, index: int, direction: str) -> None:
        self._bar.total = total
        self._bar.set_description(f"{direction} slice {index}")
        self._bar.n = done
        self._bar.refresh()

    def __exit__(self, *exc):
        self._bar.close()
        return False


class ByteProgressBar:
    """Bytes, rate and time left for a download."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        from tqdm import tqdm

        self._bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc=self.name, file=sys.stderr)
        return self

    def update(self, progress) -> None:
        self._bar.total = progress.total
        self._bar.n = progress.done
        self._bar.refresh()

    def __exit__(self, *exc):
        self._bar.close()
        return False


class StepProgressBar:
    """Training steps with the running loss; Ctrl-C stops, and a rerun resumes from last.pt."""

    def __enter__(self):
        from tqdm import tqdm

        self._bar = tqdm(total=1, unit="step", file=sys.stderr, dynamic_ncols=True, desc="training")
        return self

    def update(self, step: int, total: int, loss: float) -> None:
        self._bar.total = total
        self._bar.n = step
        self._bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self._bar.refresh()

    def write(self, line: str) -> None:
        """A log line above the bar (on stdout)."""
        self._bar.write(line, file=sys.stdout)

    def __exit__(self, *exc):
        self._bar.close()
        return False
