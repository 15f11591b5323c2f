"""One progress bar on stderr for every long job of the command line: slices, bytes, steps."""

from __future__ import annotations

import sys


class ProgressBar:
    """A tqdm bar; ``slices``, ``download`` and ``steps`` are the library's progress callbacks."""

    def __init__(self, unit: str = "slice", description: str = ""):
        self.unit, self.description = unit, description

    def __enter__(self):
        from tqdm import tqdm

        scaled = self.unit == "B"
        self._bar = tqdm(total=None if scaled else 1, unit=self.unit, unit_scale=scaled,
                         unit_divisor=1024 if scaled else 1000, desc=self.description or None,
                         file=sys.stderr, dynamic_ncols=True)
        return self

    def __exit__(self, *exc):
        self._bar.close()
        return False

    def show(self, done, total, description=None, loss=None) -> None:
        self._bar.total = total
        self._bar.n = done
        if description is not None:
            self._bar.set_description(description, refresh=False)
        if loss is not None:
            self._bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self._bar.refresh()

    def slices(self, done: int, total: int, index: int, direction: str) -> None:
        self.show(done, total, f"{direction} slice {index}")

    def download(self, progress) -> None:
        self.show(progress.done, progress.total)

    def steps(self, step: int, total: int, loss: float) -> None:
        self.show(step, total, loss=loss)

    def write(self, line: str) -> None:
        """A log line above the bar (on stdout)."""
        self._bar.write(line, file=sys.stdout)
