"""Lint checks beyond the one-fixture-per-code cases: what is and is not reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantspec.errors import Diagnostic
from quantspec.lint import LintOptions, globs, lint_files

AIMET_BASE = {
    "defaults": {"ops": {"is_output_quantized": "True"}, "params": {"is_quantized": "True"}},
    "params": {}, "op_type": {}, "supergroups": [],
    "model_input": {"is_input_quantized": "True"}, "model_output": {},
}


def lint_text(tmp_path: Path, text: str, name: str = "p.qspec", model: Path | None = None,
              **opts: object) -> list[Diagnostic]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return lint_files([str(path)], str(model) if model else None, LintOptions(**opts))


def codes(diags: list[Diagnostic]) -> list[str]:
    return [d.code for d in diags]


def test_clean_profile_has_no_findings(tmp_path: Path, model_path: Path) -> None:
    text = ('profile "ok"\ndefaults { output { int8 } weight { int8 symmetric per_channel } '
            '}\nop Conv { output { int16 } }\n')
    assert lint_text(tmp_path, text) == []
    assert lint_text(tmp_path, text, model=model_path) == []


def test_syntax_error_is_the_readers_code(tmp_path: Path) -> None:
    (d,) = lint_text(tmp_path, 'profile "x"\nop Conv { output { int8 }\n')
    assert d.code == "E001" and d.severity == "error" and d.span is not None
    assert (d.span.line, d.hint) == (2, "a '{' block is not closed")


def test_reader_error_and_raw_checks_together(tmp_path: Path) -> None:
    cfg = json.loads(json.dumps(AIMET_BASE))
    cfg["op_type"]["Conv2d"] = {"is_symetric": "True"}
    diags = lint_text(tmp_path, json.dumps(cfg, indent=1), "cfg.json")
    assert sorted(codes(diags)) == ["E131", "L001"]
    e131 = next(d for d in diags if d.code == "E131")
    assert "is_symmetric" in e131.hint


def test_unknown_op_type_suggestion_ignores_case(tmp_path: Path) -> None:
    cfg = json.loads(json.dumps(AIMET_BASE))
    cfg["op_type"]["GELU"] = {"is_output_quantized": "True"}
    (d,) = lint_text(tmp_path, json.dumps(cfg, indent=1), "cfg.json")
    assert d.code == "L001" and d.hint == "did you mean 'Gelu'?"


def test_contrib_and_fused_op_types_are_known(tmp_path: Path) -> None:
    text = 'op FusedMatMul | MaskedSoftmax | LayerNormalization { output { int16 } }\n'
    assert lint_text(tmp_path, text) == []


def test_slot_block_refining_its_statement_is_no_conflict(tmp_path: Path) -> None:
    text = "defaults { calibration: minmax  param { calibration: mse } }\n"
    assert lint_text(tmp_path, text) == []


@pytest.mark.parametrize("first, second, conflict", [
    ("op Conv { output { int8 } }", "op Conv { tensor { int16 } }", True),
    ("op Conv { output { int8 } }", "op Relu { output { int16 } }", False),
    ("op Conv { output { int8 } }", "op Conv { weight { int4 } }", False),
    ("op Conv { output { int8 } }", "final op Conv { output { int16 } }", False),
    ('layer "a" { int8 }', 'layer "a", "b" { int16 }', True),
    ('layer "a" { int8 }', 'layer "b" { int16 }', False),
    ("op Conv (depthwise) { weight { int8 } }", "op Conv { weight { int4 } }", False),
])
def test_static_overlap(tmp_path: Path, first: str, second: str, conflict: bool) -> None:
    diags = lint_text(tmp_path, f"{first}\n{second}\n")
    assert codes(diags) == (["L005"] if conflict else [])


def test_conflict_is_an_error_when_compiling_rejects_it(tmp_path: Path,
                                                        model_path: Path) -> None:
    text = ("options { conflicts: error }\n"
            "op Conv | Gemm { output { int16 } }\nop Conv { output { int8 } }\n")
    (d,) = [d for d in lint_text(tmp_path, text) if d.code == "L005"]
    assert d.severity == "error" and "E201" in d.message
    with_model = lint_text(tmp_path, text, model=model_path)
    assert "L005" in codes(with_model)
    assert "E201" not in codes(with_model)  # the compiler's error is the same pair


def test_conflict_on_model_tensors(tmp_path: Path, model_path: Path) -> None:
    text = "defaults { output { int8 } }\ndefaults { input { int16 } }\n"
    assert lint_text(tmp_path, text) == []  # outputs and inputs may be disjoint in general
    (d,) = [d for d in lint_text(tmp_path, text, model=model_path) if d.code == "L005"]
    assert (d.span.line, d.span.col) == (2, 20)
    assert d.related[0][0].line == 1
    assert "of tensor 'c1' (and 3 more)" in d.message


def test_vendor_rule_order_is_not_a_conflict(tmp_path: Path, model_path: Path) -> None:
    # AMCT: override_layer_types replaces common_config by rule order, on purpose
    text = ("common_config { arq_quantize { channel_wise: true } }\n"
            'override_layer_types { layer_type: "Conv" calibration_config {\n'
            "  arq_quantize { channel_wise: false } } }\n")
    diags = lint_text(tmp_path, text, "a.cfg", model=model_path)
    assert "L005" not in codes(diags)


def test_aimet_section_conflict_is_the_compilers_error(tmp_path: Path,
                                                      model_path: Path) -> None:
    cfg = json.loads(json.dumps(AIMET_BASE))
    cfg["op_type"] = {"Conv": {"is_symmetric": "False"}, "Relu": {"is_symmetric": "True"}}
    diags = lint_text(tmp_path, json.dumps(cfg, indent=1), "cfg.json", model=model_path)
    assert "E201" in codes(diags) and "L005" not in codes(diags)


def test_shadowed_by_a_fusion_pattern(tmp_path: Path, model_path: Path) -> None:
    text = "defaults { output { int8 } }\nop Conv { output { int16 } }\nfuse Conv -> Relu\n"
    diags = lint_text(tmp_path, text, model=model_path)
    assert codes(diags) == []  # conv2's output is not fused, so the op rule still decides
    text += "fuse Conv -> Add\n"  # now both Conv outputs are inside a pattern
    (d,) = [d for d in lint_text(tmp_path, text, model=model_path) if d.code == "L021"]
    assert d.span.line == 2
    assert [(s.line, note) for s, note in d.related] == [
        (3, "overridden by fuse Conv -> Relu at"), (4, "overridden by fuse Conv -> Add at")]


def test_pattern_losing_to_a_longer_one(tmp_path: Path, model_path: Path) -> None:
    text = "fuse Add -> Sigmoid\nfuse Conv -> Add -> Sigmoid\n"
    (d,) = [d for d in lint_text(tmp_path, text, model=model_path) if d.code == "L022"]
    assert d.span.line == 1 and "overlaps a match of another pattern" in d.message


def test_matches_nothing_variants(tmp_path: Path, model_path: Path) -> None:
    text = ('op Relu { weight { int4 } }\nop Conv (group > 4) { weight { int4 } }\n'
            'tensor "w11" { off }\nshare "c1", "nope"\n')
    diags = [d for d in lint_text(tmp_path, text, model=model_path) if d.code == "L020"]
    lines = {d.span.line: d for d in diags}
    assert sorted(lines) == [1, 2, 3, 4]
    assert "weight" in lines[1].hint
    assert "group > 4" in lines[2].hint
    assert lines[3].hint == "did you mean 'w1'?"
    assert (lines[4].span.col, lines[4].message) == (13, "share: tensor 'nope' is not in "
                                                         "the model")


def test_base_profiles_are_not_reported(tmp_path: Path, model_path: Path) -> None:
    (tmp_path / "base.qspec").write_text("op Gelu2 { output { int8 } }\nop Relu { }\n")
    diags = lint_text(tmp_path, 'profile "c" extends "./base.qspec"\n'
                      "defaults { output { int8 } }\n", "child.qspec", model=model_path)
    assert diags == []
    (d,) = lint_text(tmp_path, 'profile "c" extends "nope/nope"\n', "child.qspec")
    assert d.code == "E104"


def test_suppression_comments(tmp_path: Path) -> None:
    text = ("op Gelu2 { output { int8 } }  # quantspec: ignore[L001]\n"
            "# quantspec: ignore\n"
            "op Gelu3 {\n  output { }\n}\n"
            "op Gelu4 { output { int8 } }  # quantspec: ignore[L007]\n")
    diags = lint_text(tmp_path, text)
    assert [(d.code, d.span.line) for d in diags] == [("L001", 6)]


def test_ignore_option_takes_prefixes(tmp_path: Path) -> None:
    text = "op Gelu2 { }\n"
    assert sorted(codes(lint_text(tmp_path, text))) == ["L001", "L007"]
    assert codes(lint_text(tmp_path, text, ignore=("L00",))) == []
    assert codes(lint_text(tmp_path, text, ignore=("L007",))) == ["L001"]


def test_skip_unknown_json(tmp_path: Path) -> None:
    text = '{"name": "not a quantization config", "version": "1.0.0"}\n'
    assert codes(lint_text(tmp_path, text, "package.json")) == ["E001"]
    assert lint_text(tmp_path, text, "package.json", skip_unknown=True) == []
    assert codes(lint_text(tmp_path, "op Relu { }\n", "x.qspec", skip_unknown=True)) == ["L007"]


def test_findings_without_position_get_the_file(tmp_path: Path) -> None:
    diags = lint_files([str(tmp_path / "missing.qspec")])
    assert [(d.code, d.span.file) for d in diags] == [("E101", str(tmp_path / "missing.qspec"))]


@pytest.mark.parametrize("pattern, fragment", [
    ("", "empty name"),
    (" conv1", "whitespace"),
    ("^conv1$", "regular expression"),
    (r"encoder\.layer", "regular expression"),
    ("blk.(attn|mlp).out", "regular expression"),
    ("conv[1", "never closed"),
    ("conv[!]", "never closed"),
    ("conv[z-a]", "empty"),
    ("enc/**/conv", "same as '*'"),
])
def test_odd_globs(pattern: str, fragment: str) -> None:
    (problem,) = globs.problems(pattern)
    assert fragment in problem[0]


@pytest.mark.parametrize("pattern", ["conv1", "encoder.*", "blk.[0-9].attn", "a[[]0]", "*",
                                     "/model/layers.1/Conv", "x?y", "[]]x"])
def test_plain_globs(pattern: str) -> None:
    assert globs.problems(pattern) == []


def test_regex_hint_gives_the_glob() -> None:
    ((_, hint),) = globs.problems(r"^encoder\..*$")
    assert hint == "write 'encoder.*'"
    assert globs.literal("a[[]0]") == "a[0]" and globs.literal("a*") is None


def test_no_conflict_on_tensors_turned_off(tmp_path: Path, model_path: Path) -> None:
    text = ("defaults { output { int8 } }\ndefaults { input { int16 } }\n"
            "final defaults { off }\n")
    diags = lint_text(tmp_path, text, model=model_path)
    assert [(d.code, d.span.line) for d in diags] == [("L021", 1), ("L021", 2)]
    assert "turned off" in diags[0].message
    assert "overridden by defaults tensor at" in [note for _, note in diags[1].related]
