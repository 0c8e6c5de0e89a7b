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


def stdlib_names() -> set:
    """Top-level names of the standard library (``sys.stdlib_module_names`` from Python 3.10; on 3.9,
    as Slicer 5.8 runs, the standard library folder and the built-in modules)."""
    if hasattr(sys, "stdlib_module_names"):
        return set(sys.stdlib_module_names)
    import sysconfig

    folder = Path(sysconfig.get_paths()["stdlib"])
    names = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    names |= {p.name.split(".")[0] for p in (folder / "lib-dynload").glob("*.so")}
    return names | set(sys.builtin_module_names)


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
    allowed = ALLOWED_ROOTS | stdlib_names() | {f"{module_folder}Lib"}
    bad = [(name, line) for name, line in module_level_imports(ast.parse(path.read_text())) if name not in allowed]
    assert not bad, f"{path.name} imports at module level what Slicer does not ship: {bad}"


def test_no_slicer_layer_file_names_slicer_pydeps():
    """Issue 21 (8): ``slicer.pydeps`` never existed (Slicer 5.12 has ``slicer.packaging``)."""
    naming = [str(p.relative_to(REPO)) for p in slicer_python_files() if "slicer.pydeps" in p.read_text()]
    assert naming == []


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
def test_custom_widgets_holding_widgets_are_declared_containers(module: str):
    """Issue 21 (8): Qt Designer lets only containers hold widgets; Slicer's module template
    (Utilities/Templates/Modules/Scripted/Resources/UI/TemplateKey.ui, 5.8-5.12) declares qMRMLWidget and
    ctkCollapsibleButton with ``<container>1</container>``."""
    root = ui_tree(module)
    containers = {c.findtext("class") for c in root.iter("customwidget") if c.findtext("container") == "1"}
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    holding = {w.get("class") for w in root.iter("widget") if w.find(".//widget") is not None} & declared
    assert {"qMRMLWidget", "ctkCollapsibleButton"} <= holding
    assert holding <= containers, f"{module}.ui: {sorted(holding - containers)} hold widgets but are not containers"


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
    version = re.search(r"cmake_minimum_required\(VERSION\s+([\d.]+)\.\.\.([\d.]+)\)", text)
    assert version, "cmake_minimum_required needs a VERSION min...max range"
    low, high = (tuple(int(v) for v in part.split(".")) for part in version.groups())
    # Slicer's extension templates: 5.8 asks 3.16.3...3.19.7, 5.10 3.20.6...3.22.6, 5.12 3.28
    assert low <= (3, 16, 3) and high >= (3, 28), f"{version.group(0)} does not cover Slicer 5.8-5.12's CMake"
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


STAND_IN_SLICER_CONFIG = r"""
# Stand-in for Slicer's SlicerConfig.cmake: the variables and macros an extension uses, each macro
# checking that every file it is given exists (the real ones copy, compile and install them).
set(Slicer_USE_FILE ${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake)
set(Slicer_EXTENSION_GENERATE_CONFIG ${CMAKE_CURRENT_LIST_DIR}/Empty.cmake)
set(Slicer_EXTENSION_CPACK ${CMAKE_CURRENT_LIST_DIR}/Empty.cmake)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer-5.x/qt-scripted-modules)
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer-5.x/qt-scripted-modules)
function(_require_files)
  foreach(file ${ARGN})
    if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${file})
      message(FATAL_ERROR "listed but missing: ${CMAKE_CURRENT_SOURCE_DIR}/${file}")
    endif()
    file(APPEND ${CMAKE_BINARY_DIR}/listed.txt "${CMAKE_CURRENT_SOURCE_DIR}/${file}\n")
  endforeach()
endfunction()
function(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(M "WITH_GENERIC_TESTS;WITH_SUBDIR" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  if(NOT M_NAME OR M_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "slicerMacroBuildScriptedModule: bad arguments ${M_UNPARSED_ARGUMENTS}")
  endif()
  _require_files(${M_SCRIPTS} ${M_RESOURCES})
endfunction()
function(ctkMacroCompilePythonScript)
  cmake_parse_arguments(M "NO_INSTALL_SUBDIR" "TARGET_NAME;DESTINATION_DIR;INSTALL_DIR" "SCRIPTS;RESOURCES" ${ARGN})
  if(NOT M_TARGET_NAME OR NOT M_DESTINATION_DIR OR NOT M_INSTALL_DIR OR M_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ctkMacroCompilePythonScript: bad arguments ${M_UNPARSED_ARGUMENTS}")
  endif()
  _require_files(${M_SCRIPTS} ${M_RESOURCES})
endfunction()
function(slicer_add_python_unittest)
  cmake_parse_arguments(M "" "SCRIPT" "" ${ARGN})
  _require_files(${M_SCRIPT})
endfunction()
"""


def test_real_cmake_configures_the_extension_against_a_stand_in_slicer(tmp_path):
    """CMake itself (3.25 here, inside Slicer 5.8-5.12's range) reads every CMakeLists.txt; the stand-in
    Slicer macros check that every listed file exists and the installed Python covers every shipped file."""
    import shutil
    import subprocess

    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed (apt-get install cmake)")
    config = tmp_path / "Slicer"
    config.mkdir()
    (config / "SlicerConfig.cmake").write_text(STAND_IN_SLICER_CONFIG)
    (config / "UseSlicer.cmake").write_text("")
    (config / "Empty.cmake").write_text("")
    build = tmp_path / "build"
    done = subprocess.run([cmake, "-S", str(REPO), "-B", str(build), f"-DSlicer_DIR={config}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    listed = {Path(line) for line in (build / "listed.txt").read_text().splitlines()}
    shipped = set(REPO.glob("nodsynth/**/*.py")) | set((REPO / "Resources" / "Scripts").glob("*.py"))
    for folder in MODULES + (GLUE,):
        shipped |= set((REPO / folder).rglob("*.py"))
    shipped = {p for p in shipped if "__pycache__" not in p.parts}
    assert shipped <= listed, f"not installed: {sorted(str(p.relative_to(REPO)) for p in shipped - listed)[:10]}"
