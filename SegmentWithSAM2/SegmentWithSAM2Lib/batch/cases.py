"""The cases of a batch: images paired with their prompt source by case id (the file stem), or
listed in a cases file (CSV or JSONL: case_id, image, prompts or labels)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import SegmentWithSAM2Error

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm")
CASE_FIELDS = ("case_id", "image", "prompts", "labels", "series")


@dataclass(frozen=True)
class Case:
    case_id: str
    image: Path  # a volume file or a DICOM series folder
    prompts: Path | None = None  # a prompt JSON file
    labels: Path | None = None  # a labelmap on the image's grid
    series: str | None = None  # the SeriesInstanceUID, when the image's DICOM folder holds several


def case_id_of(path: Path) -> str:
    """The case id: a file's name less its image suffix, or a DICOM folder's name."""
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def find_images(images) -> list[Path]:
    """A single volume, or the volumes (files with an image suffix, DICOM folders) in a folder."""
    images = Path(images)
    if not images.exists():
        raise SegmentWithSAM2Error(f"images not found: {images}")
    if images.is_file() or not any(p.is_dir() or _is_image(p) for p in images.iterdir()):
        return [images]  # one file, or a folder of DICOM files: one series
    return sorted(p for p in images.iterdir() if (p.is_dir() or _is_image(p)) and not p.name.startswith("."))


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES) and not path.name.lower().endswith(".dcm")


def match_cases(images, prompts_dir=None, labels_dir=None) -> list[Case]:
    """Each image with ``<case>.json`` from ``prompts_dir`` or ``<case>.<image suffix>`` from
    ``labels_dir``; a missing partner is left None (the case is then reported, not dropped)."""
    cases = []
    labels = _by_case_id(labels_dir) if labels_dir else {}
    for image in find_images(images):
        case_id = case_id_of(image)
        prompts = Path(prompts_dir) / f"{case_id}.json" if prompts_dir else None
        cases.append(Case(case_id, image, prompts if prompts is None or prompts.exists() else None,
                          labels.get(case_id)))
    _refuse_repeats([c.case_id for c in cases], images)
    return cases


def _by_case_id(folder) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise SegmentWithSAM2Error(f"labels folder not found: {folder}")
    return {case_id_of(p): p for p in folder.iterdir() if _is_image(p) or p.is_dir()}


def read_cases_file(path) -> list[Case]:
    """A CSV (with a header) or JSONL file of cases; relative paths are taken from its folder."""
    path = Path(path)
    if not path.is_file():
        raise SegmentWithSAM2Error(f"cases file not found: {path}")
    text = path.read_text(encoding="utf-8-sig")
    rows = _jsonl_rows(text, path) if path.suffix.lower() in (".jsonl", ".ndjson") else list(csv.DictReader(text.splitlines()))
    cases = [_case_of_row(row, n, path) for n, row in enumerate(rows, start=1)]
    if not cases:
        raise SegmentWithSAM2Error(f"cases file {path} lists no cases")
    _refuse_repeats([c.case_id for c in cases], path)
    return cases


def _jsonl_rows(text: str, path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise SegmentWithSAM2Error(f"cases file {path} line {n} is not JSON: {error.msg}") from error
    return rows


def _case_of_row(row, n: int, path: Path) -> Case:
    if not isinstance(row, dict) or not row.get("image"):
        raise SegmentWithSAM2Error(f"cases file {path} row {n}: needs at least 'image' (columns: {', '.join(CASE_FIELDS)})")
    unknown = set(row) - set(CASE_FIELDS)
    if unknown:
        raise SegmentWithSAM2Error(f"cases file {path} row {n}: unknown column(s) {sorted(unknown)} "
                                   f"(known: {', '.join(CASE_FIELDS)})")
    place = lambda value: (path.parent / value) if value else None  # noqa: E731  (relative to the cases file)
    image = place(row["image"])
    return Case(str(row.get("case_id") or case_id_of(image)), image, place(row.get("prompts")), place(row.get("labels")),
                row.get("series") or None)


def _refuse_repeats(ids: list, where) -> None:
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SegmentWithSAM2Error(f"{where}: case id(s) {', '.join(repeated)} appear more than once; "
                                   "every case needs its own id (outputs are named by it)")


def take_shard(cases: list[Case], shard: tuple[int, int] | None) -> list[Case]:
    """Part ``index`` of ``count`` (0-based, as a job array's task id), the cases in id order."""
    if shard is None:
        return cases
    index, count = shard
    return sorted(cases, key=lambda c: c.case_id)[index::count]
