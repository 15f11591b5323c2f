"""Building real MRML scenes (slicer-core) for the mrml-layer tests."""

from __future__ import annotations

import numpy as np
import slicer
import vtk


def vtk_matrix(matrix) -> vtk.vtkMatrix4x4:
    out = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            out.SetElement(r, c, float(matrix[r][c]))
    return out


def rotation(axis: int, degrees: float, translation=(0, 0, 0)) -> np.ndarray:
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [x for x in range(3) if x != axis]
    m = np.eye(4)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    m[:3, 3] = translation
    return m


def add_volume(scene, array, ijk_to_ras, parent_to_world=None, name="ct"):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    slicer.util.updateVolumeFromArray(node, array)
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras))
    if parent_to_world is not None:
        node.SetAndObserveTransformNodeID(add_transform(scene, parent_to_world).GetID())
    return node


def add_transform(scene, to_parent, name="transform"):
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    node.SetMatrixTransformToParent(vtk_matrix(to_parent))
    return node


def add_points(scene, world_points, parent_to_world=None, name="points"):
    """A point list whose *local* coordinates are computed so that the points sit at ``world_points``."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    to_local = np.eye(4)
    if parent_to_world is not None:
        node.SetAndObserveTransformNodeID(add_transform(scene, parent_to_world, name + " transform").GetID())
        to_local = np.linalg.inv(parent_to_world)
    for point in world_points:
        local = to_local @ np.append(point, 1.0)
        node.AddControlPoint(vtk.vtkVector3d(*local[:3]))
    return node


def exported_labelmap(scene, segmentation_node, segment_ids, volume_node) -> np.ndarray:
    """Slicer's own export of segments onto the volume's grid (independent of our reading code)."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "export")
    ids = vtk.vtkStringArray()
    for segment_id in segment_ids:
        ids.InsertNextValue(segment_id)
    ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentation_node, ids, labelmap, volume_node)
    assert ok
    array = slicer.util.arrayFromVolume(labelmap).copy()
    scene.RemoveNode(labelmap)
    return array
