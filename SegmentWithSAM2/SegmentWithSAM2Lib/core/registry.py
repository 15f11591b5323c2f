"""The model registry (model_zoo/models.json), the checkpoint cache, and config resolution."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import Remedy, SegmentWithSAM2Error

CACHE_ENV = "SEGMENTWITHSAM2_CACHE"
ZOO_ENV = "SEGMENTWITHSAM2_MODEL_ZOO"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    family: str
    name: str
    config: str
    image_size: int
    urls: tuple
    sha256: str | None
    entry: dict  # the full registry entry (license, modalities, window, ...)

    @property
    def filename(self) -> str:
        return self.entry["file"].rsplit("/", 1)[-1] if self.entry.get("file") else self.urls[0].rsplit("/", 1)[-1]


def model_zoo_dir() -> Path:
    """model_zoo/ beside the package (installed wheel, Slicer build) or at the repository root."""
    here = Path(__file__).resolve().parent.parent
    candidates = [os.environ.get(ZOO_ENV), here / "model_zoo", here.parent.parent / "model_zoo"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "models.json").is_file():
            return Path(candidate)
    raise SegmentWithSAM2Error(f"model_zoo/models.json not found (looked in {[str(c) for c in candidates if c]})")


def load_registry() -> dict[str, ModelSpec]:
    data = json.loads((model_zoo_dir() / "models.json").read_text())
    return {m["id"]: ModelSpec(m["id"], m["family"], m["name"], m["config"], int(m["image_size"]),
                               tuple(m["urls"]), m["sha256"], m) for m in data["models"]}


def model_spec(model_id: str) -> ModelSpec:
    registry = load_registry()
    if model_id not in registry:
        raise SegmentWithSAM2Error(
            f"unknown model {model_id!r}; known models: {', '.join(registry)} "
            "(or give --checkpoint PATH with --config)")
    return registry[model_id]


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("segment-with-sam2", appauthor=False))


def checkpoint_path(spec: ModelSpec) -> Path:
    """Where the checkpoint is or will be: shipped in model_zoo/ (``file``) or in the cache."""
    return model_zoo_dir() / spec.entry["file"] if spec.entry.get("file") else cache_dir() / spec.filename


def cached_checkpoint(spec: ModelSpec) -> Path:
    path = checkpoint_path(spec)
    if not path.is_file():
        raise SegmentWithSAM2Error(f"model {spec.id!r} is not downloaded (no {path})", Remedy("download", spec.id))
    return path


def resolve_config(name_or_path: str) -> Path:
    """A config file: a path, a file in model_zoo/configs/, or a sam2 config name."""
    import sam2  # the package's own configs live beside it

    text = str(name_or_path)
    sam2_configs = Path(sam2.__file__).parent
    candidates = [Path(text), model_zoo_dir() / "configs" / text, sam2_configs / text,
                  sam2_configs / "configs" / text]
    for candidate in list(candidates):
        candidates.append(candidate.with_name(candidate.name + ".yaml"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SegmentWithSAM2Error(
        f"config {text!r} not found; give a yaml path, a file of model_zoo/configs/ or a sam2 config "
        "such as configs/sam2.1/sam2.1_hiera_t.yaml")
