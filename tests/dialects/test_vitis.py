"""Vitis AI vai_q_pytorch JSON: reading, the tool's merge quirks, conflict rules, writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx.defs
import pytest

from quantspec import ir
from quantspec.dialects import vitis
from quantspec.errors import QuantspecError, Report
from quantspec.ir import Calibration, Profile, Rule, Selector, Setting
from quantspec.source import Span

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus" / "vitis"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vitis"

VALID_CORPUS = sorted(CORPUS.glob("vai_q_pytorch*/*.json")) if CORPUS.exists() else []
TF2_CORPUS = sorted(CORPUS.glob("tf2_quantize_strategy/*.json")) if CORPUS.exists() else []
VALID_FIXTURES = sorted(p for p in FIXTURES.glob("*.json") if "__invalid" not in p.name)


def read(doc: dict[str, Any] | str, report: Report | None = None) -> Profile:
    text = doc if isinstance(doc, str) else json.dumps(doc, indent=2)
    return vitis.read(text, "cfg.json", report=report)


def fails(doc: dict[str, Any] | str) -> QuantspecError:
    with pytest.raises(QuantspecError) as info:
        read(doc)
    return info.value


def user(profile: Profile) -> dict[str, dict[str, Any]]:
    """User rules by selector description -> {field: value} (the last one for a selector)."""
    return {r.selector.describe(): {k: s.value for k, s in r.settings.items()}
            for r in profile.rules if not r.origin}


def roundtrip(profile: Profile) -> tuple[Profile, Report]:
    report = Report()
    return vitis.read(vitis.write(profile, report), "written.json"), report


def cpu(**overall: Any) -> dict[str, Any]:
    return {"target_device": "CPU", "overall_quantize_config": {
        "scale_type": "float", "method": "maxmin", "calib_statistic_method": "max", **overall}}


# ---------------------------------------------------------------------------------------------
# Corpus and fixtures
# ---------------------------------------------------------------------------------------------


def _corpus_ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.mark.corpus
@pytest.mark.parametrize("path", VALID_CORPUS, ids=_corpus_ids(VALID_CORPUS))
def test_corpus_reads_and_round_trips(path: Path) -> None:
    profile = vitis.read(path.read_text(), str(path))
    again, report = roundtrip(profile)
    assert again == profile
    assert not report.diagnostics
    assert all(r.origin in ("", "vitis") and (r.note or not r.origin) for r in profile.rules)


def test_corpus_present_or_skipped() -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} not present")
    assert len(VALID_CORPUS) == 8 and len(TF2_CORPUS) == 4


@pytest.mark.corpus
@pytest.mark.parametrize("path", TF2_CORPUS, ids=_corpus_ids(TF2_CORPUS))
def test_corpus_tf2_strategy_is_another_format(path: Path) -> None:
    with pytest.raises(QuantspecError) as info:
        vitis.read(path.read_text(), str(path))
    err = info.value
    assert err.code == "E140"
    assert (err.span.line, err.span.col) == (2, 3)
    assert "vai_q_tensorflow2" in err.diagnostic.hint
    assert not vitis.detect(path.read_text())


@pytest.mark.parametrize("path", VALID_FIXTURES, ids=_corpus_ids(VALID_FIXTURES))
def test_fixtures_round_trip(path: Path) -> None:
    profile = vitis.read(path.read_text(), str(path))
    again, report = roundtrip(profile)
    assert again == profile
    assert not report.diagnostics
    assert vitis.detect(path.read_text())


@pytest.mark.parametrize("name, code, line, col, text", [
    ("dpu_narrow_range__invalid.json", "E143", 5, 5, "Not support narrow_range in DPU"),
    ("scale_type_spelling__invalid.json", "E142", 4, 19, "scale_type"),
    ("unknown_key__invalid.json", "E140", 5, 5, "'symetry'"),
])
def test_invalid_fixtures_fail_at_position(name: str, code: str, line: int, col: int,
                                           text: str) -> None:
    path = FIXTURES / name
    with pytest.raises(QuantspecError) as info:
        vitis.read(path.read_text(), str(path))
    err = info.value
    assert (err.code, err.span.line, err.span.col) == (code, line, col)
    assert text in err.diagnostic.message
    assert str(err.span).startswith(f"{path}:{line}:{col}")


# ---------------------------------------------------------------------------------------------
# Key whitelist and schema (positions, did-you-mean)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, line, col, hint", [
    ('{"target_device": "CPU", "include_cl": true}', 1, 26, "did you mean 'include_cle'?"),
    ('{"target_device": "CPU",\n "tensor_quantize_config": {"weight": {}}}', 2, 29,
     "did you mean 'weights'?"),
    ('{"target_device": "CPU",\n "layer_quantize_config": [{"layer_types": "Conv2d"}]}', 2, 29,
     "did you mean 'layer_type'?"),
    ('{"target_device": "CPU",\n "overall_quantize_config": {"bitwidth": 8}}', 2, 30,
     "did you mean 'bit_width'?"),
])
def test_unknown_keys(text: str, line: int, col: int, hint: str) -> None:
    err = fails(text)
    assert err.code == "E140"
    assert err.diagnostic.message.startswith("Unsupported keyword in quantization config")
    assert (err.span.line, err.span.col) == (line, col)
    assert err.diagnostic.hint == hint


def test_unknown_key_is_reported_before_bad_values() -> None:
    # _keywords_legel runs before any value is looked at.
    err = fails({"target_device": "XPU", "overall_quantize_config": {"method": "bad",
                                                                      "colour": 1}})
    assert err.code == "E140" and "'colour'" in err.diagnostic.message


@pytest.mark.parametrize("doc, code, line, col, fragment", [
    ({"include_cle": True}, "E141", 1, 1, "needs 'target_device'"),
    ({"target_device": "DPUX"}, "E142", 2, 20, "target_device"),
    (cpu(scale_type="power_of_two"), "E142", 4, 19, "poweroftwo"),
    (cpu(bit_width=33), "E142", 7, 18, "range of [0,32]"),
    (cpu(bit_width=True), "E142", 7, 18, "bit_width"),
    (cpu(symmetry="true"), "E141", 7, 17, "symmetry must be boolean or null"),
    (cpu(method="minmax"), "E142", 5, 15, "should be in the list"),
    ({"target_device": "CPU", "layer_quantize_config": [{"layer_type": "Conv2d"}]}, "E141", 4,
     5, "needs 'quantizable_data_type'"),
    ({"target_device": "CPU", "overall_quantize_config": None}, "E141", 3, 30, "object"),
])
def test_schema_errors_have_positions(doc: dict[str, Any], code: str, line: int, col: int,
                                      fragment: str) -> None:
    err = fails(doc)
    assert (err.code, err.span.line, err.span.col) == (code, line, col), err.diagnostic.render()
    assert fragment in err.diagnostic.message + err.diagnostic.hint


def test_bit_width_must_be_an_int() -> None:
    err = fails('{"target_device": "CPU", "overall_quantize_config": {"bit_width": 8.0}}')
    assert (err.code, err.span.line, err.span.col) == ("E142", 1, 67)


def test_power_of_two_spelling_hint() -> None:
    err = fails(cpu(scale_type="power_of_two"))
    assert "'poweroftwo'" in err.diagnostic.hint


def test_json_syntax_error_position() -> None:
    err = fails('{"target_device": "CPU",}')
    assert (err.code, err.span.line, err.span.col) == ("E110", 1, 25)


def test_schema_file_is_valid_and_used() -> None:
    import jsonschema

    from quantspec.dialects.vitis import _schema_validator

    jsonschema.Draft202012Validator.check_schema(_schema_validator().schema)
    assert _schema_validator().schema["required"] == ["target_device"]


# ---------------------------------------------------------------------------------------------
# Merge order and precedence (vitis_amct.md 1.6)
# ---------------------------------------------------------------------------------------------


def test_builtin_defaults_are_derived_rules() -> None:
    p = read({"target_device": "DPU"})
    derived = {r.selector.describe(): r for r in p.rules if r.origin == "vitis"}
    act = derived["defaults output"].settings
    assert act["rounding"].value == "half_up"  # the code, not the doc's std_round
    assert act["scale_type"].value == "power_of_two"
    assert act["calibration"].value == Calibration("diffs", (("combine", "modal"),))
    assert derived["defaults weight"].settings["rounding"].value == "std_round"
    assert derived["defaults weight"].settings["calibration"].value == Calibration("diffs")
    assert "model input" in derived
    assert all(r.note for r in p.rules if r.origin)
    assert not list(p.user_rules())


def test_dpu_method_is_overridden_by_final_diffs() -> None:
    p = read({"target_device": "DPU", "overall_quantize_config": {"method": "maxmin"}})
    finals = [r for r in p.rules if r.final]
    assert [r.selector.describe() for r in finals] == ["defaults tensor", "defaults param"]
    assert all(r.origin == "vitis" for r in finals)
    assert user(p)["defaults input"]["calibration"] == Calibration("minmax",
                                                                   (("combine", "modal"),))


# Field-by-field merge: overall, then tensor_quantize_config on top (a table of cases).
MERGE_CASES = [
    ("overall only", {"overall_quantize_config": {"bit_width": 4}},
     {"defaults input": {"bits": 4}, "defaults weight": {"bits": 4},
      "defaults output": {"bits": 4}, "model input": {"bits": 4}}),
    ("tensor over overall", {"overall_quantize_config": {"bit_width": 4},
                             "tensor_quantize_config": {"weights": {"bit_width": 8,
                                                                    "per_channel": True}}},
     {"defaults weight": {"bits": 8, "per_channel": True}, "defaults bias": {"bits": 4}}),
    ("statistic read for input and activation only",
     {"overall_quantize_config": {"calib_statistic_method": "max"}},
     {"defaults input": {"calibration": Calibration("diffs", (("combine", "max"),))},
      "defaults output": {"calibration": Calibration("diffs", (("combine", "max"),))}}),
    ("method and statistic from different blocks",
     {"overall_quantize_config": {"calib_statistic_method": "median"},
      "tensor_quantize_config": {"activation": {"method": "mse"}}},
     {"defaults output": {"calibration": Calibration("mse", (("combine", "median"),))}}),
    ("null and 0 are ignored", {"overall_quantize_config": {"bit_width": 0, "method": None,
                                                            "signed": None}}, {}),
]


@pytest.mark.parametrize("extra, expect", [c[1:] for c in MERGE_CASES],
                         ids=[c[0] for c in MERGE_CASES])
def test_global_merge(extra: dict[str, Any], expect: dict[str, dict[str, Any]]) -> None:
    got = user(read({"target_device": "FLEXML", **extra}))  # FLEXML: no conflict checks
    for sel, fields in expect.items():
        assert got[sel] == fields, sel
    if not expect:
        assert got == {}
    assert "defaults weight" not in expect or "calibration" not in got["defaults weight"]


def test_percentage_is_reset_by_every_block() -> None:
    # quant_config.py: a block applied while the method is percentile resets the percentage to
    # 99.99 unless it repeats it.
    p = read({"target_device": "GPU", "overall_quantize_config": {
        "method": "percentile", "percentage": 99.5, "scale_type": "float",
        "calib_statistic_method": "max"},
        "tensor_quantize_config": {"weights": {"bit_width": 8}}})
    got = user(p)
    assert got["defaults input"]["calibration"].param("percentile") == 99.5
    assert got["defaults weight"]["calibration"] == Calibration("percentile",
                                                                (("percentile", 99.99),))


@pytest.mark.parametrize("value, hint", [(99, "write 99.0"), (0.0, ""), (100.5, ""),
                                         ("99", "")])
def test_percentage_must_be_a_float_in_range(value: Any, hint: str) -> None:
    err = fails({"target_device": "GPU", "overall_quantize_config": {
        "method": "percentile", "percentage": value}})
    assert err.code == "E142" and "Percentage should be" in err.diagnostic.message
    assert (err.span.line, err.span.col) == (5, 19)
    assert hint in err.diagnostic.hint


def test_percentage_ignored_without_percentile_warns() -> None:
    report = Report()
    read(cpu(percentage="anything"), report)
    assert [d.code for d in report.diagnostics] == ["W140"]


def test_layer_entries_start_from_the_resolved_global_config() -> None:
    p = read({**cpu(bit_width=4), "layer_quantize_config": [
        {"layer_type": "Conv2d", "quantizable_data_type": ["weights"],
         "overall_quantize_config": {"per_channel": True}},
        {"layer_name": "net/conv1", "quantizable_data_type": ["weights", "activation"],
         "tensor_quantize_config": {"activation": {"bit_width": 16}}}]})
    rules = [(r.origin, r.selector.describe(), {k: s.value for k, s in r.settings.items()})
             for r in p.rules if r.selector.scope == "layer"]
    # With a layer_type entry present, a name entry is based on the global config
    # (derived rule first), then its own fields on top.
    base = [r for r in rules if r[0] == "vitis"]
    assert {r[1] for r in base} == {'layer "net/conv1" weight', 'layer "net/conv1" bias',
                                    'layer "net/conv1" output'}
    assert all(r[2]["bits"] == 4 for r in base)
    assert ("", 'layer "net/conv1" output', {"bits": 16}) in rules
    assert ("", 'layer "net/conv1" weight', {}) in rules  # listed, nothing set


# Which tensor types a name entry falls back to the *global* config for (1.6 step 5): every
# type it does not list, except, in the default (all-int) strategy, activations (they follow
# the quant group and so the layer_type entry) and inputs (no per-node input quantizers).
FALLBACK_CASES = [
    ("int strategy", "int", ["weights"], {"bias"}),
    ("mixed-precision strategy", "float16", ["weights"], {"input", "bias", "activation"}),
    ("all listed", "int", ["input", "weights", "bias", "activation"], set()),
]


@pytest.mark.parametrize("datatype, listed, fallback", [c[1:] for c in FALLBACK_CASES],
                         ids=[c[0] for c in FALLBACK_CASES])
def test_name_entry_fallback_quirk(datatype: str, listed: list[str], fallback: set[str]
                                   ) -> None:
    p = read({**cpu(), "tensor_quantize_config": {"bias": {"datatype": datatype}},
              "layer_quantize_config": [
                  {"layer_type": "Linear", "quantizable_data_type": ["input", "weights", "bias",
                                                                     "activation"]},
                  {"layer_name": "fc", "quantizable_data_type": listed}]})
    slots = {"input": "input", "weights": "weight", "bias": "bias", "activation": "output"}
    derived = {r.selector.slot for r in p.rules
               if r.origin == "vitis" and r.selector.scope == "layer"}
    listed_slots = {slots[k] for k in listed if k != "input" or datatype != "int"}
    assert derived - listed_slots == {slots[k] for k in fallback}
    assert listed_slots <= derived


def test_no_derived_name_rules_without_type_entries() -> None:
    p = read({**cpu(), "layer_quantize_config": [
        {"layer_name": "fc", "quantizable_data_type": ["weights"]}]})
    assert not [r for r in p.rules if r.origin and r.selector.scope == "layer"]


def test_later_entry_replaces_earlier_and_keeps_position() -> None:
    report = Report()
    p = read({**cpu(), "layer_quantize_config": [
        {"layer_type": "torch.nn.Conv2d", "quantizable_data_type": ["weights"],
         "overall_quantize_config": {"bit_width": 4}},
        {"layer_type": "Linear", "quantizable_data_type": ["weights"]},
        {"layer_type": "Conv2d", "quantizable_data_type": ["activation"],
         "overall_quantize_config": {"bit_width": 16}}]}, report)
    ops = [(r.selector.op_types, r.selector.slot) for r in p.rules if r.selector.scope == "op"]
    assert ops == [(("Conv",), "output"), (("Gemm", "MatMul"), "weight")]
    assert p.meta["vitis.layer_types"].value == ("Conv2d", "Linear")
    assert [d.code for d in report.diagnostics] == ["W142"]
    assert report.diagnostics[0].span.line == 25


@pytest.mark.parametrize("entry, message", [
    ({"layer_type": "Conv2d", "layer_name": "x", "quantizable_data_type": []},
     "layer_name is ignored"),
    ({"layer_type": None, "layer_name": None, "quantizable_data_type": []}, "entry ignored"),
])
def test_entry_quirks_warn(entry: dict[str, Any], message: str) -> None:
    report = Report()
    p = read({**cpu(), "layer_quantize_config": [entry]}, report)
    assert any(message in d.message for d in report.diagnostics)
    assert not [r for r in p.rules if r.selector.scope == "layer"]


def test_tensor_block_for_unlisted_type_is_an_error() -> None:
    err = fails({**cpu(), "layer_quantize_config": [
        {"layer_type": "Conv2d", "quantizable_data_type": ["weights"],
         "tensor_quantize_config": {"bias": {"bit_width": 8}}}]})
    assert err.code == "E142" and "'bias'" in err.diagnostic.message
    assert (err.span.line, err.span.col) == (15, 9)


def test_layer_names_are_exact_even_with_glob_characters() -> None:
    name = "ResNet::ResNet/Conv2d[conv1]/input.2"
    p = read({**cpu(), "layer_quantize_config": [
        {"layer_name": name, "quantizable_data_type": ["weights"]}]})
    (rule,) = [r for r in p.rules if r.selector.scope == "layer"]
    import fnmatch

    (pattern,) = rule.selector.names
    assert fnmatch.fnmatchcase(name, pattern)
    assert not fnmatch.fnmatchcase("ResNet::ResNet/Conv2dc/input.2", pattern)
    assert vitis.exact_name(pattern) == name
    assert vitis.exact_name("encoder.*") is None


# ---------------------------------------------------------------------------------------------
# Datatypes
# ---------------------------------------------------------------------------------------------


DATATYPE_CASES = [
    ("int", {"quantized": True, "dtype": "int"}),
    ("float16", {"quantized": True, "dtype": "float", "bits": 16}),
    ("bfloat16", {"quantized": True, "dtype": "float", "bits": 16}),
    ("float32", {"quantized": False}),
]


@pytest.mark.parametrize("datatype, fields", DATATYPE_CASES, ids=[c[0] for c in DATATYPE_CASES])
def test_datatypes(datatype: str, fields: dict[str, Any]) -> None:
    p = read({"target_device": "CPU", "overall_quantize_config": {"datatype": datatype}})
    assert user(p)["defaults weight"] == fields
    again, _ = roundtrip(p)
    assert again == p
    written = json.loads(vitis.write(p, Report()))
    assert written["overall_quantize_config"]["datatype"] == datatype


def test_int_over_float16_base_keeps_the_base_bit_width() -> None:
    # bit_width is ignored while the datatype is float16 but comes back when an entry says int.
    p = read({"target_device": "CPU",
              "overall_quantize_config": {"datatype": "float16", "bit_width": 4},
              "layer_quantize_config": [{"layer_type": "Linear",
                                         "quantizable_data_type": ["weights"],
                                         "overall_quantize_config": {"datatype": "int"}}]})
    got = user(p)
    assert got["defaults weight"]["bits"] == 16
    assert got["op Gemm | MatMul weight"] == {"quantized": True, "dtype": "int", "bits": 4}
    assert roundtrip(p)[0] == p


# ---------------------------------------------------------------------------------------------
# Conflict rules (1.7)
# ---------------------------------------------------------------------------------------------

DPU_CASES = [
    ({"symmetry": False}, "symmetry", "Only support symmetric quantization in DPU device"),
    ({"method": "mse"}, "method", "Only support diffs and maxmin calibration method in DPU"),
    ({"per_channel": True}, "per_channel", "Only support per_tensor quantization in DPU"),
    ({"scale_type": "float"}, "scale_type", "Only support poweroftwo scale type in DPU"),
    ({"narrow_range": True}, "narrow_range", "Not support narrow_range in DPU device"),
    ({"calib_statistic_method": "max"}, "calib_statistic_method",
     "Only support modal activation statistic method in DPU"),
    ({"round_mode": "half_even"}, "round_mode",
     "Only support std_round round method in weights, bias and input quantization of DPU"),
]


@pytest.mark.parametrize("params, key, message", DPU_CASES, ids=[c[1] for c in DPU_CASES])
def test_dpu_conflicts(params: dict[str, Any], key: str, message: str) -> None:
    doc = {"target_device": "DPU", "overall_quantize_config": params}
    err = fails(doc)
    assert err.code == "E143"
    assert err.diagnostic.message.startswith(message)
    assert err.diagnostic.message.endswith("if datatype is int (input of the global config)") \
        or "(activation of the global config)" in err.diagnostic.message
    assert (err.span.line, err.span.col) == (4, 5)  # the offending key
    assert err.diagnostic.related[0][1] == "target_device is DPU"


def test_dpu_activation_rounding_and_bias_bit_width() -> None:
    err = fails({"target_device": "DPU",
                 "tensor_quantize_config": {"activation": {"round_mode": "std_round"}}})
    assert "half_up round method in activation" in err.diagnostic.message
    err = fails({"target_device": "DPU",
                 "tensor_quantize_config": {"bias": {"bit_width": 32}}})
    assert err.diagnostic.message.startswith("Bitwidth of activation and bias should be the same")
    assert (err.span.line, err.span.col) == (5, 7)


def test_dpu_checks_only_int_and_layer_entries() -> None:
    read({"target_device": "DPU", "overall_quantize_config": {"datatype": "float32",
                                                               "scale_type": "float"}})
    err = fails({"target_device": "DPU", "layer_quantize_config": [
        {"layer_type": "Conv2d", "quantizable_data_type": ["weights"],
         "overall_quantize_config": {"per_channel": True}}]})
    assert "(weights of layer_type 'Conv2d')" in err.diagnostic.message
    read({"target_device": "FLEXML", "overall_quantize_config": {"narrow_range": True}})


CPU_CASES = [
    ("per-channel activations", {"per_channel": True},
     "Only support per_channel quantization for weights for now"),
    ("per-channel float needs maxmin", {"tensor_quantize_config": {
        "weights": {"per_channel": True, "method": "mse"}}},
     "Only support maxmin calibration method in per_channel float quantization"),
    ("float scales need a non-modal statistic", {"calib_statistic_method": "modal"},
     "Only support max, mean and median scale activation statistic method"),
    ("asymmetric percentile", {"symmetry": False, "method": "percentile"},
     "Not support asymmetric quantization in percentile, entropy and mse"),
    ("pof2 needs diffs/maxmin", {"scale_type": "poweroftwo", "method": "mse",
                                 "calib_statistic_method": "modal"},
     "Only support diffs and maxmin calibration method in per_tensor poweroftwo"),
    ("pof2 unsigned", {"scale_type": "poweroftwo", "signed": False,
                       "calib_statistic_method": "modal"},
     "Not support unsigned quantization in per_tensor poweroftwo quantization"),
]


@pytest.mark.parametrize("params, message", [c[1:] for c in CPU_CASES],
                         ids=[c[0] for c in CPU_CASES])
def test_cpu_gpu_conflicts(params: dict[str, Any], message: str) -> None:
    tensors = params.pop("tensor_quantize_config", None)
    doc = cpu(**params)
    if tensors:
        doc["tensor_quantize_config"] = tensors
    for device in ("CPU", "GPU"):
        err = fails({**doc, "target_device": device})
        assert err.code == "E143" and err.diagnostic.message.startswith(message)
        assert err.span.line > 0


def test_cpu_builtin_modal_statistic_points_at_scale_type() -> None:
    err = fails({"target_device": "CPU", "overall_quantize_config": {"scale_type": "float",
                                                                      "method": "maxmin"}})
    assert "statistic method" in err.diagnostic.message
    assert (err.span.line, err.span.col) == (4, 5)


# ---------------------------------------------------------------------------------------------
# Layer-type table and switches
# ---------------------------------------------------------------------------------------------


def test_layer_type_table_maps_to_real_onnx_ops() -> None:
    table = vitis.layer_types()
    assert len(table) > 30
    for name, ops in table.items():
        assert ops, name
        for op in ops:
            assert onnx.defs.has(op), (name, op)


@pytest.mark.parametrize("layer_type, ops", [
    ("torch.nn.Conv2d", ("Conv",)), ("Conv2d", ("Conv",)), ("Linear", ("Gemm", "MatMul")),
    ("matmul", ("MatMul",)), ("BatchNorm", ("BatchNormalization",)), ("add", ("Add",)),
    ("torch.nn.ConvTranspose2d", ("ConvTranspose",)), ("AdaptiveAvgPool2d",
                                                       ("GlobalAveragePool",)),
])
def test_layer_type_lookup(layer_type: str, ops: tuple[str, ...]) -> None:
    assert vitis.onnx_op_types(layer_type) == ops


@pytest.mark.parametrize("ops, names", [
    (("Conv",), ["Conv1d", "Conv2d", "Conv3d"]), (("Gemm", "MatMul"), ["Linear"]),
    (("Gemm",), ["Linear"]), (("MatMul",), ["matmul"]), (("Erf",), []),
])
def test_reverse_layer_types(ops: tuple[str, ...], names: list[str]) -> None:
    assert vitis.torch_layer_types(ops) == names


def test_unknown_layer_type_warns_and_passes_through() -> None:
    report = Report()
    p = read({**cpu(), "layer_quantize_config": [
        {"layer_type": "torch.nn.BatchNorm2d", "quantizable_data_type": ["weights"]}]}, report)
    (diag,) = report.diagnostics
    assert diag.code == "W141" and diag.hint == "did you mean 'BatchNorm'?"
    (rule,) = [r for r in p.rules if r.selector.scope == "op"]
    assert rule.selector.op_types == ("BatchNorm2d",)
    assert roundtrip(p)[0] == p


def test_switches_transforms_and_meta() -> None:
    report = Report()
    p = read({"target_device": "GPU", "include_cle": "false", "convert_relu6_to_relu": True,
              "onnx_opset_version": 13, "keep_add_layer_accuracy": True,
              "change_pool_input_fix": False}, report)
    assert {k: s.value for k, s in p.transforms.items()} == {
        "relu6_to_relu": True, "cle": True, "bias_correction": True, "fold_batchnorm": True}
    assert p.transforms["cle"].span is None  # the string was ignored
    assert p.meta["vitis.onnx_opset_version"].value == 13
    assert p.meta["vitis.target_device"].value == "GPU"
    assert sorted(d.code for d in report.diagnostics) == ["W140", "W140"]
    assert set(ir.TRANSFORMS) >= set(p.transforms)


def test_detect() -> None:
    assert vitis.detect('{"target_device": "DPU"}')
    assert vitis.detect('  {\n "overall_quantize_config": {}}')
    assert not vitis.detect('{"defaults": {"ops": {}}}')
    assert not vitis.detect("common_config { }")


# ---------------------------------------------------------------------------------------------
# Writing profiles from other dialects
# ---------------------------------------------------------------------------------------------


def _span(line: int) -> Span:
    return Span("src.qspec", line, 1)


def _rule(scope: str, line: int, slot: str = "tensor", final: bool = False,
          **kw: Any) -> Rule:
    settings = kw.pop("settings")
    sel = Selector(scope, slot=slot, **kw)
    return Rule(sel, {k: Setting(v, _span(line)) for k, v in settings.items()}, _span(line),
                final=final)


def test_writer_reports_each_loss_once_with_its_span() -> None:
    rules = (
        _rule("defaults", 1, slot="output", settings={"bits": 8, "symmetric": False,
                                                       "scale_type": "float"}),
        _rule("tensor", 2, names=("conv1:0",), settings={"bits": 16}),
        _rule("layer", 3, names=("encoder.*",), slot="output", settings={"bits": 16}),
        _rule("op", 4, op_types=("Conv",), slot="weight",
              settings={"fixed_range": (-1.0, 1.0), "per_channel": True}),
        _rule("op", 5, op_types=("Relu",), slot="output", settings={"rounding": "floor"}),
        _rule("defaults", 6, slot="graph_input", settings={"bits": 8}),
        _rule("model_output", 7, settings={"bits": 16}),
        _rule("op", 8, op_types=("Conv",), slot="output", final=True, settings={"bits": 8}),
        _rule("op", 9, op_types=("Gemm",), slot="output",
              where=(ir.Predicate("dynamic"),), settings={"bits": 8}),
        _rule("defaults", 10, slot="weight", settings={
            "calibration": Calibration("tf_enhanced"), "unsigned_symmetric": True}),
    )
    profile = Profile(rules=rules, ties=(ir.Tie("inputs_to_output", op_types=("Concat",),
                                                span=_span(11)),),
                      patterns=(ir.Pattern((("Conv",), ("Relu",)), span=_span(12)),),
                      calibrate={"batches": Setting(4, _span(13))},
                      transforms={"adaround": Setting(True, _span(14))})
    report = Report()
    text = vitis.write(profile, report)
    got = [(d.code, d.span.line if d.span else None) for d in report.diagnostics]
    expected = [("W501", 2), ("W501", 3), ("W502", 4), ("W502", 5), ("W501", 6), ("W503", 8),
                ("W503", 9), ("W502", 10), ("W502", 7), ("W503", 10)]
    for item in expected:
        # rule 9 has two approximations: its predicate, and Gemm written as Linear (+MatMul)
        assert got.count(item) == (2 if item == ("W503", 9) else 1), (item, got)
    assert {c for c, _ in got} >= {"W504"}
    assert sum(1 for c, line in got if c == "W504") == 4  # tie, pattern, calibrate, transform
    doc = json.loads(text)
    assert doc["target_device"] == "CPU"
    act = {**doc["overall_quantize_config"], **doc["tensor_quantize_config"]["activation"]}
    assert act["symmetry"] is False and act["bit_width"] == 8


def test_writer_output_is_accepted_for_an_aimet_like_profile() -> None:
    rules = (
        _rule("defaults", 1, slot="output", settings={
            "quantized": True, "dtype": "int", "bits": 8, "symmetric": False,
            "scale_type": "float", "calibration": Calibration("minmax")}),
        _rule("defaults", 2, slot="param", settings={"quantized": True, "bits": 8,
                                                      "symmetric": True, "scale_type": "float",
                                                      "calibration": Calibration("minmax")}),
        _rule("defaults", 2, slot="input", settings={"scale_type": "float",
                                                      "calibration": Calibration("minmax")}),
        _rule("op", 3, op_types=("Conv",), slot="weight", settings={"per_channel": True}),
        _rule("layer", 4, names=("fc",), slot="output", settings={"bits": 16}),
    )
    report = Report()
    text = vitis.write(Profile(rules=rules), report)
    assert not [d for d in report.diagnostics if d.code == "W505"], report.diagnostics
    doc = json.loads(text)
    assert [e["layer_type"] for e in doc["layer_quantize_config"][:3]] == ["Conv1d", "Conv2d",
                                                                         "Conv3d"]
    assert doc["layer_quantize_config"][3]["layer_name"] == "fc"
    assert doc["overall_quantize_config"]["calib_statistic_method"] == "max"
    again = vitis.read(text, "w.json")
    assert user(again)['layer "fc" output'] == {"bits": 16}


def test_writer_flags_configs_the_tool_would_reject() -> None:
    profile = Profile(rules=(_rule("defaults", 1, slot="weight",
                                   settings={"quantized": True, "scale_type": "float"}),),
                      meta={"vitis.target_device": Setting("DPU")})
    report = Report()
    vitis.write(profile, report)
    assert [d.code for d in report.diagnostics] == ["W505"]
    assert "DPU device" in report.diagnostics[0].message


def test_writer_target_device_option() -> None:
    doc = json.loads(vitis.write(Profile(), Report(), target_device="GPU"))
    assert doc["target_device"] == "GPU"


# An empty profile quantizes nothing with float scales and min-max (the compiler's defaults
# for unset fields); the file must say so where vai_q_pytorch's built-in DPU table differs.
def test_writer_makes_ir_defaults_explicit() -> None:
    doc = json.loads(vitis.write(Profile(), Report()))
    assert doc["overall_quantize_config"] == {
        "datatype": "float32", "method": "maxmin", "round_mode": "half_even", "symmetry": False,
        "scale_type": "float", "calib_statistic_method": "max"}
    rules = (_rule("defaults", 1, slot="tensor", settings={"quantized": True, "dtype": "int"}),)
    doc = json.loads(vitis.write(Profile(rules=rules), Report()))
    assert doc["overall_quantize_config"]["datatype"] == "int"
    assert doc["overall_quantize_config"]["scale_type"] == "float"


def test_writer_drops_per_channel_biases_on_cpu() -> None:
    rules = (_rule("defaults", 1, slot="param", settings={"quantized": True,
                                                          "per_channel": True}),)
    report = Report()
    doc = json.loads(vitis.write(Profile(rules=rules), report))
    assert doc["tensor_quantize_config"]["weights"]["per_channel"] is True
    assert [d.code for d in report.diagnostics if d.code != "W503"] == ["W502"]


def test_writer_skips_own_derived_rules_and_keeps_bfloat16() -> None:
    path = FIXTURES / "mixed_float.json"
    profile = vitis.read(path.read_text(), str(path))
    doc = json.loads(vitis.write(profile, Report()))
    assert doc["overall_quantize_config"] == {"datatype": "bfloat16"}
    assert doc["tensor_quantize_config"] == {"bias": {"datatype": "float16"}}
    assert len(doc["layer_quantize_config"]) == 2


def test_writer_survives_odd_values() -> None:
    rules = (
        _rule("defaults", 1, slot="tensor", settings={
            "bits": "8", "dtype": "fp8", "rounding": "stochastic", "symmetric": "yes",
            "calibration": Calibration("percentile", (("percentile", "high"),)),
            "fixed_range": (None, 1.0)}),
        _rule("op", 2, op_types=(), slot="weight", settings={"bits": 99}),
        _rule("layer", 3, names=(), slot="output", settings={}),
        _rule("defaults", 4, slot="output", settings={
            "calibration": Calibration("ifmr", (("max_percentile", "x"),))}),
    )
    profile = Profile(rules=rules, ties=(ir.Tie("", tensors=("a", "b")),),
                      transforms={"fold_batchnorm": Setting(False)})
    report = Report()
    text = vitis.write(profile, report)
    assert json.loads(text)["target_device"] == "CPU"
    assert report.diagnostics
