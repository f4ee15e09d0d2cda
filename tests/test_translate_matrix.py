"""The translation matrix (issue 5): every source file x every target dialect.

For each pair: translate (``dialects.get(target).write``), read the result back with the
target's reader, compile the source and the translation against the hand-built test models,
and compare the plans tensor by tensor. Nothing may be lost silently: every field that differs
must have been announced by a warning of the writer.

What is compared (``view``): ``quantized``; for quantized tensors dtype and bits; for integer
tensors symmetric, per_channel (and the axis when per channel), block_size, scale_type,
rounding, calibration, fixed_range, encodings; the grid restriction and signedness of
symmetric grids; narrow_range of signed asymmetric grids; shared_with. Equivalent spellings
count as equal: ``strict_symmetric`` and ``narrow_range`` are one grid for signed symmetric
tensors; IFMR with percentiles 1.0 and the single candidate 1.0 is min-max (vitis_amct.md 2.5);
the signedness of an asymmetric grid is its storage type (int8 or uint8 with a shifted zero
point), not its values.

A difference in field F of tensor T is announced when the writer reported a warning
(``_announced``):

1. at the position of a rule (or one of its settings) that decided F for T in the source
   plan, or that it shadowed (the plan's ``why``), or of a tie when F is ``shared_with``;
2. W503 (approximated) at a rule that sets F: the rule was written for more than it
   selected (a predicate or an input index dropped, ``Linear`` standing for Gemm and MatMul);
3. without a position, or at the profile header (what the target does on its own, e.g. the
   rules AIMET adds to every config): a warning naming F, or the deciding rule's selector.

A translation the target's reader rejects must have been announced as W505; a translation
that no longer compiles against a model needs a warning too (W503 for AIMET's is_symmetric,
which covers an op's inputs and outputs at once, and makes shared tensors conflict).

``.qspec`` is the one lossless target: every plan field is identical and nothing is reported.
Derived rules (``Rule.origin``) are written as ordinary statements with a ``# <origin>: <note>``
comment, and read back as the user's rules (docs/dialects.md "Derived rules").
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from qs_paths import FIXTURES, REPO, SHARED
from test_plans import MODELS, graph

from quantspec import dialects, ir
from quantspec.compiler import compile_profile
from quantspec.errors import Diagnostic, QuantspecError, Report
from quantspec.lang.load import load

TARGETS = ("qspec", "aimet", "vitis", "amct", "encodings")
TEST_MODELS = ("mixed", "conv_relu_add")
CORPUS = SHARED / "corpus"


def _sources() -> list[Path]:
    """A bounded, representative set: every valid repo fixture of each dialect, the golden
    qspec profiles, the quickstart config, and a few corpus files per dialect."""
    out = [*sorted((FIXTURES / "plans").glob("*.qspec")),
           REPO / "examples" / "quickstart" / "htp_like.json",
           *sorted(p for p in (FIXTURES / "vitis").glob("*.json") if "__invalid" not in p.name),
           *sorted(p for p in (FIXTURES / "amct").glob("*.cfg") if "__invalid" not in p.name),
           FIXTURES / "encodings" / "small_v1.0.0.encodings",
           FIXTURES / "encodings" / "qnn_overrides_spec004.json"]
    corpus = [
        "aimet/conformance/configs/default_config.json",
        "aimet/conformance/configs/htp_quantsim_config_v73.json",
        "aimet/conformance/configs/p_op_overrides.json",
        "aimet/conformance/configs/p_strict_per_channel.json",
        "vitis/vai_q_pytorch/int_config.json",
        "vitis/vai_q_pytorch/mix_precision_config.json",
        "vitis/vai_q_pytorch/gpu_quant_config.json",
        "vitis/vai_q_pytorch/bfloat16_config.json",
        "amct/cfg_ptq/hicann_amct_tests/ptq_a16w8.cfg",
        "amct/cfg_ptq/hicann_amct_tests/ptq_rnn_a8w4.cfg",
        "amct/cfg_ptq/ascend_samples/onnx_resnet101_nuq_quant.cfg",
        "aimet/encodings/generated_aimet_onnx_2.42.0_toy_v1.0.0.encodings",
    ]
    out += [CORPUS / c for c in corpus if (CORPUS / c).exists()]
    return out


SOURCES = _sources()


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@cache
def source_profile(path: Path) -> ir.Profile:
    return load(str(path))


@cache
def source_plan(path: Path, model: str) -> dict[str, Any] | None:
    try:
        return compile_profile(source_profile(path), graph(model), model).to_json()
    except QuantspecError:
        return None  # e.g. an AIMET config AIMET itself rejects on this model


# ---------------------------------------------------------------------------------------------
# comparing plans
# ---------------------------------------------------------------------------------------------

# the plan fields behind each compared field (for provenance)
UNDER = {"restricted": ("strict_symmetric", "narrow_range", "signed"),
         "signed": ("signed", "unsigned_symmetric"),
         "narrow_range": ("narrow_range", "signed", "strict_symmetric")}
# fields that must agree before a field is compared (an axis only matters per channel, ...)
PREREQ = {"quantized": (), "dtype": ("quantized",), "axis": ("per_channel",),
          "restricted": ("symmetric",), "unsigned_symmetric": ("symmetric",),
          "signed": ("symmetric", "unsigned_symmetric"), "narrow_range": ("symmetric",)}
# words a warning without a position uses for a field
WORDS = {"quantized": ("quantiz", "skip"), "calibration": ("calib", "method", "ifmr", "hfmg"),
         "restricted": ("strict", "narrow"), "shared_with": ("shar", "tie", "joint"),
         "fixed_range": ("range", "shared encoding")}


def _calibration(c: dict[str, Any]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    method, params = c["method"], dict(c["params"])
    if method == "ifmr" and params.get("max_percentile") == 1.0 and \
            params.get("min_percentile") == 1.0 and params.get("search_range_start") == 1.0 \
            and params.get("search_range_end", 0) <= 1.0 + params.get("search_step", 0.01) + 1e-9:
        return "minmax", ()  # one candidate, the min/max: min-max exactly (vitis_amct.md 2.5)
    return method, tuple(sorted(params.items()))


def view(t: dict[str, Any]) -> dict[str, Any]:
    """What a plan entry means for the quantizer, spellings normalised (module docstring)."""
    v: dict[str, Any] = {"quantized": t["quantized"]}
    if not t["quantized"]:
        return v
    v.update(dtype=t["dtype"], bits=t["bits"], shared_with=t["shared_with"])
    if t["dtype"] != "int":
        return v
    v["symmetric"] = t["symmetric"]
    if t["symmetric"]:
        v["restricted"] = t["strict_symmetric"] or (t["narrow_range"] and t["signed"])
        v["unsigned_symmetric"] = t["unsigned_symmetric"]
        v["signed"] = t["signed"]
    else:
        v["narrow_range"] = t["narrow_range"] and t["signed"]
    v["per_channel"] = t["per_channel"]
    if t["per_channel"]:
        v["axis"] = t["axis"]
    for f in ("block_size", "scale_type", "rounding", "fixed_range", "encodings"):
        v[f] = t[f]
    v["calibration"] = _calibration(t["calibration"])
    return v


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    va, vb = view(a), view(b)
    out = []
    for f in sorted(va.keys() & vb.keys()):
        prereq = PREREQ.get(f, ("quantized", "dtype"))
        if all(va.get(p) == vb.get(p) for p in prereq) and va[f] != vb[f]:
            out.append((f, va[f], vb[f]))
    if va["quantized"] != vb["quantized"] and ("quantized", va["quantized"],
                                                vb["quantized"]) not in out:
        out.append(("quantized", va["quantized"], vb["quantized"]))
    return out


def _position(where: str) -> tuple[str, int]:
    m = re.match(r"^(.*):(\d+):(\d+)$", where)
    return (m.group(1), int(m.group(2))) if m else (where, 0)


def _rule_positions(prof: ir.Profile) -> dict[str, set[tuple[str, int]]]:
    """A rule's position as the plan writes it -> the positions of the rule and its settings."""
    out: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for r in prof.rules:
        if r.span is not None:
            out[str(r.span)] |= {(r.span.file, r.span.line)} | {
                (s.span.file, s.span.line) for s in r.settings.values() if s.span is not None}
    return out


def _announced(t: dict[str, Any], field: str, prof: ir.Profile, warnings: list[Diagnostic],
               positions: dict[str, set[tuple[str, int]]]) -> bool:
    """The announcement rules of the module docstring."""
    fields = UNDER.get(field, (field,))
    deciding: set[str] = set()
    selectors: set[str] = set()
    for f in fields:
        why = t["why"].get(f)
        if why:
            deciding |= {why["rule"], *why.get("shadowed", [])}
            if why.get("selector"):
                selectors.add(why["selector"])
    if field == "shared_with":
        deciding |= {str(tie.span) for tie in prof.ties if tie.span is not None}
    at: set[tuple[str, int]] = set()
    for where in deciding:
        at |= {_position(where)} | positions.get(where, set())
    setters = {(r.span.file, r.span.line) for r in prof.rules
               if r.span is not None and any(f in r.settings for f in fields)}
    words = (*WORDS.get(field, ()), *fields)
    for d in warnings:
        spot = (d.span.file, d.span.line) if d.span is not None else None
        if spot in at:
            return True
        if d.code == "W503" and spot in setters:
            return True
        if d.span is None or not d.span.line or d.span == prof.span:
            if any(w in d.message for w in words) or any(s in d.message for s in selectors):
                return True
    return False


def unannounced(source: Path, target: str, report: Report) -> list[str]:
    """Every difference between the source's and the translation's plans that no warning in
    ``report`` announced (the matrix check)."""
    prof = source_profile(source)
    text = dialects.get(target).write(prof, Report())  # the text; warnings come from `report`
    try:
        back = dialects.get(target).read(text, f"translated.{target}")
    except QuantspecError as exc:
        if any(d.code == "W505" for d in report.diagnostics):
            return []  # announced: the target tool would reject the written file
        return [f"the translation does not read back ({exc.code}) and no W505 says so"]
    positions = _rule_positions(prof)
    out = []
    for model in TEST_MODELS:
        a = source_plan(source, model)
        if a is None:
            continue
        try:
            b = compile_profile(back, graph(model), model).to_json()
        except QuantspecError as exc:
            if not report.diagnostics:
                out.append(f"{model}: the translation does not compile ({exc.code}), silently")
            continue
        for ta, tb in zip(a["tensors"], b["tensors"], strict=True):
            for field, was, now in differences(ta, tb):
                if not _announced(ta, field, prof, report.diagnostics, positions):
                    out.append(f"{model} {ta['name']}.{field}: {was!r} -> {now!r}")
    return out


# ---------------------------------------------------------------------------------------------
# the matrix
# ---------------------------------------------------------------------------------------------

PAIRS = [(s, t) for s in SOURCES for t in TARGETS]


@pytest.mark.parametrize(("source", "target"), PAIRS,
                         ids=[f"{_id(s)}->{t}" for s, t in PAIRS])
def test_nothing_is_lost_silently(source: Path, target: str) -> None:
    report = Report()
    dialects.get(target).write(source_profile(source), report)
    for d in report.diagnostics:  # every warning says where it comes from, or is global
        assert d.code.startswith("W5") and d.severity == "warning", d.render()
    missing = unannounced(source, target, report)
    assert not missing, f"{len(missing)} difference(s) not announced:\n" + "\n".join(missing[:20])


@pytest.mark.parametrize("source", SOURCES, ids=[_id(s) for s in SOURCES])
def test_qspec_is_lossless(source: Path) -> None:
    """Every plan field (provenance aside) survives .qspec, and nothing is reported."""
    prof = source_profile(source)
    report = Report()
    text = dialects.get("qspec").write(prof, report)
    assert not report.diagnostics
    back = dialects.get("qspec").read(text, "translated.qspec")
    for model in TEST_MODELS:
        a = source_plan(source, model)
        if a is None:
            continue
        b = compile_profile(back, graph(model), model).to_json()
        for ta, tb in zip(a["tensors"], b["tensors"], strict=True):
            assert {k: v for k, v in ta.items() if k != "why"} == \
                {k: v for k, v in tb.items() if k != "why"}
            assert ta["why"].keys() == tb["why"].keys()


def test_derived_rules_become_commented_statements_in_qspec() -> None:
    """Rule.origin is not data in .qspec: a derived rule is written as a statement preceded by
    ``# <origin>: <note>`` and read back as the user's rule."""
    prof = source_profile(REPO / "examples" / "quickstart" / "htp_like.json")
    derived = [r for r in prof.rules if r.origin]
    assert derived
    text = dialects.get("qspec").write(prof, Report())
    for rule in derived:
        assert f"# {rule.origin}: {rule.note}" in text
    back = dialects.get("qspec").read(text, "t.qspec")
    assert not any(r.origin for r in back.rules)

    def by_precedence(p: ir.Profile) -> dict[tuple[int, int], list[Any]]:
        """Rules in order within each precedence (only there does order decide anything)."""
        out: dict[tuple[int, int], list[Any]] = defaultdict(list)
        for r in p.rules:
            out[(r.priority, r.selector.level)].append((r.selector, dict(r.settings), r.group))
        return out

    assert by_precedence(back) == by_precedence(prof)


@pytest.mark.parametrize("target", ["aimet", "vitis", "amct"])
def test_a_dialect_written_to_itself_loses_nothing(target: str) -> None:
    source = {"aimet": REPO / "examples" / "quickstart" / "htp_like.json",
              "vitis": FIXTURES / "vitis" / "cpu_layers.json",
              "amct": FIXTURES / "amct" / "common_types_layers.cfg"}[target]
    report = Report()
    dialects.get(target).write(source_profile(source), report)
    assert not report.diagnostics, [d.render() for d in report.diagnostics]
    assert not unannounced(source, target, report)
    for model in TEST_MODELS:  # and there is nothing to announce
        text = dialects.get(target).write(source_profile(source), Report())
        back = dialects.get(target).read(text, f"t.{target}")
        a, b = source_plan(source, model), compile_profile(back, graph(model)).to_json()
        assert a is not None
        assert all(not differences(x, y) for x, y in zip(a["tensors"], b["tensors"],
                                                         strict=True))


@pytest.mark.parametrize("target", ["aimet", "vitis", "amct", "encodings"])
def test_the_check_finds_unannounced_losses(target: str) -> None:
    """The matrix check is not vacuous: with the writer's warnings thrown away, the same
    translations show differences that nothing announces."""
    lossy = FIXTURES / "plans" / "cascade_levels.qspec"
    assert unannounced(lossy, target, Report())


def test_matrix_covers_every_dialect() -> None:
    dialects_seen = {source_profile(s).dialect for s in SOURCES}
    assert dialects_seen == {"qspec", "aimet", "vitis", "amct", "encodings"}
    assert set(MODELS) >= set(TEST_MODELS)
