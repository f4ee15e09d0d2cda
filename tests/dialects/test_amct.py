"""Huawei AMCT simplified PTQ config (protobuf text): reading, AMCT's checks, writing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import onnx.defs
import pytest
from google.protobuf import text_format

from quantspec import ir
from quantspec.dialects import amct, amct_pb2
from quantspec.errors import QuantspecError, Report
from quantspec.ir import Calibration, Profile, Rule, Selector, Setting
from quantspec.source import Span

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "amct"
FIXTURES = REPO / "tests" / "fixtures" / "amct"

# Known-invalid corpus files: (code, line, col, message fragment).
INVALID = {
    "amc_ptq.cfg": ("E150", 12, 1, "Expected identifier or number, got }"),
    "dmq_balancer_not_support.cfg": ("E152", 16, 34, "migration_strength 0.1"),
}
PTQ = sorted(CORPUS.glob("cfg_ptq/*/*.cfg")) if CORPUS.exists() else []
VALID_CORPUS = [p for p in PTQ if p.name not in INVALID]
INVALID_CORPUS = [p for p in PTQ if p.name in INVALID]
OTHER_FORMATS = sorted([*CORPUS.glob("cfg_retrain/*/*.cfg"), *CORPUS.glob("cfg_kv_cache/*/*.cfg"),
                        *CORPUS.glob("config_json_detailed/*/*.json")]) if CORPUS.exists() else []
VALID_FIXTURES = sorted(p for p in FIXTURES.glob("*.cfg") if "__invalid" not in p.name)


def read(text: str, report: Report | None = None, **options: Any) -> Profile:
    return amct.read(text, "quant.cfg", report=report, **options)


def fails(text: str, **options: Any) -> QuantspecError:
    with pytest.raises(QuantspecError) as info:
        read(text, **options)
    return info.value


def roundtrip(profile: Profile, **options: Any) -> tuple[Profile, Report, str]:
    report = Report()
    text = amct.write(profile, report, **options)
    return amct.read(text, "written.cfg"), report, text


def user(profile: Profile) -> dict[str, dict[str, Any]]:
    return {("final " if r.final else "") + r.selector.describe():
            {k: s.value for k, s in r.settings.items()} for r in profile.rules if not r.origin}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


# ---------------------------------------------------------------------------------------------
# Corpus and fixtures
# ---------------------------------------------------------------------------------------------


def test_corpus_present_or_skipped() -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} not present")
    assert len(VALID_CORPUS) == 13 and len(INVALID_CORPUS) == 2


@pytest.mark.corpus
@pytest.mark.parametrize("path", VALID_CORPUS, ids=_ids(VALID_CORPUS))
def test_corpus_reads_and_round_trips(path: Path) -> None:
    text = path.read_text()
    profile = amct.read(text, str(path))
    again, report, written = roundtrip(profile)
    assert again == profile
    assert not report.diagnostics
    assert amct.detect(text) and amct.detect(written)
    assert all(r.origin in ("", "amct") and (r.note or not r.origin) for r in profile.rules)
    # The written text is canonical: writing it again gives the same bytes.
    assert amct.write(again, Report()) == written


@pytest.mark.corpus
@pytest.mark.parametrize("path", INVALID_CORPUS, ids=_ids(INVALID_CORPUS))
def test_corpus_known_invalid_fail_at_position(path: Path) -> None:
    code, line, col, fragment = INVALID[path.name]
    with pytest.raises(QuantspecError) as info:
        amct.read(path.read_text(), str(path))
    err = info.value
    assert (err.code, err.span.line, err.span.col) == (code, line, col)
    assert fragment in err.diagnostic.message
    assert str(err.span).startswith(f"{path}:{line}:{col}")


@pytest.mark.corpus
@pytest.mark.parametrize("path", OTHER_FORMATS, ids=_ids(OTHER_FORMATS))
def test_corpus_other_amct_formats_fail_with_a_hint(path: Path) -> None:
    with pytest.raises(QuantspecError) as info:
        amct.read(path.read_text(), str(path))
    err = info.value
    assert err.code in ("E150", "E151") and err.span.line >= 1 and err.span.col >= 1
    assert re.search(r"retrain|KV-cache|JSON", err.diagnostic.hint), err.diagnostic.render()


@pytest.mark.parametrize("path", VALID_FIXTURES, ids=_ids(VALID_FIXTURES))
def test_fixtures_round_trip(path: Path) -> None:
    profile = amct.read(path.read_text(), str(path))
    again, report, _ = roundtrip(profile)
    assert again == profile
    assert not report.diagnostics


@pytest.mark.parametrize("name, code, line, col, hint", [
    ("search_step__invalid.cfg", "E152", 5, 18, ""),
    ("unbalanced__invalid.cfg", "E150", 6, 1, ""),
    ("typo_field__invalid.cfg", "E151", 2, 1, "did you mean 'common_config'?"),
])
def test_invalid_fixtures(name: str, code: str, line: int, col: int, hint: str) -> None:
    path = FIXTURES / name
    with pytest.raises(QuantspecError) as info:
        amct.read(path.read_text(), str(path))
    err = info.value
    assert (err.code, err.span.line, err.span.col, err.diagnostic.hint) == (code, line, col, hint)


# ---------------------------------------------------------------------------------------------
# Generated code
# ---------------------------------------------------------------------------------------------


def test_generated_module_matches_proto_and_regen_command_is_documented() -> None:
    proto = (REPO / "src/quantspec/dialects/amct.proto").read_text()
    command = ("python -m grpc_tools.protoc -Isrc --python_out=src --pyi_out=src "
               "src/quantspec/dialects/amct.proto")
    assert command in proto
    assert command in (REPO / "tools/regen_amct_proto.sh").read_text()
    fields = set(re.findall(r"^\s+(?:(?:optional|repeated|required)\s+)?\w+\s+(\w+)\s*=\s*\d",
                            proto, re.M))
    generated = {f.name for m in amct_pb2.DESCRIPTOR.message_types_by_name.values()
                 for f in m.fields}
    assert fields == generated
    source = (REPO / "src/quantspec/dialects/amct_pb2.py").read_text()
    assert "runtime_version" not in source  # loads on protobuf >= 4.21
    stub = (REPO / "src/quantspec/dialects/amct_pb2.pyi").read_text()
    assert "class AMCTConfig(_message.Message)" in stub


# ---------------------------------------------------------------------------------------------
# Parsing: text-format details and positions
# ---------------------------------------------------------------------------------------------


def test_text_format_variants() -> None:
    text = ("# comment\nskip_layers: ['a', \"b\"]; batch_num: 2, batch_num: 3\n"
            "common_config < ifmr_quantize { max_percentile: 0.99 } >\n"
            "override_layer_configs { layer_name: 'x' 'y' calibration_config {} }")
    p = read(text)
    assert p.calibrate["batches"].value == 3  # Merge: the last scalar wins
    assert p.calibrate["batches"].span.line == 2
    names = [r.selector.names for r in p.rules if r.selector.scope == "layer"]
    assert ("xy",) in names and ("a",) in names and ("b",) in names
    common = user(p)["op Conv | ConvTranspose | Gemm | MatMul | AveragePool | LSTM | GRU input"]
    assert common["calibration"].param("max_percentile") == 0.99


def test_setting_spans_point_at_the_vendor_keys() -> None:
    text = "common_config {\n  arq_quantize {\n    quant_bits: 4\n  }\n}\n"
    (rule,) = [r for r in read(text).rules if not r.origin and r.selector.slot == "weight"]
    span = rule.settings["bits"].span
    assert (span.line, span.col, span.path) == (3, 5, "common_config.arq_quantize.quant_bits")


@pytest.mark.parametrize("text, code, line, col, fragment, hint", [
    ("batch_num: -1", "E150", 1, 12, "out of range", ""),
    ("\n  batch_nun: 1", "E151", 2, 3, 'no field named "batch_nun"', "did you mean 'batch_num'?"),
    ("common_config { ifmr_quantize { dst_type: INT32 } }", "E150", 1, 43, "INT32", ""),
    ('{"batch_num": 1}', "E150", 1, 1, "Expected identifier", "this is JSON"),
    ("kv_cache_quant_config {}", "E151", 1, 1, "kv_cache", "KV-cache"),
])
def test_syntax_errors(text: str, code: str, line: int, col: int, fragment: str,
                       hint: str) -> None:
    err = fails(text)
    assert (err.code, err.span.line, err.span.col) == (code, line, col)
    assert fragment in err.diagnostic.message
    assert hint in err.diagnostic.hint
    assert "quantspec.amct" not in err.diagnostic.message


# ---------------------------------------------------------------------------------------------
# Value ranges and AMCT's other checks (vitis_amct.md 2.2, 2.4)
# ---------------------------------------------------------------------------------------------

RANGE_CASES = [
    ("batch_num", "batch_num: 0", 1, 12, "batch_num must be greater than zero"),
    ("version", "version: 2", 1, 10, "version must be 1"),
    ("start > 0", "common_config { ifmr_quantize { search_range_start: 0 } }", 1, 53,
     "greater than zero"),
    ("start < end", "common_config { ifmr_quantize { search_range_end: 0.5 } }", 1, 51,
     "less than search_range_end"),
    ("step > 0", "common_config { ifmr_quantize { search_step: 0 } }", 1, 46,
     "search_step must be greater than zero"),
    ("step <= range", "common_config {\n ifmr_quantize {\n  search_step: 0.7 } }", 3, 16,
     "less than or equal to"),
    ("max_percentile", "common_config { ifmr_quantize { max_percentile: 0.5 } }", 1, 49,
     "greater than 0.5"),
    ("min_percentile", "common_config { ifmr_quantize { min_percentile: 1.01 } }", 1, 49,
     "less than or equal to 1.0"),
    ("num_of_bins", "common_config { hfmg_quantize { num_of_bins: 1000 } }", 1, 46, "1024"),
    ("quant_bits", "common_config { arq_quantize { quant_bits: 5 } }", 1, 44, "[4, 6, 7, 8]"),
    ("dmq", "common_config { dmq_balancer { migration_strength: 0.9 } }", 1, 52,
     "[0.2, 0.8]"),
    ("ada reg_param", "common_config { ada_quantize { reg_param: 1.0 } }", 1, 43, "reg_param"),
    ("ada beta range", "common_config { ada_quantize { beta_range_start: 1 } }", 1, 50,
     "beta_range_start"),
    ("nuq steps", 'nuq_config { mapping_file: "m.json" nuq_quantize { num_steps: 8 } }', 1, 63,
     "num_steps"),
    ("nuq iterations", "common_config { nuq_quantize { num_of_iteration: 6 } }", 1, 50,
     "num_of_iteration"),
    ("arq asymmetric", "common_config { arq_quantize { asymmetric: true } }", 1, 44,
     "weight_compress_only"),
    ("tensor_quantize hfmg", "tensor_quantize { layer_name: 'a' input_index: 0 "
     "hfmg_quantize { num_of_bins: 3 } }", 1, 79, "num_of_bins"),
]


@pytest.mark.parametrize("text, line, col, fragment", [c[1:] for c in RANGE_CASES],
                         ids=[c[0] for c in RANGE_CASES])
def test_ranges(text: str, line: int, col: int, fragment: str) -> None:
    err = fails(text)
    assert err.code == "E152"
    assert (err.span.line, err.span.col) == (line, col), err.diagnostic.render(text)
    assert fragment in err.diagnostic.message


def test_accepted_edges() -> None:
    read("common_config { ifmr_quantize { max_percentile: 1.0 min_percentile: 0.500001 "
         "search_range_start: 1.0 search_range_end: 1.01 search_step: 0.01 } "
         "dmq_balancer { migration_strength: 0.2 } }")
    read("common_config { ifmr_quantize { search_range_start: 0.9 search_range_end: 1.0 "
         "search_step: 0.1 } }")  # equal to the range, compared in decimal like AMCT


@pytest.mark.parametrize("text, line, col, fragment", [
    ("skip_layers: 'a' skip_layers: 'a'", 1, 31, "skip_layers repeats 'a'"),
    ("skip_layer_types: 'Conv2d' skip_layer_types: 'Conv2d'", 1, 46, "repeats"),
    ("override_layer_types { layer_type: 'Linear' calibration_config {} }\n"
     "override_layer_types { layer_type: 'Linear' calibration_config {} }", 2, 36, "repeats"),
    ("override_layer_configs { layer_name: 'x' calibration_config {} }\n"
     "override_layer_configs { layer_name: 'x' calibration_config {} }", 2, 38, "repeats"),
])
def test_duplicates(text: str, line: int, col: int, fragment: str) -> None:
    err = fails(text)
    assert (err.code, err.span.line, err.span.col) == ("E153", line, col)
    assert fragment in err.diagnostic.message


@pytest.mark.parametrize("text, line, col, fragment", [
    ("override_layer_types { calibration_config {} }", 1, 1, '"layer_type"'),
    ("\noverride_layer_configs { layer_name: 'x' }", 2, 1, '"calibration_config"'),
    ("tensor_quantize { layer_name: 'x' }", 1, 1, '"input_index"'),
    ("nuq_config { nuq_quantize { num_steps: 16 } }", 1, 1, '"mapping_file"'),
])
def test_required_fields(text: str, line: int, col: int, fragment: str) -> None:
    err = fails(text)
    assert (err.code, err.span.line, err.span.col) == ("E155", line, col)
    assert fragment in err.diagnostic.message


# Checks AMCT runs on override_layer_types (proto_config.py) for the PyTorch front-end.
CAPABILITY_CASES = [
    ("channel_wise on Linear", "Linear", "arq_quantize { channel_wise: true }",
     "channel_wise can only be False for Linear type"),
    ("INT16 on Conv3d", "Conv3d", "ifmr_quantize { dst_type: INT16 }",
     "int16_quantizable not support for Conv3d type"),
    ("dmq on AvgPool2d", "AvgPool2d", "dmq_balancer { migration_strength: 0.5 }",
     "dmq_balancer not support for AvgPool2d type"),
    ("winograd bits on Linear", "Linear", "arq_quantize { quant_bits: 6 }",
     "quant_bits 6 not support for Linear type"),
    ("ada on Conv1d", "Conv1d", "ada_quantize { }",
     "ada_quantizable not support for Conv1d layer"),
    ("asymmetric Conv3d", "Conv3d", "hfmg_quantize { asymmetric: true }",
     "Layer type Conv3d can only set asymmetric be False"),
]


@pytest.mark.parametrize("layer_type, body, message", [c[1:] for c in CAPABILITY_CASES],
                         ids=[c[0] for c in CAPABILITY_CASES])
def test_type_capabilities(layer_type: str, body: str, message: str) -> None:
    text = (f'override_layer_types {{\n  layer_type: "{layer_type}"\n'
            f'  calibration_config {{ {body} }}\n}}')
    err = fails(text)
    assert err.code == "E154" and err.diagnostic.message == message
    assert err.span.line == 3
    # The same block is fine on a type that supports it.
    read(text.replace(layer_type, "Conv2d"))


def test_capabilities_follow_the_front_end() -> None:
    text = 'override_layer_types { layer_type: "Gemm" calibration_config { ' \
           'arq_quantize { channel_wise: true } } }'
    assert fails(text).diagnostic.message == "channel_wise can only be False for Gemm type"
    text = text.replace("Gemm", "Conv2D")  # TensorFlow: AMCT publishes no list; not checked
    assert read(text).meta["amct.framework"].value == "tensorflow"


@pytest.mark.parametrize("text, line, col, fragment, hint", [
    ("skip_layer_types: 'Conv2dd'", 1, 19, "Layer type Conv2dd does not support quantize.",
     "did you mean 'Conv2d'?"),
    ("skip_layer_types: 'MaxPool'", 1, 19, "MaxPool does not support", ""),
    ("override_layer_types { layer_type: 'Relu' calibration_config {} }", 1, 36,
     "Layer type Relu", ""),
    ("skip_layer_types: ['Conv', 'Gemm', 'MatMul', 'ConvTranspose', 'AveragePool']", 1, 63,
     "Except skip_types, no type need to quantize.", ""),
])
def test_layer_type_errors(text: str, line: int, col: int, fragment: str, hint: str) -> None:
    err = fails(text)
    assert (err.code, err.span.line, err.span.col) == ("E154", line, col)
    assert fragment in err.diagnostic.message
    assert err.diagnostic.hint == hint


def test_oneof_alternatives_warn() -> None:
    report = Report()
    p = read("common_config {\n ifmr_quantize { search_step: 0.02 }\n hfmg_quantize {} }",
             report)
    (diag,) = report.diagnostics
    assert diag.code == "W150" and diag.span.line == 3
    common = next(r for r in p.rules if not r.origin and r.selector.slot == "input")
    assert common.settings["calibration"].value.method == "hfmg"


# ---------------------------------------------------------------------------------------------
# Semantics: whole-block replacement, asymmetric inheritance, skips
# ---------------------------------------------------------------------------------------------

COMMON = "op Conv | ConvTranspose | Gemm | MatMul | AveragePool | LSTM | GRU"


def test_whole_block_replacement() -> None:
    p = read("common_config { arq_quantize { quant_bits: 4 } "
             "ifmr_quantize { search_step: 0.02 max_percentile: 0.9 } }\n"
             "override_layer_types { layer_type: 'Linear' calibration_config {} }\n"
             "override_layer_configs { layer_name: 'fc1' calibration_config { "
             "arq_quantize { quant_bits: 6 } } }")
    got = user(p)
    default_ifmr = Calibration("ifmr", amct.IFMR_DEFAULTS)
    # Every field is written in every block; the override does not inherit common's values.
    for sel in ("op Gemm | MatMul", 'layer "fc1"'):
        assert got[f"{sel} input"]["calibration"] == default_ifmr
        assert set(got[f"{sel} input"]) == {"quantized", "dtype", "bits", "symmetric",
                                            "per_channel", "calibration"}
    assert got["op Gemm | MatMul weight"]["bits"] == 8
    assert got['layer "fc1" weight']["bits"] == 6
    assert got[f"{COMMON} input"]["calibration"].param("search_step") == 0.02
    # Levels: common/type rules are op-level (the later type rule wins), layer rules beat both.
    levels = {r.selector.describe(): r.selector.level for r in p.rules if not r.origin}
    assert levels[f"{COMMON} input"] == levels["op Gemm | MatMul input"] == ir.LEVEL_OP
    assert levels['layer "fc1" input'] == ir.LEVEL_LAYER


def test_type_block_without_channel_wise_uses_the_type_default() -> None:
    p = read("common_config { arq_quantize { channel_wise: false } }\n"
             "override_layer_types { layer_type: 'Conv2d' calibration_config {} }\n"
             "override_layer_types { layer_type: 'Linear' calibration_config {} }")
    got = user(p)
    assert got["op Conv weight"]["per_channel"] is True
    assert got["op Gemm | MatMul weight"]["per_channel"] is False
    assert got[f"{COMMON} weight"]["per_channel"] is False
    derived = {r.selector.describe(): r.settings["per_channel"].value for r in p.rules
               if r.origin and "per_channel" in r.settings}
    assert derived == {"op Conv | ConvTranspose | LSTM | GRU weight": True,
                       "op Gemm | MatMul weight": False}


def test_layer_override_channel_wise_gap_warns() -> None:
    report = Report()
    read("common_config { arq_quantize { channel_wise: false } }\n"
         "override_layer_configs { layer_name: 'conv3' calibration_config {} }", report)
    assert [d.code for d in report.diagnostics] == ["W151"]


# asymmetric: the block's value, else common_config's when the act algorithm matches, else
# activation_offset (config_base.py set_global_asymmetric) -- symmetric is its negation.
ASYM_CASES = [
    ("block value", "activation_offset: true common_config { ifmr_quantize { asymmetric: true } }"
     " override_layer_types { layer_type: 'Linear' calibration_config { ifmr_quantize { "
     "asymmetric: false } } }", True),
    ("common value, same algorithm", "activation_offset: true common_config { ifmr_quantize { "
     "asymmetric: false } } override_layer_types { layer_type: 'Linear' calibration_config {} }",
     True),
    ("other algorithm: activation_offset", "activation_offset: true common_config { "
     "ifmr_quantize { asymmetric: false } } override_layer_types { layer_type: 'Linear' "
     "calibration_config { hfmg_quantize {} } }", False),
    ("common without algorithm", "activation_offset: false common_config { arq_quantize {} } "
     "override_layer_types { layer_type: 'Linear' calibration_config {} }", True),
    ("default activation_offset", "override_layer_types { layer_type: 'Linear' "
     "calibration_config {} }", False),
    ("symmetric-only type", "override_layer_types { layer_type: 'Conv3d' "
     "calibration_config {} }", True),
]


@pytest.mark.parametrize("text, symmetric", [c[1:] for c in ASYM_CASES],
                         ids=[c[0] for c in ASYM_CASES])
def test_asymmetric_inheritance(text: str, symmetric: bool) -> None:
    p = read(text)
    (rule,) = [r for r in p.rules if not r.origin and r.selector.scope == "op"
               and r.selector.op_types != tuple(amct.table().common)
               and r.selector.slot == "input"]
    assert rule.settings["symmetric"].value is symmetric
    assert roundtrip(p)[0] == p


def test_default_block_without_common_config() -> None:
    p = read("activation_offset: false")
    derived = {r.selector.describe(): r for r in p.rules if r.origin == "amct"}
    block = derived[f"{COMMON} input"].settings
    assert block["symmetric"].value is True
    assert block["calibration"].value == Calibration("ifmr", amct.IFMR_DEFAULTS)
    assert derived["defaults tensor"].settings["quantized"].value is False
    assert not list(p.user_rules())


def test_skips_are_final_and_beat_overrides() -> None:
    p = read("skip_layers: 'fc1' skip_layer_types: 'Conv1d'\n"
             "override_layer_configs { layer_name: 'fc1' calibration_config {} }")
    finals = [(r.selector.describe(), r.settings["quantized"].value) for r in p.rules if r.final]
    assert finals == [("op Conv input", False), ("op Conv weight", False),
                      ('layer "fc1" input', False), ('layer "fc1" weight', False)]
    assert roundtrip(p)[0] == p


def test_common_downgrades() -> None:
    p = read("common_config { arq_quantize { quant_bits: 7 } ifmr_quantize { dst_type: INT16 } }")
    derived = [(r.selector.describe(), dict(r.settings)) for r in p.rules if r.origin and r.note
               and "fall back" in r.note]
    assert [d[0] for d in derived] == [
        "op ConvTranspose | Gemm | MatMul | AveragePool | LSTM | GRU weight",
        "op MatMul | AveragePool input"]


def test_tensor_quantize_and_joint_quant() -> None:
    p = read("joint_quant: true\ntensor_quantize { layer_name: 'add_1' input_index: 1 }")
    (rule,) = [r for r in p.rules if r.selector.index is not None]
    assert rule.selector == Selector("layer", names=("add_1",), slot="input", index=1)
    assert rule.selector.level == ir.LEVEL_LAYER_ROLE
    assert p.ties == (ir.Tie("inputs_to_output", op_types=("Add",)),)
    assert roundtrip(p)[0] == p


def test_weight_compress_only() -> None:
    text = ("common_config { weight_compress_only: true arq_quantize { asymmetric: true } }\n"
            "override_layer_types { layer_type: 'Linear' calibration_config { "
            "weight_compress_only: true } }")
    p = read(text)
    got = user(p)
    assert got[f"{COMMON} input"] == {"quantized": False}
    assert got[f"{COMMON} weight"]["symmetric"] is False
    again, report, written = roundtrip(p)
    assert again == p and not report.diagnostics
    assert written.count("weight_compress_only: true") == 2


def test_extras_and_globals_round_trip() -> None:
    text = ('batch_num: 3 fakequant_precision_mode: FORCE_FP16_QUANT version: 1\n'
            'skip_approximation_layers: "softmax_1" do_fusion: false '
            'skip_fusion_layers: "conv1"\n'
            'nuq_config { mapping_file: "m.json" nuq_quantize { num_steps: 16 } }\n'
            'common_config { ada_quantize { num_iteration: 5 channel_wise: true } '
            'dmq_balancer { migration_strength: 0.3 } }\n'
            'override_layer_types { layer_type: "Conv2d" calibration_config { '
            'nuq_quantize { num_of_iteration: 0 } } }')
    p = read(text)
    assert p.calibrate["batches"].value == 3
    assert p.transforms["fold_batchnorm"].value == (("enabled", False), ("skip", ("conv1",)))
    assert p.meta["amct.fakequant_precision_mode"].value == "FORCE_FP16_QUANT"
    assert p.meta["amct.block_extras"].value == (
        ("common", "ada_quantize", (("num_iteration", 5), ("channel_wise", True))),
        ("common", "dmq_balancer", (("migration_strength", 0.3),)),
        ("type:Conv2d", "nuq_quantize", (("num_of_iteration", 0),)))
    assert user(p)[f"{COMMON} weight"]["per_channel"] is True
    again, report, _ = roundtrip(p)
    assert again == p and not report.diagnostics


def test_deprecated_conv_and_fc_configs() -> None:
    report = Report()
    p = read("conv_calibration_config { arq_quantize { channel_wise: true } }\n"
             "fc_calibration_config { ifmr_quantize { search_step: 0.02 } }", report)
    got = user(p)
    assert got[f"{COMMON} weight"]["per_channel"] is True
    assert got["op Gemm | MatMul input"]["calibration"].param("search_step") == 0.02
    assert p.meta["amct.framework"].value == "caffe"
    again, _, written = roundtrip(p)
    assert "common_config" in written and "override_layer_types" in written
    assert user(again) == got


def test_mixed_front_end_names_round_trip() -> None:
    report = Report()
    p = read("override_layer_types { layer_type: 'Conv2d' calibration_config { "
             "arq_quantize { channel_wise: true } } }\nskip_layer_types: 'Gemm'", report)
    assert "amct.framework" not in p.meta
    again, wreport, text = roundtrip(p)
    assert again == p and not wreport.diagnostics
    assert 'layer_type: "Conv2d"' in text


def test_framework_option() -> None:
    p = read("skip_layer_types: 'MatMul'", framework="tensorflow")
    assert p.meta["amct.framework"].value == "tensorflow"
    (rule, _) = [r for r in p.rules if r.final]
    assert rule.selector.op_types == ("MatMul", "Gemm")
    err = fails("batch_num: 1", framework="keras")
    assert err.code == "E120" and "choose one of" in err.diagnostic.hint


# ---------------------------------------------------------------------------------------------
# Layer-type table
# ---------------------------------------------------------------------------------------------


def test_layer_type_table() -> None:
    t = amct.table()
    assert set(t.detect_order) == set(t.frameworks)
    for fw in t.frameworks.values():
        for name, ops in [*fw.types.items(), *fw.tensor_only.items()]:
            assert ops and all(onnx.defs.has(op) for op in ops), (fw.name, name)
            if name in fw.types:
                assert set(ops) & set(t.common), (fw.name, name)
        for cap, names in fw.caps.items():
            assert names is None or names <= set(fw.types), (fw.name, cap)
    assert all(onnx.defs.has(op) for op in t.common)


@pytest.mark.parametrize("names, framework", [
    (["Conv2d", "Linear"], "pytorch"), (["Conv", "Gemm"], "onnx"),
    (["Conv2D", "DepthwiseConv2dNative"], "tensorflow"), (["InnerProduct"], "caffe"),
    (["FullyConnection"], "ascend"), (["MatMul"], "onnx"), (["Conv2d", "Conv"], None),
])
def test_framework_detection(names: list[str], framework: str | None) -> None:
    fw = amct.table().detect(names)
    assert (fw.name if fw else None) == framework


@pytest.mark.parametrize("framework, ops, names", [
    ("pytorch", ("Conv",), ["Conv2d", "Conv3d", "Conv1d"]),
    ("pytorch", ("Gemm", "MatMul"), ["Linear"]),
    ("onnx", ("Gemm", "MatMul"), ["Gemm", "MatMul"]),
    ("caffe", ("AveragePool",), ["Pooling"]),
])
def test_reverse_layer_types(framework: str, ops: tuple[str, ...], names: list[str]) -> None:
    assert amct.layer_type_names(amct.table().frameworks[framework], ops) == names


def test_detect() -> None:
    assert amct.detect("# cfg\nbatch_num : 2\n")
    assert amct.detect("common_config {\n}")
    assert not amct.detect('{"target_device": "DPU"}')
    assert not amct.detect("defaults { output { int8 } }")


# ---------------------------------------------------------------------------------------------
# Writing profiles from other dialects
# ---------------------------------------------------------------------------------------------


def _span(line: int) -> Span:
    return Span("src.qspec", line, 1)


def _rule(scope: str, line: int, slot: str = "tensor", final: bool = False, **kw: Any) -> Rule:
    settings = kw.pop("settings")
    return Rule(Selector(scope, slot=slot, **kw),
                {k: Setting(v, _span(line)) for k, v in settings.items()}, _span(line),
                final=final)


def test_writer_reports_each_loss_once_with_its_span() -> None:
    rules = (
        _rule("defaults", 1, slot="output", settings={"bits": 8, "symmetric": False,
                                                       "calibration": Calibration("minmax")}),
        _rule("defaults", 2, slot="bias", settings={"bits": 32}),
        _rule("op", 3, op_types=("Relu",), slot="output", settings={"bits": 8}),
        _rule("op", 4, op_types=("Conv",), slot="weight", settings={
            "per_channel": True, "scale_type": "power_of_two", "rounding": "half_up"}),
        _rule("tensor", 5, names=("x",), settings={"bits": 8}),
        _rule("layer", 6, names=("block.*",), slot="input", settings={"bits": 16}),
        _rule("op", 7, op_types=("Gemm",), slot="input", settings={
            "calibration": Calibration("percentile", (("percentile", 99.9),))}),
        _rule("op", 8, op_types=("Gemm",), slot="weight", settings={"per_channel": True}),
        _rule("layer", 9, names=("fc",), slot="weight", settings={"quantized": False}),
        _rule("model_input", 10, settings={"bits": 8}),
        _rule("op", 11, op_types=("Conv",), slot="input", settings={"bits": 4}),
    )
    profile = Profile(rules=rules,
                      ties=(ir.Tie("output_to_input", op_types=("Relu",), span=_span(12)),),
                      transforms={"cle": Setting(True, _span(13))},
                      calibrate={"method": Setting("minmax", _span(14))},
                      patterns=(ir.Pattern((("Conv",), ("Relu",)), span=_span(15)),))
    report = Report()
    text = amct.write(profile, report, framework="onnx")
    got = [(d.code, d.span.line if d.span else None) for d in report.diagnostics]
    expected = [("W503", 1), ("W501", 2), ("W501", 3), ("W502", 4), ("W501", 5), ("W501", 6),
                ("W503", 7), ("W502", 8), ("W503", 9), ("W501", 10), ("W502", 11), ("W504", 12),
                ("W504", 13), ("W504", 14), ("W504", 15)]
    for item in expected:
        assert got.count(item) == (2 if item == ("W502", 4) else 1), (item, got)
    # ("W502", 4): scale_type and rounding of one rule, each once.
    assert not [d for d in report.diagnostics if d.code == "W505"]
    msg = amct_pb2.AMCTConfig()
    text_format.Merge(text, msg)
    assert msg.common_config.ifmr_quantize.search_range_start == 1.0  # min-max IFMR, exact
    assert [o.layer_type for o in msg.override_layer_types] == ["Conv", "Gemm"]
    gemm = msg.override_layer_types[1].calibration_config
    assert not gemm.arq_quantize.channel_wise  # Gemm cannot be channel-wise: dropped
    assert list(msg.skip_layers) == ["fc"]


def test_writer_from_vitis_profile() -> None:
    from quantspec.dialects import vitis

    profile = vitis.read('{"target_device": "CPU", "overall_quantize_config": {'
                         '"scale_type": "float", "method": "maxmin", '
                         '"calib_statistic_method": "max", "symmetry": false}, '
                         '"tensor_quantize_config": {"weights": {"symmetry": true}}}', "v.json")
    report = Report()
    text = amct.write(profile, report)
    again = amct.read(text, "w.cfg")
    got = user(again)
    assert got[f"{COMMON} input"]["symmetric"] is False
    assert got[f"{COMMON} input"]["calibration"] == Calibration("ifmr", amct.MINMAX_IFMR)
    assert not [d for d in report.diagnostics if d.code == "W505"]
    assert any("(vitis default)" in d.message for d in report.diagnostics)


def test_writer_flags_configs_amct_would_reject() -> None:
    rules = (_rule("op", 1, op_types=("Conv", "Gemm", "MatMul", "ConvTranspose", "AveragePool"),
                   slot="tensor", final=True, settings={"quantized": False}),)
    report = Report()
    amct.write(Profile(rules=rules), report, framework="onnx")
    assert "W505" in [d.code for d in report.diagnostics]


def test_f32_recovers_the_written_decimal() -> None:
    import struct

    for value in (0.999999, 0.7, 1.3, 0.01, 0.2, 99.99):
        stored = struct.unpack("f", struct.pack("f", value))[0]
        assert amct.f32(stored) == value


def test_writer_survives_odd_values() -> None:
    rules = (
        _rule("defaults", 1, slot="tensor", settings={
            "bits": "8", "dtype": "fp8", "rounding": "stochastic", "symmetric": "yes",
            "calibration": Calibration("ifmr", (("search_step", "x"),))}),
        _rule("op", 2, op_types=(), slot="weight", settings={"bits": 99}),
        _rule("op", 3, op_types=("Conv",), slot="input", settings={
            "calibration": Calibration("hfmg", (("num_of_bins", None),))}),
        _rule("layer", 4, names=("a",), slot="input", index=2, settings={
            "calibration": Calibration("percentile", (("percentile", "high"),))}),
    )
    profile = Profile(rules=rules, calibrate={"batches": Setting(True)},
                      transforms={"fold_batchnorm": Setting((("skip", ("c1",)),))})
    report = Report()
    text = amct.write(profile, report)
    msg = amct_pb2.AMCTConfig()
    text_format.Merge(text, msg)
    assert list(msg.skip_fusion_layers) == ["c1"] and not msg.HasField("batch_num")
    assert msg.tensor_quantize[0].input_index == 2
    assert report.diagnostics


@pytest.fixture(scope="module")
def vendor_pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """AMCT's own open-source PyTorch proto, compiled for this test run."""
    proto = CORPUS / "proto_pytorch" / "calibration_config_pytorch.proto"
    protoc = pytest.importorskip("grpc_tools.protoc")
    if not proto.exists():
        pytest.skip(f"{proto} not present")
    out = tmp_path_factory.mktemp("vendor_pb")
    assert protoc.main(["protoc", f"-I{proto.parent}", f"--python_out={out}", str(proto)]) == 0
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "calibration_config_pytorch_pb2", out / "calibration_config_pytorch_pb2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PYTORCH_CORPUS = [p for p in VALID_CORPUS if "nuq" not in p.name]  # nuq_config: TF/ONNX/Caffe


@pytest.mark.corpus
@pytest.mark.parametrize("path", PYTORCH_CORPUS, ids=_ids(PYTORCH_CORPUS))
def test_written_config_parses_with_amcts_own_proto(path: Path, vendor_pb: Any) -> None:
    text = amct.write(amct.read(path.read_text(), str(path)), Report())
    text_format.Merge(text, vendor_pb.AMCTConfig())
