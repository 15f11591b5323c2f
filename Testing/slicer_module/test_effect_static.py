"""Static checks of the "SAM2" Segment Editor effect's Qt file (no Slicer application runs here):
it compiles, follows the loader's naming rules, calls only methods Slicer's effect API has, binds
no key the Segment Editor already binds, and is registered by the module and listed in CMake.
The effect's behaviour is tested without Qt in Testing/mrml/test_editing.py."""

import ast
import py_compile
import re
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[2] / "SegmentWithSAM2"
EFFECT = MODULE_DIR / "SegmentEditorSAM2Lib" / "SegmentEditorEffect.py"

# qSlicerSegmentEditorAbstractEffect's methods the Python side can call (Slicer
# Modules/Loadable/Segmentations/EditorEffects/qSlicerSegmentEditorAbstractEffect.h, 583e9b37)
SCRIPTED_EFFECT_API = {
    "name", "perSegment", "requireSegments", "saveStateForUndo", "modifySelectedSegmentByLabelmap",
    "modifySegmentByLabelmap", "defaultModifierLabelmap", "parameterSetNode", "addOptionsWidget",
    "addLabeledOptionsWidget", "sourceVolumeImageData", "selectedSegmentLabelmap", "addActor2D", "removeActor2D",
    "parameter", "setParameter", "integerParameter", "doubleParameter", "cursorOff", "cursorOn", "selectEffect",
    "active", "confirmCurrentSegmentVisible", "segmentationDisplayableInView"}  # .h:140, :399, :470
# qMRMLSegmentEditorWidget::installKeyboardShortcuts (Widgets/qMRMLSegmentEditorWidget.cxx:2314-2393)
EDITOR_KEYS = {*"0123456789", "Escape", "space", "z", "y", "q", "w", "i", "slash", "asterisk", "comma",
               "period", "less", "greater"}
# a slice view's keys (Libs/MRML/DisplayableManager/vtkMRMLSliceIntersectionWidget.cxx:168-196) and the
# markups' (Modules/Loadable/Markups/VTKWidgets/vtkSlicerMarkupsWidget.cxx:69-72)
VIEW_KEYS = {"g", "t", "Left", "Right", "Up", "Down", "f", "b", "v", "V", "r", "bracketleft", "bracketright",
             "braceleft", "braceright", "s", "Delete", "BackSpace"}


def effect_tree():
    return ast.parse(EFFECT.read_text())


def test_the_effect_compiles_and_has_the_class_slicers_loader_looks_for(tmp_path):
    py_compile.compile(str(EFFECT), cfile=str(tmp_path / "effect.pyc"), doraise=True)
    classes = [n.name for n in effect_tree().body if isinstance(n, ast.ClassDef)]
    assert "SegmentEditorEffect" in classes  # the file's name (qSlicerSegmentEditorScriptedEffect::setPythonSource)
    package = (EFFECT.parent / "__init__.py").read_text()
    assert "from .SegmentEditorEffect import SegmentEditorEffect" in package


def test_the_effect_calls_only_methods_slicers_effect_api_has():
    called = {node.attr for node in ast.walk(effect_tree()) if isinstance(node, ast.Attribute)
              and isinstance(node.value, ast.Attribute) and node.value.attr == "scriptedEffect"}
    called |= {node.attr for node in ast.walk(effect_tree()) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Name) and node.value.id == "effect"}
    assert called and called <= SCRIPTED_EFFECT_API, sorted(called - SCRIPTED_EFFECT_API)
    methods = {n.name for c in effect_tree().body if isinstance(c, ast.ClassDef) for n in c.body
               if isinstance(n, ast.FunctionDef)}
    assert {"clone", "icon", "helpText", "setupOptionsFrame", "processInteractionEvents", "deactivate"} <= methods


def test_the_effects_keys_do_not_clash_with_the_editors_or_the_views_and_are_in_its_help():
    keys = next(n.value for n in effect_tree().body if isinstance(n, ast.Assign) and n.targets[0].id == "KEYS")
    names = [k.value for k in keys.keys]
    assert len(names) >= 5 and not set(names) & (EDITOR_KEYS | VIEW_KEYS)
    help_text = next(n for c in effect_tree().body if isinstance(c, ast.ClassDef) for n in c.body
                     if isinstance(n, ast.FunctionDef) and n.name == "helpText")
    text = " ".join(s.value for s in ast.walk(help_text) if isinstance(s, ast.Constant) and isinstance(s.value, str))
    for key in names:
        assert re.search(rf"\b{key}\b", text), f"key {key!r} is not in the effect's help text"


def test_the_module_registers_the_effect_and_cmake_installs_it():
    module = (MODULE_DIR / "SegmentWithSAM2.py").read_text()
    assert 'slicer.app.connect("startupCompleted()", registerSAM2Effect)' in module
    helpers = (MODULE_DIR / "SegmentWithSAM2Qt" / "__init__.py").read_text()
    assert '"SegmentEditorSAM2Lib", "SegmentEditorEffect.py"' in helpers and "register()" in helpers
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert "SegmentWithSAM2Qt/*.py SegmentEditorSAM2Lib/*.py" in cmake and "${MODULE_QT_SCRIPTS}" in cmake
