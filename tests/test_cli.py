"""The command line through ``quantspec.cli.main(argv, stdout, stderr)``: every subcommand,
exit codes (0 ok, 1 findings or bad input, 2 usage, 3 internal error), and what is written."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import onnx
import pytest
from models import conv_relu_add

from quantspec import cli
from quantspec.dialects import aimet, amct, encodings, vitis
from quantspec.errors import QuantspecError
from quantspec.lang.parse import parse

AIMET_CFG = {
    "defaults": {"ops": {"is_output_quantized": "True"},
                 "params": {"is_quantized": "True", "is_symmetric": "True"},
                 "per_channel_quantization": "True"},
    "params": {"bias": {"is_quantized": "False"}},
    "op_type": {"Sigmoid": {"encoding_constraints": {"min": 0.0, "max": 1.0}}},
    "supergroups": [{"op_list": ["Conv", "Relu"]}],
    "model_input": {"is_input_quantized": "True"},
    "model_output": {"is_output_quantized": "True"},
}
QSPEC = """\
profile "cli"
defaults {
  output { on  uint8 }
  weight { on  int8  symmetric  per_channel }
  bias { off }
}
op Sigmoid { output { range: [0.0, 1.0] } }
layer "conv2" { output { int16 } }
fuse Conv -> Relu
"""
READERS = {"qspec": parse, "aimet": aimet.read, "vitis": vitis.read, "amct": amct.read,
           "encodings": encodings.read}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "m.onnx"
    onnx.save(conv_relu_add(), model)
    cfg = tmp_path / "htp.json"
    cfg.write_text(json.dumps(AIMET_CFG, indent=2))
    prof = tmp_path / "p.qspec"
    prof.write_text(QSPEC)
    return {"model": model, "aimet": cfg, "qspec": prof, "dir": tmp_path}


# ---------------------------------------------------------------------------------------------
# usage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [],                                              # no subcommand
    ["frobnicate"],                                  # unknown subcommand
    ["compile", "p.qspec"],                          # --model missing
    ["explain", "p.qspec", "--model", "m.onnx"],     # --tensor missing
    ["translate", "p.qspec"],                        # --to missing
    ["translate", "p.qspec", "--to", "tflite"],      # not a target
    ["compile", "p.qspec", "--model", "m.onnx", "--aimet-version", "3"],
    ["compile", "p.qspec", "--model", "m.onnx", "--param-bw", "eight"],
    ["fmt"],                                         # no files
    ["lint"],
    ["compile", "p.qspec", "--model", "m.onnx", "--no-such-option"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(*argv)
    assert code == 2 and out == ""
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--help")[0] == 0
    text = capsys.readouterr().out
    for name in (*cli.COMMANDS, *cli.COMMAND_MODULES):
        assert name in text


@pytest.mark.parametrize("name", sorted({*cli.COMMANDS, *cli.COMMAND_MODULES}))
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(name, "--help")[0] == 0
    assert capsys.readouterr().out.startswith("usage: quantspec " + name)


# ---------------------------------------------------------------------------------------------
# compile and explain
# ---------------------------------------------------------------------------------------------


def test_compile_to_stdout_and_file(files: dict[str, Path]) -> None:
    code, out, err = run("compile", str(files["qspec"]), "--model", str(files["model"]))
    assert code == 0 and err == ""
    plan = json.loads(out)
    assert plan["format"] == "quantspec-plan/1" and plan["model"] == "m.onnx"
    by = {t["name"]: t for t in plan["tensors"]}
    assert by["c2"]["bits"] == 16 and by["c1"]["quantized"] is False and by["w1"]["axis"] == 0
    dest = files["dir"] / "out" / "plan.json"
    code, out2, err = run("compile", str(files["qspec"]), "--model", str(files["model"]),
                          "-o", str(dest))
    assert code == 0 and out2 == ""
    assert dest.read_text() == out  # the same text, whichever way it is written
    assert err.startswith(f"wrote {dest}: ") and "quantized" in err


def test_compile_aimet_takes_bit_widths(files: dict[str, Path]) -> None:
    code, out, _ = run("compile", str(files["aimet"]), "--model", str(files["model"]),
                       "--param-bw", "4", "--act-bw", "16")
    assert code == 0
    by = {t["name"]: t for t in json.loads(out)["tensors"]}
    assert (by["w1"]["bits"], by["r1"]["bits"], by["y"]["fixed_range"]) == (4, 16, [0.0, 1.0])


def test_compile_from_overrides_detection(files: dict[str, Path]) -> None:
    odd = files["dir"] / "profile.txt"
    odd.write_text(QSPEC)
    assert run("compile", str(odd), "--from", "qspec", "--model", str(files["model"]))[0] == 0
    code, _, err = run("compile", str(files["qspec"]), "--from", "aimet", "--model",
                       str(files["model"]))
    assert code == 1 and "p.qspec:1:1: E1" in err  # read as JSON: a positioned error
    code, _, err = run("compile", str(files["qspec"]), "--from", "nope", "--model",
                       str(files["model"]))
    assert code == 1 and "E120 unknown dialect 'nope'" in err and "hint:" in err


def test_compile_input_errors_exit_1_with_position(files: dict[str, Path]) -> None:
    bad = files["dir"] / "bad.qspec"
    bad.write_text('defaults {\n  weight { int8 symetric }\n}\n')
    code, out, err = run("compile", str(bad), "--model", str(files["model"]))
    assert code == 1 and out == ""
    assert f"{bad}:2:17: E006 unknown word 'symetric'" in err
    assert "did you mean 'symmetric'?" in err and "Traceback" not in err
    code, _, err = run("compile", str(files["qspec"]), "--model", str(files["dir"] / "no.onnx"))
    assert code == 1 and "E301 model not found" in err
    code, _, err = run("compile", str(files["dir"] / "none.qspec"), "--model",
                       str(files["model"]))
    assert code == 1 and "E101 file not found" in err


@pytest.mark.parametrize("which", ["qspec", "model"])
def test_compile_refuses_to_overwrite_an_input(files: dict[str, Path], which: str) -> None:
    before = files[which].read_bytes()
    code, _, err = run("compile", str(files["qspec"]), "--model", str(files["model"]),
                       "-o", str(files[which]))
    assert code == 1 and "E501 refusing to overwrite the input file" in err
    assert files[which].read_bytes() == before


def test_explain(files: dict[str, Path]) -> None:
    code, out, err = run("explain", str(files["qspec"]), "--model", str(files["model"]),
                         "--tensor", "c2", "--tensor", "c1")
    assert code == 0 and err == ""
    assert "tensor 'c2' (activation)" in out and "tensor 'c1' (activation)" in out
    assert f"{files['qspec']}:8:17  [layer \"conv2\" output]" in out  # set c2's bits
    assert "fuse Conv -> Relu" in out
    code, out, err = run("explain", str(files["qspec"]), "--model", str(files["model"]),
                         "--tensor", "cc2")
    assert code == 1 and "E207 no tensor 'cc2'" in err and "did you mean" in err


# ---------------------------------------------------------------------------------------------
# fmt
# ---------------------------------------------------------------------------------------------


def test_fmt_check_write_and_print(files: dict[str, Path]) -> None:
    messy = files["dir"] / "messy.qspec"
    messy.write_text('defaults{output{on  int8}}\nop   Conv{weight{per_channel}}\n')
    code, out, err = run("fmt", "--check", str(messy))
    assert code == 1 and out == "" and "not in canonical form" in err
    code, printed, _ = run("fmt", str(messy))
    assert code == 0 and printed != messy.read_text()
    assert run("fmt", "--write", str(messy))[0] == 0
    assert messy.read_text() == printed
    code, out, err = run("fmt", "--check", str(messy), str(files["qspec"]))
    assert (code, out, err) == (0, "", "")
    code, _, err = run("fmt", "--write", str(messy))  # already canonical: untouched, silent
    assert (code, err) == (0, "")


def test_fmt_reports_syntax_errors(files: dict[str, Path]) -> None:
    bad = files["dir"] / "bad.qspec"
    bad.write_text("defaults { output { on }\n")
    before = bad.read_text()
    code, _, err = run("fmt", "--write", str(bad))
    assert code == 1 and f"{bad}:" in err and " E0" in err
    assert bad.read_text() == before


# ---------------------------------------------------------------------------------------------
# translate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["qspec", "aimet", "vitis", "amct", "encodings"])
@pytest.mark.parametrize("source", ["qspec", "aimet"])
def test_translate_to_each_target(files: dict[str, Path], source: str, target: str) -> None:
    code, out, err = run("translate", str(files[source]), "--to", target)
    assert code == 0 and "Traceback" not in err
    assert READERS[target](out, f"out.{target}") is not None  # the target reads it back
    for line in err.splitlines():  # every loss is a positioned warning
        if " W5" in line:
            assert line.startswith(str(files[source])), line


def test_translate_output_file_and_strict(files: dict[str, Path]) -> None:
    dest = files["dir"] / "out.json"
    code, out, err = run("translate", str(files["qspec"]), "--to", "aimet", "-o", str(dest))
    assert code == 0 and out == "" and "W501" in err  # layer rules and bit widths
    assert aimet.read(dest.read_text(), str(dest)).rules
    strict = files["dir"] / "strict.json"
    code, out, err = run("translate", str(files["qspec"]), "--to", "aimet", "--strict",
                         "-o", str(strict))
    assert code == 1 and out == "" and "translate --strict" in err and "nothing written" in err
    assert not strict.exists()
    # a translation that loses nothing passes --strict
    code, out, err = run("translate", str(files["aimet"]), "--to", "aimet", "--strict")
    assert (code, err) == (0, "")
    assert aimet.read(out, "again.json") == aimet.read(files["aimet"].read_text(), "x.json")


def test_translate_refuses_to_overwrite_its_input(files: dict[str, Path]) -> None:
    before = files["aimet"].read_text()
    code, _, err = run("translate", str(files["aimet"]), "--to", "aimet", "-o",
                       str(files["aimet"]))
    assert code == 1 and "E501 refusing to overwrite the input file" in err
    assert files["aimet"].read_text() == before


# ---------------------------------------------------------------------------------------------
# lint and profiles
# ---------------------------------------------------------------------------------------------


def test_lint(files: dict[str, Path]) -> None:
    code, out, _ = run("lint", str(files["qspec"]), str(files["aimet"]))
    assert code == 0 and out == ""
    bad = files["dir"] / "bad.json"
    cfg: dict[str, Any] = json.loads(json.dumps(AIMET_CFG))
    cfg["defaults"]["ops"]["is_output_quantized"] = "true"
    bad.write_text(json.dumps(cfg, indent=2))
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if '"true"' in ln)
    code, out, err = run("lint", str(bad))
    assert code == 1 and f"{bad}:{line}:" in out and "E131" in out
    code, out, _ = run("lint", "--format", "json", str(bad))
    assert code == 1 and json.loads(out)[0]["code"] == "E131"
    assert run("lint", str(files["dir"] / "missing.qspec"))[0] == 2


def test_profiles_lists_the_stdlib() -> None:
    from quantspec.lang.load import stdlib_names

    code, out, err = run("profiles")
    assert code == 0 and err == ""
    names = [ln.split()[0] for ln in out.splitlines()]
    assert names == sorted(stdlib_names()) and "ort/qdq" in names


def test_a_stdlib_name_is_a_profile(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    monkeypatch.chdir(files["dir"])
    code, out, err = run("compile", "qnn/htp-v73", "--model", str(files["model"]))
    assert code == 0, err
    plan = json.loads(out)
    assert plan["profile"] == "std/qnn/htp-v73.qspec"
    assert all(f["rule"].startswith("std/qnn/") for f in plan["fusions"])
    code, out, err = run("explain", "ort/qdq", "--model", str(files["model"]), "--tensor", "b1")
    assert code == 0 and "std/ort/qdq.qspec:" in out, err
    code, out, err = run("translate", "ort/qdq", "--to", "qspec")
    assert code == 0 and out.startswith('profile "ort/qdq"'), err
    # a file of that name wins over the stdlib profile
    (files["dir"] / "ort").mkdir()
    (files["dir"] / "ort" / "qdq").write_text('profile "mine"\ndefaults { output { on } }\n')
    code, out, err = run("compile", "ort/qdq", "--model", str(files["model"]))
    assert code == 0 and json.loads(out)["profile"] == "ort/qdq", err


def test_a_misspelt_stdlib_name_gets_a_hint(files: dict[str, Path]) -> None:
    code, _out, err = run("compile", "qnn/htp-v7", "--model", str(files["model"]))
    assert code == 1 and "E101" in err and "did you mean 'qnn/htp-v" in err


# ---------------------------------------------------------------------------------------------
# internal errors and --debug
# ---------------------------------------------------------------------------------------------


def _boom(*_: Any) -> int:
    raise RuntimeError("something broke")


def test_internal_error_exits_3_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "profiles", _boom)
    code, out, err = run("profiles")
    assert code == 3 and out == ""
    assert "internal error: RuntimeError: something broke" in err
    assert "--debug" in err and "Traceback" not in err
    with pytest.raises(RuntimeError):
        run("--debug", "profiles")


def test_debug_reraises_input_errors(files: dict[str, Path]) -> None:
    bad = files["dir"] / "bad.qspec"
    bad.write_text("defaults { output { on int99x } }\n")
    code, _, err = run("compile", str(bad), "--model", str(files["model"]))
    assert code == 1 and "E006" in err
    with pytest.raises(QuantspecError):
        run("--debug", "compile", str(bad), "--model", str(files["model"]))


def test_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "profiles", interrupted)
    assert run("profiles")[0] == 130
