"""A volume: voxels in [k, j, i] order plus the 4x4 IJK->RAS matrix (the Slicer/ITK convention)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SegmentWithSAM2Error

# RAS and LPS differ by the sign of the first two patient axes.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """Voxels indexed [k, j, i] (as SimpleITK and slicer.util.arrayFromVolume give them).

    ``ijk_to_ras`` maps homogeneous (i, j, k, 1) to RAS millimetres; ``metadata`` may hold
    ``modality`` (CT, MR, PT, ...) and ``window`` ((center, width) from DICOM tags).
    """

    array: np.ndarray
    ijk_to_ras: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.array = np.asarray(self.array)
        self.ijk_to_ras = np.asarray(self.ijk_to_ras, dtype=float)
        check_voxels(self.array)
        check_matrix(self.ijk_to_ras)

    @classmethod
    def from_lps(cls, array, ijk_to_lps, metadata=None) -> "Volume":
        return cls(array, LPS_TO_RAS @ np.asarray(ijk_to_lps, dtype=float), metadata or {})

    @property
    def ijk_to_lps(self) -> np.ndarray:
        return LPS_TO_RAS @ self.ijk_to_ras

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        k, j, i = self.array.shape
        return i, j, k

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in millimetres."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def directions(self) -> np.ndarray:
        """Unit RAS direction of each IJK axis, as columns."""
        return self.ijk_to_ras[:3, :3] / self.spacing

    def ras_to_ijk(self, points_ras) -> np.ndarray:
        return apply_affine(np.linalg.inv(self.ijk_to_ras), points_ras)

    def ijk_to_ras_points(self, points_ijk) -> np.ndarray:
        return apply_affine(self.ijk_to_ras, points_ijk)


def same_grid(a: Volume, b: Volume, atol: float = 1e-4) -> bool:
    """Whether two volumes share one voxel grid (shape and IJK->RAS within ``atol`` mm)."""
    return a.array.shape == b.array.shape and bool(np.allclose(a.ijk_to_ras, b.ijk_to_ras, atol=atol))


def apply_affine(matrix, points) -> np.ndarray:
    points = np.atleast_2d(np.asarray(points, dtype=float))
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def check_voxels(array: np.ndarray) -> None:
    if array.ndim == 2:
        raise SegmentWithSAM2Error(
            f"the image is 2D {array.shape}; SegmentWithSAM2 needs a 3D volume (a stack of slices)")
    if array.ndim != 3:
        raise SegmentWithSAM2Error(
            f"the image has {array.ndim} dimensions {array.shape}; give a single 3D volume "
            "(pick one time point or channel first)")
    if array.size == 0:
        raise SegmentWithSAM2Error(f"the volume is empty (shape {array.shape})")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise SegmentWithSAM2Error(f"the volume has non-numeric voxels ({array.dtype})")
    if np.iscomplexobj(array):
        raise SegmentWithSAM2Error("the volume has complex voxels; give magnitude or phase")


def check_matrix(matrix: np.ndarray) -> None:
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise SegmentWithSAM2Error(f"the IJK->RAS matrix must be a finite 4x4 matrix, got {matrix.shape}")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise SegmentWithSAM2Error("the IJK->RAS matrix is singular (a zero spacing or repeated direction)")
