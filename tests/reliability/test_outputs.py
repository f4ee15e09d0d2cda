"""Nothing lost: outputs are written atomically, a failing run leaves old outputs byte-identical,
and an input is never overwritten.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from models import conv_relu_add

from quantspec import cli, fileio
from quantspec.errors import QuantspecError

GOOD = 'profile "p"\ndefaults { output { on  int8 } weight { on  int8  symmetric } }\n'
BAD = "defaults { output { int8 }\n"  # unclosed block: fails while reading


def run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(argv, out, err)
    assert "internal error" not in err.getvalue(), err.getvalue()
    return rc, err.getvalue()


def snapshot(d: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under d: bytes, inode, mode."""
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_ino, p.stat().st_mode)
            for p in sorted(d.rglob("*")) if p.is_file()}


def leftovers(d: Path) -> list[Path]:
    return [p for p in d.rglob(".*.tmp")]


# --- write_atomic -----------------------------------------------------------------------------


def test_write_atomic_replaces(tmp_path: Path) -> None:
    p = tmp_path / "out.json"
    p.write_text("old")
    ino = p.stat().st_ino
    fileio.write_atomic(p, "new")
    assert p.read_text() == "new" and p.stat().st_ino != ino  # a new file, renamed into place
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 where: str) -> None:
    p = tmp_path / "out.json"
    p.write_bytes(b"old bytes")

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, where, boom)
    with pytest.raises(QuantspecError) as info:
        fileio.write_atomic(p, "new")
    assert info.value.code == "E121" and "No space left" in str(info.value)
    assert p.read_bytes() == b"old bytes"
    assert not leftovers(tmp_path)


def test_write_atomic_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "out.json"
    p.write_bytes(b"old")

    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fileio.write_atomic(p, "new")
    assert p.read_bytes() == b"old" and not leftovers(tmp_path)


def test_write_atomic_keeps_permissions(tmp_path: Path) -> None:
    p = tmp_path / "out.json"
    p.write_text("old")
    p.chmod(0o640)
    fileio.write_atomic(p, "new")
    assert stat.S_IMODE(p.stat().st_mode) == 0o640


def test_write_atomic_new_file_follows_umask(tmp_path: Path) -> None:
    """Not mkstemp's 0600: a new output is readable like any file the user creates."""
    old = os.umask(0o022)
    try:
        fileio._umask.cache_clear()
        fileio.write_atomic(tmp_path / "new.json", "x")
    finally:
        os.umask(old)
        fileio._umask.cache_clear()
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_write_atomic_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    """An output path that links to an input cannot be used to overwrite the input."""
    target = tmp_path / "input.json"
    target.write_text("input")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    fileio.write_atomic(link, "new")
    assert target.read_text() == "input"
    assert not link.is_symlink() and link.read_text() == "new"


def test_write_atomic_into_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(QuantspecError) as info:
        fileio.write_atomic(tmp_path / "d", "x")
    assert info.value.code == "E121"
    (tmp_path / "file").write_text("x")
    with pytest.raises(QuantspecError) as info:
        fileio.write_atomic(tmp_path / "file" / "below", "x")  # a parent that is a file
    assert info.value.code == "E121"


# --- every writing command: a failing run leaves the previous outputs -------------------------


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "good.qspec").write_text(GOOD)
    (tmp_path / "bad.qspec").write_text(BAD)
    (tmp_path / "m.onnx").write_bytes(conv_relu_add().SerializeToString())
    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).standard_normal(
        (3, 1, 4, 8, 8)).astype(np.float32))
    bad = np.zeros((3, 1, 4, 8, 8), np.float32)
    bad[2, 0, 0, 0, 0] = np.inf
    np.savez(tmp_path / "nan.npz", x=bad)
    (tmp_path / "out").mkdir()
    return tmp_path


Argv = Callable[[Path, str, str], list[str]]  # (work dir, profile, data) -> argv

COMMANDS: dict[str, tuple[Argv, str]] = {
    # name: (argv, what makes the second run fail)
    "compile": (lambda w, p, d: ["compile", str(w / p), "--model", str(w / "m.onnx"), "-o",
                                 str(w / "out" / "plan.json")], "profile"),
    "translate": (lambda w, p, d: ["translate", str(w / p), "--to", "aimet", "-o",
                                   str(w / "out" / "t.json")], "profile"),
    "calibrate": (lambda w, p, d: ["calibrate", str(w / p), "--model", str(w / "m.onnx"),
                                   "--data", str(w / d), "-o", str(w / "out")], "data"),
    "simulate": (lambda w, p, d: ["simulate", str(w / p), "--model", str(w / "m.onnx"),
                                  "--data", str(w / d), "-o", str(w / "out")], "data"),
    "export": (lambda w, p, d: ["export", str(w / p), "--model", str(w / "m.onnx"),
                                "--encodings", str(w / "cal" / "m.encodings"), "-o",
                                str(w / "out")], "profile"),
    "transform": (lambda w, p, d: ["transform", str(w / p), "--model", str(w / "m.onnx"), "-o",
                                   str(w / "out" / "t.onnx"), "--report",
                                   str(w / "out" / "t.json")], "profile"),
}


def _available(name: str) -> None:
    if name not in ("compile", "translate") and name not in cli.COMMAND_MODULES:
        pytest.skip(f"no {name} command")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_failing_run_leaves_previous_outputs(work: Path, name: str) -> None:
    _available(name)
    argv, breaks = COMMANDS[name]
    if name == "export":  # exports the encodings a calibration wrote
        _available("calibrate")
        rc, err = run(["calibrate", str(work / "good.qspec"), "--model", str(work / "m.onnx"),
                       "--data", str(work / "data.npz"), "-o", str(work / "cal")])
        assert rc == 0, err
    rc, err = run(argv(work, "good.qspec", "data.npz"))
    assert rc == 0, err
    before = snapshot(work / "out")
    assert before, f"{name} wrote nothing"
    bad = argv(work, "bad.qspec", "data.npz") if breaks == "profile" else \
        argv(work, "good.qspec", "nan.npz")
    rc, err = run(bad)
    assert rc == 1, err
    assert snapshot(work / "out") == before
    assert not leftovers(work)


@pytest.mark.parametrize("name", ["calibrate", "simulate"])
def test_failing_run_leaves_no_partial_outputs(work: Path, name: str) -> None:
    """Bad data is found before the first output file is written."""
    _available(name)
    argv, _ = COMMANDS[name]
    rc, err = run(argv(work, "good.qspec", "nan.npz"))
    assert rc == 1, err
    assert snapshot(work / "out") == {} and not leftovers(work)


def test_translate_refuses_to_overwrite_its_input(work: Path) -> None:
    src = work / "cfg.json"
    rc, err = run(["translate", str(work / "good.qspec"), "--to", "aimet", "-o", str(src)])
    assert rc == 0, err
    before = src.read_bytes()
    for spelling in (str(src), str(work / "out" / ".." / "cfg.json")):
        rc, err = run(["translate", str(src), "--to", "aimet", "-o", spelling])
        assert rc == 1 and "E501" in err, err
        assert src.read_bytes() == before


def test_an_output_linked_to_the_input_replaces_the_link(work: Path) -> None:
    src = work / "cfg.json"
    rc, err = run(["translate", str(work / "good.qspec"), "--to", "aimet", "-o", str(src)])
    assert rc == 0, err
    before = src.read_bytes()
    link = work / "out" / "link.json"
    link.symlink_to(src)
    rc, err = run(["translate", str(src), "--to", "vitis", "-o", str(link)])
    assert rc == 0, err
    assert src.read_bytes() == before
    assert not link.is_symlink() and b"target_device" in link.read_bytes()


def test_translate_strict_writes_nothing_when_lossy(work: Path) -> None:
    (work / "lossy.qspec").write_text('layer "conv*" { output { int8 } }\n')
    out = work / "out" / "t.json"
    out.write_text("previous")
    rc, err = run(["translate", str(work / "lossy.qspec"), "--to", "encodings", "--strict", "-o",
                   str(out)])
    assert rc == 1, err
    assert out.read_text() == "previous"


def test_fmt_write_leaves_a_file_with_a_syntax_error_untouched(work: Path) -> None:
    p = work / "bad.qspec"
    before = (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
    rc, err = run(["fmt", "--write", str(p)])
    assert rc == 1 and "E001" in err, err
    assert (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) == before
    assert not leftovers(work)


def test_fmt_write_rewrites_atomically_and_keeps_the_mode(work: Path) -> None:
    p = work / "messy.qspec"
    p.write_text("defaults{output{int8 on}}\n")
    p.chmod(0o640)
    rc, err = run(["fmt", "--write", str(p)])
    assert rc == 0, err
    assert p.read_text() != "defaults{output{int8 on}}\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    rc, err = run(["fmt", "--check", str(p)])
    assert rc == 0, err


def test_fmt_check_never_writes(work: Path) -> None:
    p = work / "messy.qspec"
    p.write_text("defaults{output{int8 on}}\n")
    before = snapshot(work)
    rc, _ = run(["fmt", "--check", str(p)])
    assert rc == 1
    assert snapshot(work) == before


@pytest.mark.parametrize("name, flag", [("transform", "-o"), ("calibrate", "-o")])
def test_commands_refuse_to_overwrite_their_model(work: Path, name: str, flag: str) -> None:
    _available(name)
    model = work / "m.onnx"
    before = model.read_bytes()
    if name == "transform":
        argv = ["transform", str(work / "good.qspec"), "--model", str(model), "-o", str(model)]
    else:  # calibrate writes plan.json into -o: make the profile be that file
        (work / "plan.json").write_text(GOOD)
        argv = ["calibrate", str(work / "plan.json"), "--model", str(model), "--data",
                str(work / "data.npz"), "-o", str(work)]
    rc, err = run(argv)
    assert rc == 1 and "overwrite" in err, err
    assert model.read_bytes() == before
