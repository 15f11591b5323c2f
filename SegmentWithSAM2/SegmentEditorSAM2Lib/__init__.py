"""The "SAM2" Segment Editor effect (registered by SegmentWithSAM2Qt.registerSAM2Effect); Slicer's
effect loader looks the class up in this package (qSlicerSegmentEditorScriptedEffect::setPythonSource)."""

from .SegmentEditorEffect import SegmentEditorEffect  # noqa: F401
