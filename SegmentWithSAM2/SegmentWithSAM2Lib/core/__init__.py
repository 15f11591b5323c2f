"""Core layer: numpy + torch + sam2 only (no Slicer, no Qt, no file formats)."""
