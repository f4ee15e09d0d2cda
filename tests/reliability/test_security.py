"""Paths from input files cannot reach outside their roots; no pickle, no eval.

``extends`` may read the stdlib and the directory tree of the file the load started from;
ONNX external data may read the model's directory tree. Anything else (``..``, an absolute
path, a symlink that leads out) needs ``allow_outside`` / ``--allow-outside``.
"""

from __future__ import annotations

import ast
import io
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from models import conv_relu_add
from qs_paths import REPO

from quantspec import cli
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import load, stdlib_text
from quantspec.onnx_io import load_model

BASE = 'profile "base"\ndefaults { output { on  int8 } }\n'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/proj (the profile's tree) and tmp/outside (somewhere else), each with a base."""
    for d in ("proj", "proj/sub", "outside"):
        (tmp_path / d).mkdir()
    (tmp_path / "outside" / "base.qspec").write_text(BASE)
    (tmp_path / "proj" / "sub" / "base.qspec").write_text(BASE)
    return tmp_path


def load_with(tree: Path, target: str, allow_outside: bool = False) -> object:
    p = tree / "proj" / "p.qspec"
    p.write_text(f'extends "{target}"\n')
    return load(str(p), allow_outside=allow_outside)


def code_of(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(QuantspecError) as info:
        fn(*args, **kwargs)
    return info.value.code


# --- extends ----------------------------------------------------------------------------------


def test_extends_inside_the_tree_is_read(tree: Path) -> None:
    prof = load_with(tree, "./sub/base.qspec")
    assert prof.rules  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", ["../outside/base.qspec", "./sub/../../outside/base.qspec",
                                    "ABSOLUTE"])
def test_extends_cannot_leave_the_tree(tree: Path, target: str) -> None:
    if target == "ABSOLUTE":
        target = str(tree / "outside" / "base.qspec")
    assert code_of(load_with, tree, target) == "E106"
    assert load_with(tree, target, allow_outside=True).rules  # type: ignore[attr-defined]


def test_extends_through_a_symlinked_file(tree: Path) -> None:
    (tree / "proj" / "link.qspec").symlink_to(tree / "outside" / "base.qspec")
    assert code_of(load_with, tree, "./link.qspec") == "E106"


def test_extends_through_a_symlinked_directory(tree: Path) -> None:
    (tree / "proj" / "lib").symlink_to(tree / "outside", target_is_directory=True)
    assert code_of(load_with, tree, "./lib/base.qspec") == "E106"


def test_a_base_cannot_leave_the_root_of_the_first_file(tree: Path) -> None:
    """The root is the directory of the file the load started from, for the whole chain."""
    (tree / "proj" / "sub" / "mid.qspec").write_text('extends "../../outside/base.qspec"\n')
    assert code_of(load_with, tree, "./sub/mid.qspec") == "E106"
    (tree / "proj" / "sub" / "mid.qspec").write_text('extends "../sub/base.qspec"\n')
    assert load_with(tree, "./sub/mid.qspec").rules  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["ort/../../../../../../etc/passwd", "../ort/qdq", "/ort/qdq",
                                  "ort/./qdq", "ort//qdq", "ort/qdq\0", "ort\\qdq", ""])
def test_stdlib_names_cannot_traverse(name: str) -> None:
    assert stdlib_text("ort/qdq") is not None
    assert stdlib_text(name) is None


def test_stdlib_traversal_reaches_no_file(tree: Path) -> None:
    """'ort/../..' named a .qspec anywhere on disk before names were checked."""
    import quantspec.stdlib_profiles as std

    ort = Path(std.__file__).parent / "ort"
    rel = Path(*[".."] * len(ort.parts[1:])) / (tree / "outside" / "base").relative_to("/")
    assert (ort / (str(rel) + ".qspec")).resolve() == (tree / "outside" / "base.qspec")
    assert code_of(load_with, tree, f"ort/{rel}") == "E104"


def test_cli_allow_outside(tree: Path) -> None:
    p = tree / "proj" / "p.qspec"
    p.write_text('extends "../outside/base.qspec"\n')
    model = tree / "m.onnx"
    model.write_bytes(conv_relu_add().SerializeToString())
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["compile", str(p), "--model", str(model)], out, err) == 1
    assert "E106" in err.getvalue() and "--allow-outside" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["compile", str(p), "--model", str(model), "--allow-outside"], out, err) == 0


# --- ONNX external data -----------------------------------------------------------------------


def external_model(d: Path, location: str) -> tuple[Path, np.ndarray]:
    """conv_relu_add with w1 stored at ``location`` (relative to d, the model's directory)."""
    m = conv_relu_add()
    w = m.graph.initializer[0]
    values = onnx.numpy_helper.to_array(w).copy()
    target = Path(os.path.normpath(d / location))  # an absolute location stays absolute
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_symlink():
        target.write_bytes(values.tobytes())
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(values.nbytes))):
        e = w.external_data.add()
        e.key, e.value = k, v
    path = d / "model.onnx"
    path.write_bytes(m.SerializeToString())
    return path, values


def test_external_data_next_to_the_model_is_read(tmp_path: Path) -> None:
    path, values = external_model(tmp_path, "weights/w1.bin")
    m = load_model(path)
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(m.graph.initializer[0]), values)


@pytest.mark.parametrize("location", ["../w1.bin", "ABSOLUTE", "weights/../../w1.bin"])
def test_external_data_cannot_leave_the_model_directory(tmp_path: Path, location: str) -> None:
    d = tmp_path / "model"
    (d / "weights").mkdir(parents=True)
    if location == "ABSOLUTE":
        location = str(tmp_path / "w1.bin")
    path, values = external_model(d, location)
    assert code_of(load_model, path) == "E305"
    m = load_model(path, allow_outside=True)
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(m.graph.initializer[0]), values)


def test_external_data_through_a_symlink(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 1024)
    (d / "w1.bin").symlink_to(tmp_path / "secret.bin")
    path, _ = external_model(d, "w1.bin")
    assert code_of(load_model, path) == "E305"


def test_graph_load_never_reads_external_data(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Graph (structure only) opens no external-data file, wherever the location points."""
    import onnx.external_data_helper as helper

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("external data read")

    monkeypatch.setattr(helper, "load_external_data_for_model", refuse)
    monkeypatch.setattr(helper, "load_external_data_for_tensor", refuse)
    d = tmp_path / "model"
    d.mkdir()
    path, _ = external_model(d, str(tmp_path / "elsewhere.bin"))
    g = Graph.load(path)
    assert g.tensors["w1"].kind == "weight"


# --- no pickle, no eval -----------------------------------------------------------------------

FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "__import__"}


def python_files() -> list[Path]:
    roots = [REPO / "src" / "quantspec", REPO / "tools", REPO / "examples"]
    return sorted(p for r in roots if r.exists() for p in r.rglob("*.py")
                  if not p.name.endswith("_pb2.py"))


def test_scanned_tree_is_not_empty() -> None:
    assert len(python_files()) > 20


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_pickle_no_eval(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                problems.append(node.module)
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) \
                else ""
            if isinstance(f, ast.Name) and name in FORBIDDEN_CALLS:
                problems.append(f"{name}() at line {node.lineno}")
            if name == "load" and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and f.value.id in ("np", "numpy"):
                kw = {k.arg: k.value for k in node.keywords}
                safe = isinstance(kw.get("allow_pickle"), ast.Constant) and \
                    kw["allow_pickle"].value is False
                if not safe:
                    problems.append(f"np.load without allow_pickle=False at line {node.lineno}")
            if name == "load" and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and f.value.id in ("yaml", "torch"):
                problems.append(f"{f.value.id}.load at line {node.lineno}")
    assert not problems, problems


def test_the_scan_catches_what_it_looks_for(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport numpy as np\nx = np.load('a.npz')\neval('1')\n")
    with pytest.raises(AssertionError) as info:
        test_no_pickle_no_eval(bad)
    text = str(info.value)
    assert "pickle" in text and "allow_pickle" in text and "eval()" in text
