"""MRML layer: volume nodes, markups and segmentation nodes in and out of the core engine.

Imports Slicer's MRML/VTK classes (available headless from the ``slicer-core`` wheel) but never
Qt, CTK or the Slicer application.
"""
