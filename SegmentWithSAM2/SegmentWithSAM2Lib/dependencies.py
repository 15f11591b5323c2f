"""Python dependencies inside Slicer: installed on first use, after asking, never at import.

torch comes through Slicer's PyTorch extension (PyTorchUtils), sam2 without its declared
dependencies (they would pull a CUDA torch and torchvision), the rest pinned through
``slicer.pydeps.pip_ensure`` (Slicer 5.11+) or ``slicer.util.pip_install``.
"""

from __future__ import annotations

import importlib.util
import os

REQUIREMENTS = ["hydra-core>=1.3.2,<1.4", "iopath>=0.1.10,<0.2", "SimpleITK>=2.3,<3", "slicerio>=1.4,<2",
                "platformdirs>=3,<5", "filelock>=3.12,<5", "safetensors>=0.4,<0.9"]
SAM2_REQUIREMENT = "sam2==1.1.0"
MODULES = ("torch", "sam2", "hydra", "SimpleITK", "slicerio", "platformdirs", "filelock", "safetensors")


def missing_modules() -> list[str]:
    return [name for name in MODULES if importlib.util.find_spec(name) is None]


def ensure_dependencies() -> bool:
    import slicer

    missing = missing_modules()
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
            f"SegmentWithSAM2 needs these Python packages: {', '.join(missing)}. Install them now?"):
        return False
    if "torch" in missing:
        import PyTorchUtils

        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
            return False
    _pip_ensure(REQUIREMENTS)
    os.environ["SAM2_BUILD_CUDA"] = "0"
    slicer.util.pip_install(["--no-deps", "--no-build-isolation", SAM2_REQUIREMENT])
    return not missing_modules()


def _pip_ensure(requirements) -> None:
    import slicer

    try:
        import slicer.pydeps
        from packaging.requirements import Requirement
    except ImportError:  # Slicer before 5.11
        slicer.util.pip_install(requirements)
        return
    slicer.pydeps.pip_ensure([Requirement(r) for r in requirements], requester="SegmentWithSAM2")
