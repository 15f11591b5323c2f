"""Static checks of the Slicer module (the Slicer application cannot run here): the module file
compiles, every widget it uses exists in the .ui, every SlicerParameterName in the .ui is a field of
the typed parameter node, and the module's CMakeLists lists every Python file and resource."""

import ast
import py_compile
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "SegmentWithSAM2"
MODULE = MODULE_DIR / "SegmentWithSAM2.py"
UI = MODULE_DIR / "Resources" / "UI" / "SegmentWithSAM2.ui"


def ui_widgets():
    tree = ElementTree.parse(UI)
    names = {w.get("name") for w in tree.iter("widget")}
    bound = {}
    for widget in tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[widget.get("name")] = prop.find("string").text
    return names, bound


def parameter_fields():
    tree = ast.parse(MODULE.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", None) == "parameterNodeWrapper" for d in node.decorator_list):
            return {stmt.target.id for stmt in node.body if isinstance(stmt, ast.AnnAssign)}
    raise AssertionError("no @parameterNodeWrapper class in the module file")


def used_ui_names():
    tree = ast.parse(MODULE.read_text())
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"}


def test_module_file_compiles(tmp_path):
    py_compile.compile(str(MODULE), cfile=str(tmp_path / "module.pyc"), doraise=True)


def test_every_widget_the_module_uses_is_in_the_ui():
    names, _ = ui_widgets()
    missing = used_ui_names() - names
    assert not missing, f"widgets used by SegmentWithSAM2.py but absent from the .ui: {sorted(missing)}"
    assert len(used_ui_names()) >= 15


def test_every_parameter_binding_names_a_parameter_node_field():
    _, bound = ui_widgets()
    fields = parameter_fields()
    unknown = {w: p for w, p in bound.items() if p not in fields}
    assert not unknown, f"SlicerParameterName values with no parameter-node field: {unknown}"
    unbound = fields - set(bound.values())
    assert not unbound, f"parameter-node fields without a widget: {sorted(unbound)}"


def test_cmake_lists_every_python_file_and_resource():
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "SegmentWithSAM2")
    assert "SegmentWithSAM2.py" in cmake and "Resources/UI/SegmentWithSAM2.ui" in cmake
    assert "Resources/Icons/SegmentWithSAM2.png" in cmake and "WITH_GENERIC_TESTS" in cmake
    assert re.search(r"GLOB_RECURSE MODULE_LIB_SCRIPTS .*SegmentWithSAM2Lib/\*\.py", cmake)
    assert "slicer_add_python_unittest" in cmake or "SegmentWithSAM2Test" in cmake


@pytest.mark.parametrize("path", [MODULE, MODULE_DIR / "SegmentEditorSAM2Lib" / "SegmentEditorEffect.py"],
                         ids=["module", "effect"])
def test_the_module_leaves_threads_and_model_work_to_the_worker(path):
    """The module and effect files only read the GUI, the views and the parameter nodes; the
    shared mrml.worker runs the model (the module's self-test aside)."""
    tree = ast.parse(path.read_text())
    tree.body = [node for node in tree.body if getattr(node, "name", "") != "SegmentWithSAM2Test"]
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | \
        {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not imported & {"threading", "concurrent.futures", "run_engine", "VolumeSession", "load_model"}
    assert not names & {"ThreadPoolExecutor", "Thread", "run_engine", "VolumeSession", "SegmentWithSAM2Job"}
    assert "shared_worker" in imported


def test_d13_the_range_fields_are_bounded_so_whole_volume_shows():
    tree = ast.parse(MODULE.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SegmentWithSAM2ParameterNode")
    annotations = {s.target.id: ast.unparse(s.annotation) for s in node.body if isinstance(s, ast.AnnAssign)}
    assert annotations["rangeFirst"] == annotations["rangeLast"] == "Annotated[int, WithinRange(-1, 100000)]"


def test_d24_the_input_list_hides_volumes_that_would_be_refused():
    tree = ElementTree.parse(UI)
    selector = next(w for w in tree.iter("widget") if w.get("name") == "inputVolumeSelector")
    hidden = [s.text for p in selector.findall("property") if p.get("name") == "hideChildNodeTypes"
              for s in p.iter("string")]
    assert hidden == ["vtkMRMLLabelMapVolumeNode", "vtkMRMLVectorVolumeNode"]


def test_d11_model_zoo_with_micro_weights_reaches_build_tree_and_install():
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert re.search(r"file\(COPY \$\{CMAKE_CURRENT_SOURCE_DIR\}/\.\./model_zoo\s+DESTINATION \$\{CMAKE_BINARY_DIR\}", cmake)
    assert cmake.count('PATTERN "*.pt"') == 2 and cmake.count('PATTERN "*.json"') == 2
    top = (MODULE_DIR.parent / "CMakeLists.txt").read_text()
    assert 'VERSION_LESS "5.10"' in top and "Requires 3D Slicer 5.10 or later" in top


def test_one_model_picker_bound_to_a_choice_over_the_registry():
    """D14: one combobox bound to ``model``, a Choice whose rows are the registry's ids in order
    (the module relabels those rows with each model's state)."""
    _, bound = ui_widgets()
    assert [w for w, p in bound.items() if p == "model"] == ["modelSelector"]
    tree = ElementTree.parse(UI)
    assert next(w for w in tree.iter("widget") if w.get("name") == "modelSelector").get("class") == "QComboBox"
    source = MODULE.read_text()
    assert "model: Annotated[str, Choice(model_ids())] = DEFAULT_MODEL" in source
    assert "setItemText(row, choice.label)" in source


def test_the_segment_selector_is_given_the_scene_and_offers_none():
    """Item 6: the selector gets the scene from the panel (.ui connection) and has "None" (a new
    segment): without it Slicer selects the first segment and a first run would overwrite it
    (qMRMLSegmentSelectorWidget::populateSegmentCombobox, 5.10)."""
    tree = ElementTree.parse(UI)
    receivers = {c.findtext("receiver") for c in tree.iter("connection") if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    selector = next(w for w in tree.iter("widget") if w.get("name") == "segmentSelector")
    props = {p.get("name"): p.find("bool").text for p in selector.findall("property") if p.find("bool") is not None}
    assert "segmentSelector" in receivers and selector.get("class") == "qMRMLSegmentSelectorWidget"
    assert props == {"noneEnabled": "true", "editEnabled": "false", "segmentationNodeSelectorVisible": "false"}


def test_run_on_server_keeps_url_and_token_out_of_the_scene_and_installs_nothing():
    """Issue 20: the "Run on" rows exist, none is bound to the parameter node (a scene file is
    shared; the token is a credential, kept in the user's Slicer settings by ServerChoice), and
    a run on a server skips the package install and the weights download."""
    names, bound = ui_widgets()
    rows = {"runOnComboBox", "serverUrlLineEdit", "serverTokenLineEdit"}
    assert rows <= names and not rows & set(bound)
    tree = ElementTree.parse(UI)
    token = next(w for w in tree.iter("widget") if w.get("name") == "serverTokenLineEdit")
    assert [p.findtext("enum") for p in token.findall("property") if p.get("name") == "echoMode"] == ["QLineEdit::Password"]
    source = MODULE.read_text()
    assert "server is None or self._busy() or not server and not (self._installed() and self._weightsAtHand())" in source
    assert source.count("server=server") == 3  # the panel's runs, Logic.startSegment and the console's Logic.segment
    helper = (MODULE_DIR / "SegmentWithSAM2Qt" / "__init__.py").read_text()
    assert "qt.QSettings()" in helper and "parameterNode" not in helper.split("class ServerChoice")[1]
