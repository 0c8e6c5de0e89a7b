"""Static checks of the Slicer layer (no Slicer needed): the files compile, import only what Slicer
provides, the .ui files parse and match the parameter nodes and the code, and CMake lists every file."""
from __future__ import annotations

import ast
import py_compile
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULES = ("PseudoNoduleSeg", "LesionAugment", "NodMAISI", "HRLDMInpaint")
GLUE = "NodMAISICommon"
ALLOWED_ROOTS = {"slicer", "vtk", "qt", "ctk", "nodsynth", "numpy", GLUE, "__future__"}
EXTENSION_KEYS = ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                  "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS")


def slicer_python_files() -> list[Path]:
    files = sorted((REPO / GLUE).rglob("*.py"))
    for module in MODULES:
        files += sorted((REPO / module).rglob("*.py"))
    files += sorted((REPO / "Resources" / "Scripts").glob("*.py"))  # run by headless Slicer
    return [f for f in files if "__pycache__" not in f.parts]


def module_level_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """Top-level module names imported at module level (also inside top-level if/try blocks)."""
    found = []
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, (ast.If, ast.Try)):
            stack += node.body + node.orelse + getattr(node, "finalbody", [])
            for handler in getattr(node, "handlers", []):
                stack += handler.body
    return found


def cmake_text(folder: Path) -> str:
    text = (folder / "CMakeLists.txt").read_text()
    return re.sub(r"#[^\n]*", "", text)


def cmake_listed_files(folder: Path) -> set[str]:
    """Every path a folder's CMakeLists.txt lists (${MODULE_NAME} substituted)."""
    text = cmake_text(folder)
    name = re.search(r"set\(MODULE_NAME\s+(\w+)\)", text)
    if name:
        text = text.replace("${MODULE_NAME}", name.group(1))
    return set(re.findall(r"^\s*([\w./-]+\.(?:py|ui|png|json|svg))\s*$", text, flags=re.M))


def ui_tree(module: str) -> ET.Element:
    return ET.parse(REPO / module / "Resources" / "UI" / f"{module}.ui").getroot()


def parameter_fields(module: str) -> set[str]:
    tree = ast.parse((REPO / module / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                getattr(d, "id", getattr(d, "attr", None)) == "parameterNodeWrapper" for d in node.decorator_list):
            return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    raise AssertionError(f"{module}.py has no @parameterNodeWrapper class")


# ------------------------------------------------------------------------------------ python files
@pytest.mark.parametrize("path", slicer_python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_compiles_and_imports_only_what_slicer_provides(path: Path, tmp_path: Path):
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)
    module_folder = path.relative_to(REPO).parts[0]
    allowed = ALLOWED_ROOTS | set(sys.stdlib_module_names) | {f"{module_folder}Lib"}
    bad = [(name, line) for name, line in module_level_imports(ast.parse(path.read_text())) if name not in allowed]
    assert not bad, f"{path.name} imports at module level what Slicer does not ship: {bad}"


def test_the_import_rule_catches_a_foreign_import():
    tree = ast.parse("import os\nimport torch\ntry:\n    import sklearn\nexcept ImportError:\n    pass\n"
                     "def f():\n    import scipy\n")
    names = {name for name, _ in module_level_imports(tree)}
    assert names == {"os", "torch", "sklearn"}  # scipy is imported lazily inside a function


# ------------------------------------------------------------------------------------------ modules
@pytest.mark.parametrize("module", MODULES)
def test_module_has_the_scripted_module_classes(module: str):
    tree = ast.parse((REPO / module / f"{module}.py").read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    for suffix, base in (("", "ScriptedLoadableModule"), ("Widget", "ScriptedLoadableModuleWidget"),
                         ("Logic", "ScriptedLoadableModuleLogic"), ("Test", "ScriptedLoadableModuleTest")):
        cls = classes.get(module + suffix)
        assert cls is not None, f"{module}.py lacks class {module + suffix}"
        assert {base, "ModuleWidgetBase"} & {getattr(b, "id", None) for b in cls.bases}, f"{module + suffix} must derive from {base}"
    test_methods = {n.name for n in classes[module + "Test"].body if isinstance(n, ast.FunctionDef)}
    assert "runTest" in test_methods and any(n.startswith("test_") for n in test_methods)


@pytest.mark.parametrize("module", MODULES)
def test_ui_parameter_names_are_parameter_node_fields(module: str):
    root = ui_tree(module)
    assert root.tag == "ui" and root.find("widget").get("class") == "qMRMLWidget"
    fields = parameter_fields(module)
    bound = {prop.find("string").text for prop in root.iter("property") if prop.get("name") == "SlicerParameterName"}
    assert bound, f"{module}.ui binds no widget to the parameter node"
    assert bound <= fields, f"{module}.ui names parameters the wrapper lacks: {sorted(bound - fields)}"


@pytest.mark.parametrize("module", MODULES)
def test_every_ui_widget_the_code_uses_exists(module: str):
    names = {w.get("name") for w in ui_tree(module).iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", (REPO / module / f"{module}.py").read_text()))
    assert used, f"{module}.py does not use its .ui"
    assert used <= names, f"{module}.py uses widgets missing from {module}.ui: {sorted(used - names)}"


@pytest.mark.parametrize("module", MODULES)
def test_custom_widgets_are_declared_with_their_bases_first(module: str):
    root = ui_tree(module)
    declared = [(c.findtext("class"), c.findtext("extends")) for c in root.iter("customwidget")]
    names = [name for name, _ in declared]
    used = {w.get("class") for w in root.iter("widget")}
    standard = {"QWidget", "QLabel", "QPushButton", "QComboBox", "QCheckBox", "QSpinBox", "QLineEdit", "QProgressBar"}
    assert used - standard <= set(names), f"{module}.ui uses undeclared widgets {sorted(used - standard - set(names))}"
    for position, (name, base) in enumerate(declared):
        if base in names:
            assert names.index(base) < position, f"{module}.ui declares {name} before its base {base}"


@pytest.mark.parametrize("module", MODULES)
def test_mrml_widgets_receive_the_scene(module: str):
    root = ui_tree(module)
    needing = {w.get("name") for w in root.iter("widget")
               if w.get("class") in ("qMRMLNodeComboBox", "qSlicerMarkupsPlaceWidget", "qMRMLSegmentSelectorWidget")}
    connected = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    assert needing <= connected, f"{module}.ui: no scene for {sorted(needing - connected)}"


@pytest.mark.parametrize("folder", MODULES + (GLUE,))
def test_cmake_lists_every_file_and_only_existing_ones(folder: str):
    base = REPO / folder
    listed = cmake_listed_files(base)
    present = {str(p.relative_to(base)) for p in base.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.name != "CMakeLists.txt"}
    assert present - listed == set(), f"{folder}: files not listed in CMakeLists.txt: {sorted(present - listed)}"
    assert listed - present == set(), f"{folder}: CMakeLists.txt lists missing files: {sorted(listed - present)}"


@pytest.mark.parametrize("module", MODULES)
def test_module_cmake_builds_a_tested_scripted_module(module: str):
    text = cmake_text(REPO / module)
    assert f"set(MODULE_NAME {module})" in text
    assert re.search(r"slicerMacroBuildScriptedModule\([^)]*WITH_GENERIC_TESTS", text, flags=re.S)
    assert re.search(r"slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py", text)


@pytest.mark.parametrize("module", MODULES)
def test_module_icon_is_a_png(module: str):
    from PIL import Image

    with Image.open(REPO / module / "Resources" / "Icons" / f"{module}.png") as image:
        assert image.format == "PNG" and min(image.size) >= 64


# ------------------------------------------------------------------------------------ the extension
def test_top_level_cmake_is_a_slicer_extension():
    text = cmake_text(REPO)
    for key in EXTENSION_KEYS:
        assert re.search(rf'set\({key}\s+"[^"]+"\)', text), f"top-level CMakeLists.txt lacks {key}"
    assert re.search(r'set\(EXTENSION_DEPENDS\s+"[^"]*PyTorch', text)
    version = re.search(r"cmake_minimum_required\(VERSION\s+([\d.]+)\)", text)
    assert version and tuple(int(v) for v in version.group(1).split(".")[:2]) >= (3, 28)
    assert "project(NodMAISI)" in text
    order = ["find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})", "add_subdirectory(",
             "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"]
    positions = [text.find(token) for token in order]
    assert -1 not in positions and positions == sorted(positions), "extension CMake statements missing or out of order"
    assert "nodsynth/*.py" in text, "the nodsynth package must be installed beside the modules"


def test_one_add_subdirectory_per_module_folder():
    text = cmake_text(REPO)
    subdirs = re.findall(r"add_subdirectory\((\w+)\)", text)
    folders = sorted(p.parent.name for p in REPO.glob("*/CMakeLists.txt"))
    assert sorted(subdirs) == folders == sorted(MODULES + (GLUE,))


def test_screenshots_exist():
    text = cmake_text(REPO)
    urls = re.search(r'set\(EXTENSION_SCREENSHOTURLS\s+"([^"]+)"\)', text).group(1).split()
    for url in urls:
        path = REPO / re.search(r"/(Resources/Screenshots/[\w.-]+)$", url).group(1)
        assert path.is_file(), f"screenshot {path} is missing"


def test_extension_installs_every_data_file_nodsynth_reads():
    """Every file in Resources/ other than icons, screenshots and scripts matches the CMake globs."""
    text = cmake_text(REPO)
    suffixes = set(re.findall(r"\$\{CMAKE_CURRENT_SOURCE_DIR\}/Resources/\*(\.\w+)", text))
    assert ".json" in suffixes
    skipped = {"Icons", "Screenshots", "Scripts", "__pycache__"}
    data = [p for p in (REPO / "Resources").rglob("*")
            if p.is_file() and not skipped & set(p.relative_to(REPO / "Resources").parts)]
    assert data and all(p.suffix in suffixes for p in data), sorted(str(p) for p in data if p.suffix not in suffixes)


def test_extension_icon_exists():
    from PIL import Image

    text = cmake_text(REPO)
    icon = re.search(r'EXTENSION_ICONURL\s+"[^"]*/(Resources/Icons/[\w.]+)"', text).group(1)
    with Image.open(REPO / icon) as image:
        assert image.format == "PNG" and image.size == (128, 128)
