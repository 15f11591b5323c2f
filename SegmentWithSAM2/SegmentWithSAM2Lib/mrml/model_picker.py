"""The Slicer module's one model picker (D14): each registry model with its state in the item
text — shipped, downloaded, partly downloaded, or not downloaded with its size — and the question
asked before the first run of a model that is not there yet.  Plain values, no Qt: the module
writes ``label`` and ``tooltip`` into the combobox items the parameter node's Choice created, in
the same order (``model_ids``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from ..io.model_cache import CacheEntry, cache_entry
from ..io.model_zoo import load_registry

MB = 1e6


@dataclass(frozen=True)
class ModelChoice:
    model_id: str
    label: str  # the picker's item text
    tooltip: str
    ready: bool  # its weights are here (shipped or downloaded): a run needs no download
    offer: str  # the question before the first run of a model to download ("" when there is none)


def model_ids() -> list[str]:
    """The registry's ids in its order: the parameter node's Choice, hence the combobox rows."""
    return list(load_registry())


def model_choices() -> list[ModelChoice]:
    return [model_choice(model_id) for model_id in model_ids()]


def model_choice(model_id: str) -> ModelChoice:
    entry = cache_entry(model_id)
    spec = entry.spec
    state = _state(entry)
    tooltip = f"{spec.name}; {spec.license or 'license not recorded'}; {entry.path}"
    if entry.size is not None or spec.shipped:  # a shipped file that is missing: the run says to reinstall
        return ModelChoice(model_id, f"{model_id} ({state})", tooltip, entry.size is not None, "")
    source = urlparse(spec.urls[0]).hostname if spec.urls else "nowhere (the registry lists no URL)"
    offer = (f"{spec.name} ({model_id}) is {state}. Download it now from {source}? It is verified by its "
             f"checksum and kept in the cache, so this is asked once; Cancel during the download keeps the "
             f"part fetched and the next Download resumes it.")
    return ModelChoice(model_id, f"{model_id} ({state})", tooltip, False, offer)


def _state(entry: CacheEntry) -> str:
    if entry.spec.shipped:
        return "shipped" if entry.size is not None else "missing from this install"
    if entry.size is not None:
        return "downloaded"
    total = _size_text(entry.spec)
    if entry.partial:
        return f"partly downloaded: {entry.partial / MB:.1f} of {total or 'unknown'} MB"
    return f"not downloaded, {total} MB" if total else "not downloaded"


def _size_text(spec) -> str:
    if spec.size_bytes:
        return f"{spec.size_bytes / MB:.0f}"
    return f"about {spec.approx_size_mb}" if spec.approx_size_mb else ""
