"""Masks on the volume grid written into segments of a segmentation node, and segments read back.

The segment's labelmap is given the volume's own geometry (no import through an identity
labelmap, no extra segments).  Overlap policy: ``overwrite`` takes the voxels from other
segments; ``keep_others`` leaves voxels of other segments to them.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.volume import Volume
from ..errors import SegmentWithSAM2Error
from ..options import OVERLAPS, look_up
from .volumes import node_to_world

TAG_PREFIX = "SegmentWithSAM2."
# Provenance written on each segment, as JSON values under TAG_PREFIX + key.
PROVENANCE_KEYS = ("model", "weights", "precision", "window", "axis", "slice_axis", "direction", "range",
                   "auto_stop", "postprocess", "prompts", "date", "version")


def oriented_image(mask: np.ndarray, image_to_world: np.ndarray):
    """A uint8 vtkOrientedImageData holding ``mask`` ([k, j, i]) with the given IJK->world matrix."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    image = slicer.vtkOrientedImageData()
    k, j, i = mask.shape
    image.SetDimensions(i, j, k)
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(mask, dtype=np.uint8).ravel(), deep=True,
                                         array_type=vtk.VTK_UNSIGNED_CHAR)
    image.GetPointData().SetScalars(scalars)
    image.SetImageToWorldMatrix(_vtk_matrix(image_to_world))
    return image


def segment_array(segmentation_node, segment_id: str, volume: Volume) -> np.ndarray:
    """A segment's voxels resampled onto the volume's grid (bool, [k, j, i])."""
    import slicer
    from vtk.util import numpy_support

    source = slicer.vtkOrientedImageData()
    # in the node's own coordinates (False: no parent transform), like the reference grid below (D8)
    slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(segmentation_node, segment_id,
                                                                                   source, False)
    if source.GetPointData().GetScalars() is None or source.IsEmpty():
        return np.zeros(volume.array.shape, dtype=bool)
    reference = oriented_image(np.zeros(volume.array.shape, np.uint8), _grid_in(segmentation_node, volume))
    resampled = slicer.vtkOrientedImageData()
    slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(source, reference, resampled)
    values = numpy_support.vtk_to_numpy(resampled.GetPointData().GetScalars())
    label = _label_value(segmentation_node, segment_id)
    return values.reshape(volume.array.shape) == label


def write_segment(segmentation_node, volume_node, volume: Volume, mask: np.ndarray, *, name: str, color,
                  segment_id: str | None = None, overlap: str = "overwrite", tags: dict | None = None) -> str:
    """Write ``mask`` into a new segment (``segment_id`` None) or replace that segment. Returns its id."""
    import slicer

    look_up(overlap, OVERLAPS, "overlap policy")
    ensure_converter_rules()
    if segmentation_node.GetDisplayNode() is None:  # a node made by a node selector has none: invisible (D3)
        segmentation_node.CreateDefaultDisplayNodes()
    segmentation = segmentation_node.GetSegmentation()
    if segment_id is not None and segmentation.GetSegment(segment_id) is None:
        raise SegmentWithSAM2Error(f"segment {segment_id!r} is not in {segmentation_node.GetName()}")
    others = [s for s in segmentation.GetSegmentIDs() if s != segment_id]
    if overlap == "keep_others":
        for other in others:
            mask = mask & ~segment_array(segmentation_node, other, volume)
    if segmentation_node.GetNodeReference(segmentation_node.GetReferenceImageGeometryReferenceRole()) is None \
            and not segmentation.GetNumberOfSegments():
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    if segment_id is None:
        segment_id = segmentation.AddEmptySegment("", name, list(color))
    image = mask_on_reference_grid(segmentation_node, volume, mask)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    overwritten = others if overlap == "overwrite" else []
    if not logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, logic.MODE_REPLACE,
                                            image.GetExtent(), False, overwritten):
        raise SegmentWithSAM2Error(f"could not write segment {name!r} into {segmentation_node.GetName()}")
    segment = segmentation.GetSegment(segment_id)
    segment.SetName(name)
    segment.SetColor(*color)
    for key, value in (tags or {}).items():
        segment.SetTag(TAG_PREFIX + key, json.dumps(value))
    return segment_id


def mask_on_reference_grid(segmentation_node, volume: Volume, mask: np.ndarray):
    """A mask on the volume's grid as a vtkOrientedImageData on the segmentation's reference grid."""
    return _on_reference_grid(segmentation_node, oriented_image(mask, _grid_in(segmentation_node, volume)))


def _on_reference_grid(segmentation_node, image):
    """The mask resampled (nearest neighbour) onto the segmentation's own reference geometry, as
    the Segment Editor does: segments share labelmap layers, and a mask on another lattice would
    make Slicer resample the whole shared layer, and so every other segment, onto it (D7;
    vtkSegmentationModifier::AppendLabelmapToSegment).  The identity when the lattices agree."""
    import slicer

    geometry = segmentation_node.GetSegmentation().GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    reference = slicer.vtkOrientedImageData()
    if not geometry or not slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry, reference, False):
        return image
    if _same_lattice(image, reference):
        return image
    resampled = slicer.vtkOrientedImageData()
    slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(image, reference, resampled,
                                                                                      False, True)
    return resampled


def _same_lattice(a, b) -> bool:
    import vtk

    ma, mb = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    a.GetImageToWorldMatrix(ma)
    b.GetImageToWorldMatrix(mb)
    return all(abs(ma.GetElement(r, c) - mb.GetElement(r, c)) < 1e-6 for r in range(4) for c in range(4))


def ensure_converter_rules() -> None:
    """Slicer's Segmentations module registers these at start-up; bare MRML (slicer-core) does not."""
    import slicer

    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    if len(factory.GetConverterRules()) == 0:
        factory.RegisterConverterRule(slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule())
        factory.RegisterConverterRule(slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule())


def read_tags(segment) -> dict:
    """The provenance written on a segment, parsed back (JSON values)."""
    import vtk

    tags = {}
    for key in PROVENANCE_KEYS:
        value = vtk.reference("")
        if segment.GetTag(TAG_PREFIX + key, value):
            tags[key] = json.loads(str(value))
    return tags


def _grid_in(segmentation_node, volume: Volume) -> np.ndarray:
    """The volume's IJK -> segmentation-node coordinates (the segmentation may sit under a transform)."""
    return np.linalg.inv(node_to_world(segmentation_node)) @ volume.ijk_to_ras


def _label_value(segmentation_node, segment_id) -> int:
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    return int(segment.GetLabelValue()) if hasattr(segment, "GetLabelValue") else 1


def _vtk_matrix(matrix: np.ndarray):
    import vtk

    out = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            out.SetElement(r, c, float(matrix[r, c]))
    return out


def segment_as_mask_prompt(segmentation_node, segment_id: str, volume: Volume, slice_index: int) -> dict:
    """An existing segment used as the mask prompt on one slice (index along the propagation axis)."""
    if segmentation_node is None or segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        raise SegmentWithSAM2Error(f"segment {segment_id!r} not found; choose a segment to use as the mask prompt")
    return {"slice": int(slice_index), "mask": segment_array(segmentation_node, segment_id, volume)}


NEW_SEGMENT_COLOR = (0.9, 0.5, 0.1)


def chosen_segment(segmentation_node, segment_id: str, new_name: str) -> tuple[str | None, str, tuple]:
    """The segment a run writes, as (id, name, colour): the one chosen in the panel's segment
    selector, keeping its name and colour, else (None, ``new_name``, a default colour) for a new
    segment (or the one of that name: worker._replaced_segments).  A chosen id no longer in the
    segmentation (deleted meanwhile) counts as no choice."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id) if segmentation_node and segment_id else None
    if segment is None:
        return None, new_name, NEW_SEGMENT_COLOR
    return segment_id, segment.GetName(), tuple(segment.GetColor())
