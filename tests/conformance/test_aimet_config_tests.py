"""The AIMET test-suite configs (corpus ``aimet/configs/tests/``, the dict literals of AIMET's
own unit tests; see its SOURCES.md): the valid ones read, round-trip exactly (derived rules
included) and translate back to AIMET losslessly; the ``__INVALID_`` ones fail where AIMET
fails, with a positioned message. Also ``translate --strict`` to AIMET on what AIMET cannot hold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from compare import FIELDS, ours_as_aimet
from qs_paths import SHARED

from quantspec.cli import main
from quantspec.compiler import compile_profile
from quantspec.dialects import aimet
from quantspec.errors import QuantspecError, Report
from quantspec.graph import Graph

TESTS = SHARED / "corpus" / "aimet" / "configs" / "tests"
MODELS = SHARED / "corpus" / "aimet" / "conformance" / "models"
ALL = sorted(TESTS.glob("*.json")) if TESTS.exists() else []
VALID = [p for p in ALL if "__INVALID_" not in p.name]

# Where AIMET fails (SOURCES.md: "_syntax_" must fail JSON-schema validation, "_semantics_"
# passes the schema and fails _validate_semantics): code, line, column, message.
INVALID = {
    "common__INVALID_semantics_test_validate_semantics_1.json":
        ("E132", 4, 7, "defaults.ops.is_input_quantized is not supported"),
    "common__INVALID_semantics_test_validate_semantics_2.json":
        ("E132", 4, 7, "defaults.ops.is_output_quantized can only be True"),
    "common__INVALID_semantics_test_validate_semantics_3.json":
        ("E132", 9, 7, "op_type.Conv.is_input_quantized can only be True"),
    "common__INVALID_semantics_test_validate_semantics_4.json":
        ("E132", 10, 5, "IS_INPUT_QUANTIZED for model input can only be set to True"),
    "common__INVALID_semantics_test_validate_semantics_5.json":
        ("E132", 11, 5, "IS_OUTPUT_QUANTIZED for model output can only be set to True"),
    "common__INVALID_syntax_test_validate_syntax_1.json":
        ("E131", 2, 15, "$.defaults is missing the required key 'ops'"),
    "common__INVALID_syntax_test_validate_syntax_2.json":
        ("E131", 6, 23, '$.defaults.ops.is_symmetric must be "True" or "False", got "true"'),
    "common__INVALID_syntax_test_validate_syntax_3.json":
        ("E131", 7, 7, "unknown key 'extra_field' in $.defaults.ops"),
    "common__INVALID_syntax_test_validate_syntax_4.json":
        ("E131", 7, 7, "unknown key 'extra_field' in $.defaults.ops"),
    "common__INVALID_syntax_test_validate_syntax_5.json":
        ("E131", 5, 26, "$.defaults.supported_kernels: [] should be non-empty"),
    "common__INVALID_syntax_test_validate_syntax_6.json":
        ("E131", 11, 18, "$.defaults.supported_kernels[0].param is missing the required key "
                         "'dtype'"),
    "common__INVALID_syntax_test_validate_syntax_7.json":
        ("E131", 12, 23, "$.defaults.supported_kernels[0].param.bitwidth: 1 is not one of "
                         "[4, 8, 16, 32]"),
}

pytestmark = pytest.mark.corpus


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_folder_is_covered() -> None:
    if not TESTS.exists():
        pytest.skip(f"{TESTS} not present")
    invalid = {p.name for p in ALL if "__INVALID_" in p.name}
    assert invalid == set(INVALID), "a new invalid file needs its expected error here"
    assert len(VALID) >= 20


@pytest.mark.parametrize("path", [p for p in ALL if p.name in INVALID],
                         ids=_ids([p for p in ALL if p.name in INVALID]))
def test_invalid_config_fails_with_position(path: Path) -> None:
    code, line, col, message = INVALID[path.name]
    with pytest.raises(QuantspecError) as info:
        aimet.read(path.read_text(), str(path))
    d = info.value.diagnostic
    assert (d.code, d.span.file if d.span else None) == (code, str(path))
    assert (d.span.line, d.span.col) == (line, col), d.render()
    assert message in d.message
    # the rendered message shows the offending line with a caret under the column
    rendered = d.render(path.read_text()).splitlines()
    assert rendered[0].startswith(f"{path}:{line}:{col}: {code} ")
    assert rendered[2].index("^") == rendered[1].index(path.read_text().splitlines()[line - 1])\
        + col - 1


@pytest.mark.parametrize("path", VALID, ids=_ids(VALID))
def test_valid_config_round_trips_with_derived_rules(path: Path) -> None:
    """read -> write -> read: the same profile, derived rules included (the writer leaves
    them out and the reader derives them again), and nothing reported as lost."""
    prof = aimet.read(path.read_text(), str(path))
    assert any(r.origin == aimet.ORIGIN for r in prof.rules)
    report = Report()
    text = aimet.write(prof, report)
    assert not report.diagnostics, [d.render() for d in report.diagnostics]
    again = aimet.read(text, "written.json")
    assert again == prof
    assert [r for r in again.rules if r.origin] == [r for r in prof.rules if r.origin]
    assert aimet.write(again, Report()) == text  # the written form is a fixed point


@pytest.mark.parametrize("path", VALID, ids=_ids(VALID))
def test_valid_config_round_trip_compiles_to_the_same_quantizers(path: Path) -> None:
    prof = aimet.read(path.read_text(), str(path))
    again = aimet.read(aimet.write(prof, Report()), "written.json")
    models = sorted(MODELS.glob("*.onnx"))
    index = VALID.index(path)
    for model in (models[index % len(models)], models[(index + 3) % len(models)]):
        g = Graph.load(model)
        try:
            a = compile_profile(prof, g).to_json()
        except QuantspecError as exc:  # e.g. model_input without is_input_quantized
            with pytest.raises(QuantspecError) as info:
                compile_profile(again, g)
            assert info.value.code == exc.code
            continue
        b = compile_profile(again, g).to_json()
        for ta, tb in zip(a["tensors"], b["tensors"], strict=True):
            sa, sb = ours_as_aimet(ta), ours_as_aimet(tb)
            assert [sa[f] for f in ("enabled", *FIELDS)] == [sb[f] for f in ("enabled", *FIELDS)]


def test_translate_strict_accepts_every_valid_config(tmp_path: Path) -> None:
    if not VALID:
        pytest.skip(f"{TESTS} not present")
    for path in VALID:
        out = tmp_path / path.name
        code = main(["translate", str(path), "--to", "aimet", "--strict", "-o", str(out)])
        assert code == 0, path.name
        assert aimet.read(out.read_text(), str(out)) == aimet.read(path.read_text(), "x.json")


# ---------------------------------------------------------------------------------------------
# translate --strict: what the AIMET writer refuses (no corpus needed)
# ---------------------------------------------------------------------------------------------

BASE = 'defaults { output { on } param { on  symmetric } }\n'
REFUSED = [
    ('layer "conv1" { output { off } }', "W501", "layer"),
    ('tensor "c1" { on }', "W501", "tensor"),
    ("final op Flatten { output { off } }", "W501", "final"),
    ("op Conv (depthwise) { weight { per_channel } }", "W501", "predicates"),
    ("op MatMul { input 1 { symmetric } }", "W501", "input indexes"),
    ("defaults { output { calibration: percentile(percentile=99.9) } }", "W501", "calibration"),
    ("defaults { output { rounding: half_up } }", "W501", "rounding"),
    ("defaults { output { scale_type: power_of_two } }", "W501", "scale_type"),
    ("op Conv { output { int16 } }", "W501", "bits"),
    ("model input { off }", "W501", "model input"),
    ("tie output_to_input: Relu", "W504", "shared encodings"),
    ('share "a", "b"', "W504", "shared encodings"),
    ("transform { cle: true }", "W504", "cle"),
    ("calibrate { batches: 4 }", "W504", "batches"),
    ("fuse Conv | ConvTranspose -> Relu", "W502", "alternatives"),
]


@pytest.mark.parametrize(("line", "code", "word"), REFUSED, ids=[r[0] for r in REFUSED])
def test_translate_strict_refuses_what_aimet_cannot_hold(tmp_path: Path, line: str, code: str,
                                                         word: str,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    src = tmp_path / "p.qspec"
    src.write_text(BASE + line + "\n")
    out = tmp_path / "out.json"
    assert main(["translate", str(src), "--to", "aimet", "--strict", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    where = re.compile(rf"^{re.escape(str(src))}:2:\d+: {code} ", re.M)  # at the statement
    assert where.search(err) and word in err, err
    assert "nothing written" in err and not out.exists()
    assert main(["translate", str(src), "--to", "aimet", "-o", str(out)]) == 0  # not strict
    assert where.search(capsys.readouterr().err)
    json.loads(out.read_text())


def test_translate_strict_passes_what_aimet_holds(tmp_path: Path) -> None:
    src = tmp_path / "p.qspec"
    # AIMET's own rules come from the stdlib profile (without them the writer says that AIMET
    # will add them: W503)
    src.write_text('profile "p" extends "aimet/implicit"\n' + BASE +
                   "defaults { bias { off } }\nop Sigmoid { output { range: [0.0, 1.0] } }\n"
                   "op Conv { param { per_channel } }\nmodel input { on }\nfuse Conv -> Relu\n"
                   "passes matmul_add\n")
    out = tmp_path / "out.json"
    assert main(["translate", str(src), "--to", "aimet", "--strict", "-o", str(out)]) == 0
    cfg = json.loads(out.read_text())
    assert cfg["op_type"]["Sigmoid"]["encoding_constraints"] == {"min": 0.0, "max": 1.0}
    assert cfg["supergroups"] == [{"op_list": ["Conv", "Relu"]}]
    assert cfg["supergroup_pass_list"] == ["MatmulAdd"]
    assert cfg["model_input"] == {"is_input_quantized": "True"}
