"""Volume nodes as core volumes: voxels as a view, the IJK->RAS matrix with parent transforms."""

from __future__ import annotations

import numpy as np

from ..core.volume import Volume
from ..errors import SegmentWithSAM2Error


def matrix_to_numpy(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def node_to_world(node) -> np.ndarray:
    """The 4x4 matrix from a node's own coordinates to world; a non-linear transform is refused."""
    import vtk

    transform = node.GetParentTransformNode()
    if transform is None:
        return np.eye(4)
    if not transform.IsTransformToWorldLinear():
        raise SegmentWithSAM2Error(
            f"{node.GetName()} is under the non-linear transform {transform.GetName()!r}; harden or remove it first")
    matrix = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(matrix)
    return matrix_to_numpy(matrix)


def volume_from_node(volume_node) -> Volume:
    """A scalar volume node as a core Volume in world RAS; the voxels are a view, never modified."""
    import slicer

    if volume_node is None:
        raise SegmentWithSAM2Error("no input volume: select a volume to segment")
    if not volume_node.IsA("vtkMRMLScalarVolumeNode") or volume_node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise SegmentWithSAM2Error(f"{volume_node.GetName()} is not a scalar volume ({volume_node.GetClassName()})")
    image = volume_node.GetImageData()
    if image is None:
        raise SegmentWithSAM2Error(f"volume {volume_node.GetName()} has no voxels")
    components = image.GetNumberOfScalarComponents()
    if components != 1:
        raise SegmentWithSAM2Error(
            f"volume {volume_node.GetName()} has {components} components per voxel (colour, vector or 4D); "
            "extract one scalar component first")
    ijk_to_ras = vtk_matrix(volume_node.GetIJKToRASMatrix)
    array = slicer.util.arrayFromVolume(volume_node)
    array.flags.writeable = False  # the engine only reads the voxels; a write would be a bug
    metadata = {"node_id": volume_node.GetID(), "name": volume_node.GetName()}
    return Volume(array, node_to_world(volume_node) @ ijk_to_ras, metadata)


def vtk_matrix(getter) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    getter(matrix)
    return matrix_to_numpy(matrix)
