"""Shared fixtures: real sam2 models with random (seeded) weights, saved checkpoints, volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from SegmentWithSAM2Lib.core.volume import Volume
from support import oblique_lps_matrix, random_model  # noqa: F401  (re-exported for the suites)

torch.set_num_threads(2)
MEDSAM2_CONFIG = "medsam2_512.yaml"


@pytest.fixture(scope="session")
def medsam2_random():
    """MedSAM2's 512-px architecture with random weights (seed 0), fp32 on the CPU."""
    return random_model()


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory, medsam2_random):
    """The random MedSAM2 weights saved as sam2 saves them: {"model": state_dict}."""
    path = tmp_path_factory.mktemp("checkpoints") / "medsam2_random.pt"
    torch.save({"model": medsam2_random.predictor.state_dict()}, path)
    return path


@pytest.fixture
def oblique_volume():
    """A small int16 CT-like volume on an oblique, anisotropic, LPS-stored grid; voxels unique."""
    shape_kji = (7, 40, 56)
    array = (np.arange(np.prod(shape_kji)).reshape(shape_kji) % 2000 - 1000).astype(np.int16)
    return Volume.from_lps(array, oblique_lps_matrix(), {"modality": "CT"})
