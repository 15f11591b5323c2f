"""Batch segmentation over a dataset: cases matched with their prompts, every case checked before
a model loads, outputs written complete with a sidecar that makes resuming safe, and one line per
attempt in a manifest.  Embedded (one process, the model loaded once) by default."""
