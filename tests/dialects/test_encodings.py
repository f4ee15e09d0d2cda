"""AIMET / QNN encodings dialect: reading every version, writing 0.6.1 / 1.0.0 / 2.x, the IR
mapping, round trips and error positions.

Tests marked ``corpus`` use ../shared/corpus next to the repository and are skipped without it;
the fixtures under tests/fixtures/encodings/ always run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from quantspec import ir
from quantspec.dialects import encodings as E
from quantspec.dialects import get
from quantspec.errors import QuantspecError, Report
from quantspec.source import Span

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "encodings"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus" / "aimet"
ENC_DIR = CORPUS / "encodings"
CONF_DIR = CORPUS / "conformance" / "encodings"
GOLDEN = CORPUS / "golden" / "encoding_math_aimet_onnx_2.42.0.json"

FIXTURE_FILES = sorted(p.name for p in FIXTURES.iterdir())
WRITE_VERSIONS = ("0.6.1", "1.0.0", "2.0.0", "2.1.0")


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted([*ENC_DIR.glob("*.encodings"), *CONF_DIR.glob("*.encodings")])


def need_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not available")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text("utf-8")


def numbers(ef: E.EncodingFile) -> dict[str, tuple[Any, ...]]:
    """What a round trip must keep exactly, per tensor."""
    return {
        e.name: (e.dtype, e.bitwidth, e.scale, e.offset, e.min, e.max, e.per_channel,
                 e.block_size)
        for e in ef.entries
    }


def holdable(ef: E.EncodingFile, version: str) -> bool:
    """Whether every entry of ``ef`` has a form in ``version`` (else the writer raises E138)."""
    for e in ef.entries:
        blockwise = e.enc_type in ("PER_BLOCK", "LPBQ")
        if version == "0.6.1" and blockwise:
            return False
        if version != "0.6.1" and e.dtype == "int" and not e.has_range:
            return False
        if version == "1.0.0" and e.enc_type == "LPBQ" and "decompressed_bw" not in e.extra:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Dialect protocol
# ---------------------------------------------------------------------------------------------


def test_protocol() -> None:
    mod = get("encodings")
    assert mod.NAME == "encodings"
    assert mod.SUFFIXES == (".encodings", ".json")
    for fn in ("detect", "read", "write"):
        assert callable(getattr(mod, fn))


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_detect_fixtures(name: str) -> None:
    assert E.detect(fixture(name))


@pytest.mark.parametrize(
    "text",
    [
        '{"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {}}',  # AIMET config
        '{"quantize_strategy": "pof2s", "tensor_quantize_config": {}}',  # Vitis
        "[1, 2, 3]",
        '{"encodings": [{"name": "a"}]}',
        '{"encodings": "x", "y_scale": 1}',
        "common_config: {}",
    ],
)
def test_detect_rejects_other_formats(text: str) -> None:
    assert not E.detect(text)


def test_detect_broken_json_still_ours() -> None:
    # so that the reader, not another dialect, reports the syntax error position
    assert E.detect('{"activation_encodings": {"a": [{"bitwidth": 8,}]}')
    assert E.detect('{"version": "2.0.0", "encodings": [{"name": "a", "y_scale": 0.1')


# ---------------------------------------------------------------------------------------------
# Reading: corpus and fixtures
# ---------------------------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_reads(path: Path) -> None:
    text = path.read_text("utf-8")
    assert E.detect(text)
    ef = E.read_file(text, str(path))
    assert ef.entries
    profile = E.read(text, str(path))
    assert profile.dialect == "encodings"
    assert len(profile.rules) == len(ef.entries)
    for rule, enc in zip(profile.rules, ef.entries, strict=True):
        assert rule.selector == ir.Selector(scope="tensor", names=(enc.name,))
        assert rule.span is not None and rule.span.file == str(path) and rule.span.line > 0
        assert set(rule.settings) <= set(ir.FIELDS)


def test_corpus_list_is_not_empty_when_present() -> None:
    need_corpus()
    assert len(corpus_files()) == 10


@pytest.mark.corpus
@pytest.mark.parametrize("path", sorted(CONF_DIR.glob("*.encodings")) if CORPUS.is_dir() else [],
                         ids=lambda p: p.name)
def test_conformance_ranges_match_aimet_quantizers(path: Path) -> None:
    """Derived min/max are AIMET's own TfEncoding values (strict grids end one step lower)."""
    ef = E.read_file(path.read_text("utf-8"), str(path))
    quantizers = json.loads(path.with_name(path.name.replace(".encodings", ".quantizers.json"))
                            .read_text("utf-8"))["quantizers"]
    for enc in ef.entries:
        q = quantizers[enc.name]
        assert enc.offset == [float(o) for o in q["offset"]]
        for ours, theirs in ((enc.scale, q["scale"]), (enc.min, q["min"]), (enc.max, q["max"])):
            assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-12)


def test_conformance_strict_and_unsigned_grids() -> None:
    need_corpus()
    p04 = E.read_file((CONF_DIR / "p04_linear__p_strict_per_channel.encodings").read_text(), "p04")
    x = p04.by_name()["x"]
    assert x.strict and x.grid_kind() == (True, True, False)
    assert x.max[0] == x.scale[0] * 127 and x.min[0] == x.scale[0] * -127
    p03 = E.read_file(
        (CONF_DIR / "p03_depthwise_deconv__p_unsigned_asym_params__tf_enhanced.encodings")
        .read_text(), "p03")
    mixed = [e for e in p03.entries if e.per_channel and set(e.offset) == {-128.0, 0.0}]
    assert mixed, "p03 has per-channel unsigned-symmetric weights"
    assert all(e.grid_kind() == (True, False, True) for e in mixed)


def test_read_spec004_overrides() -> None:
    """QNN semantics: bitwidth+min+max suffice; scale/offset recomputed (spec 004)."""
    ef = E.read_file(fixture("qnn_overrides_spec004.json"), "o.json")
    assert ef.version == "0.6.1" and not ef.version_declared
    by = ef.by_name()
    conv1 = by["Conv1:0"]  # consistent scale/offset: kept bit for bit
    assert conv1.scale == [0.050288015993135454] and conv1.offset == [0.0]
    assert conv1.symmetric is None and conv1.dtype == "int"
    inp = by["input:0"]  # QNN's positive offset 127 disagrees with min: recomputed from min/max
    scale, offset = E.qnn_encoding(-1.0039304197656937, 0.9960872825108046, 8)
    assert inp.scale == [scale] and inp.offset == [offset] == [-128.0]
    assert by["Conv2d/weights"].offset == [-141.0]
    pc = by["features.8.conv.3.weight"]
    assert pc.per_channel and pc.channels == 3 and pc.symmetric is True
    assert pc.offset == [-128.0] * 3
    assert pc.scale == [0.005520610358771377, 0.004116586343509945, 0.005801794566507415]


def test_read_legacy_positive_offset_without_range_is_qnn_convention() -> None:
    text = '{"activation_encodings": {"a": [{"bitwidth": 8, "scale": 0.5, "offset": 12}]}}'
    enc = E.read_file(text).entries[0]
    assert enc.offset == [-12.0] and enc.min == [-6.0] and enc.max == [0.5 * 243]


def test_read_doc_tf_example_positive_offsets() -> None:
    need_corpus()
    ef = E.read_file((ENC_DIR / "doc_spec_v0.4.0_tensorflow_example.encodings").read_text())
    enc = ef.by_name()["conv2d/Relu:0"]
    # the doc writes 11; min/max say -12 (aimet.md D: doc offsets contradict the convention)
    assert enc.offset == [-12.0]
    assert enc.min[0] == pytest.approx(-0.10788747668266296, rel=1e-6)


def test_read_mixed_precision() -> None:
    profile = E.read(fixture("qnn_mixed_precision_0.5.0.json"), "mp.json")
    rules = {r.selector.names[0]: {k: v.value for k, v in r.settings.items()}
             for r in profile.rules}
    assert rules["data_0"] == {"quantized": True, "dtype": "int", "bits": 8}
    assert rules["conv2_1"] == {"quantized": True, "dtype": "float", "bits": 32}
    assert rules["conv1_w_0"] == {"quantized": True, "dtype": "int", "bits": 8, "symmetric": True}
    assert rules["conv2_w_0"] == {"quantized": True, "dtype": "float", "bits": 16}
    assert profile.meta["version"].value == "0.5.0"
    assert profile.meta["param_tensors"].value == ("conv1_w_0", "conv2_w_0")


def test_read_v2_grid_flags() -> None:
    ef = E.read_file(fixture("small_v2.0.0.encodings"), "v2")
    by = ef.by_name()
    assert by["conv.weight"].offset == [-128.0, -128.0] and by["conv.weight"].signed is True
    assert by["conv.weight"].axis == 0
    assert by["fc.weight"].grid_kind() == (True, True, False)  # int8 zp -1 = strict
    assert by["relu_out"].grid_kind() == (True, False, True)  # int8 zp -128 = unsigned sym
    assert by["sym_act"].grid_kind() == (True, False, False)  # uint8 zp 128: forced unsigned
    assert by["sym_act"].signed is False and by["sym_act"].offset == [-128.0]
    assert by["conv_out"].offset == [-35373.0] and by["conv_out"].symmetric is False
    bias = by["conv.bias"]
    assert bias.bitwidth == 32 and bias.offset == [-2.0**31] * 2
    block = by["mm.weight"]
    assert block.enc_type == "PER_BLOCK" and block.block_size == 4 and block.channels == 6
    assert block.extra["scale_shape"] == [3, 2] and block.scale[:3] == [0.5, 0.25, 0.125]
    assert by["softmax_out"].dtype == "float" and by["softmax_out"].bitwidth == 16
    assert all(e.kind == "unknown" for e in ef.entries)


def test_read_lpbq_both_spellings() -> None:
    v1 = E.read_file(fixture("lpbq_v1.0.0.encodings")).entries[0]
    v21 = E.read_file(fixture("lpbq_v2.1.0.encodings")).entries[0]
    for enc in (v1, v21):
        assert enc.enc_type == "LPBQ" and enc.bitwidth == 4 and enc.block_size == 64
        assert enc.scale == [0.01, 0.02] and enc.offset == [-8.0, -8.0]
    assert v1.extra["decompressed_bw"] == 8
    rule = E.rule_for(v1)
    assert {k: v.value for k, v in rule.settings.items()} == {
        "quantized": True, "dtype": "int", "bits": 4, "symmetric": True, "per_channel": True,
        "block_size": 64,
    }


def test_read_version_option_and_inference() -> None:
    body = '{"activation_encodings": [], "param_encodings": []}'
    assert E.read_file(body).version == "1.0.0"
    assert E.read_file('{"encodings": []}').version == "2.0.0"
    ef = E.read_file('{"encodings": []}', version="2.1.0")
    assert ef.version == "2.1.0" and not ef.version_declared


def test_read_non_strict_ignores_unknown_and_keeps_last_duplicate() -> None:
    text = ('{"activation_encodings": {"a": [{"bitwidth": 8, "note": "x"}],\n'
            ' "a": [{"bitwidth": 16}]}}')
    with pytest.raises(QuantspecError):
        E.read_file(text)
    ef = E.read_file(text, strict=False)
    assert [(e.name, e.bitwidth) for e in ef.entries] == [("a", 16)]
    across = ('{"activation_encodings": {"a": [{"bitwidth": 8}], "b": [{"bitwidth": 8}]},\n'
              ' "param_encodings": {"a": [{"bitwidth": 4}]}}')
    ef = E.read_file(across, strict=False)
    assert [(e.name, e.kind, e.bitwidth) for e in ef.entries] == [("b", "activation", 8),
                                                                  ("a", "param", 4)]
    assert E.read_file(E.dumps(ef, "0.6.1")).by_name()["a"].bitwidth == 4


# ---------------------------------------------------------------------------------------------
# IR mapping
# ---------------------------------------------------------------------------------------------


def settings_of(profile: ir.Profile, name: str) -> dict[str, Any]:
    (rule,) = [r for r in profile.rules if r.selector.names == (name,)]
    return {k: v.value for k, v in rule.settings.items()}


def test_ir_rules() -> None:
    text = fixture("small_v1.0.0.encodings")
    profile = E.read(text, "small.encodings")
    x = settings_of(profile, "x")
    s = 0.01234
    assert x == {"quantized": True, "dtype": "int", "bits": 8, "symmetric": False,
                 "per_channel": False, "fixed_range": (s * -153.0, s * 102.0)}
    strict = settings_of(profile, "strict_out")
    sc = 0.045763706597756214
    assert strict["strict_symmetric"] is True and strict["unsigned_symmetric"] is False
    assert strict["fixed_range"] == (sc * -127.0, sc * 127.0)
    dw = settings_of(profile, "dw.weight")
    assert dw["per_channel"] is True and "axis" not in dw
    assert dw["symmetric"] is True and dw["unsigned_symmetric"] is True
    assert dw["encodings"] == ((0.0123 * -128.0, 0.0123 * 127.0), (0.0, 0.0045 * 255.0),
                               (1.1920928955078125e-07 * -128.0, 1.1920928955078125e-07 * 127.0))
    assert isinstance(dw["encodings"], tuple) and isinstance(dw["encodings"][0], tuple)
    block = settings_of(profile, "mm.weight")
    assert block["block_size"] == 2 and len(block["encodings"]) == 4
    assert settings_of(profile, "ln_out") == {"quantized": True, "dtype": "float", "bits": 16}
    meta = profile.meta
    assert meta["version"].value == "1.0.0"
    assert meta["quantizer_args"].value["quant_scheme"] == "post_training_tf_enhanced"
    assert meta["excluded_layers"].value == []
    assert set(meta["param_tensors"].value) == {"dw.weight", "q.weight", "mm.weight", "ln.weight"}


def test_ir_spans_point_into_the_file() -> None:
    text = fixture("small_v1.0.0.encodings")
    lines = text.splitlines()
    profile = E.read(text, "small.encodings")
    rule = next(r for r in profile.rules if r.selector.names == ("strict_out",))
    assert rule.span is not None and lines[rule.span.line - 1].strip() == "{"
    bits = rule.settings["bits"].span
    assert bits is not None and bits.file == "small.encodings"
    assert lines[bits.line - 1].strip().startswith('"bw"')
    rng = rule.settings["fixed_range"].span
    assert rng is not None and lines[rng.line - 1].strip().startswith('"scale"')
    assert profile.meta["version"].span is not None


def test_ir_axis_and_signed_from_v2() -> None:
    profile = E.read(fixture("small_v2.0.0.encodings"), "v2")
    assert settings_of(profile, "fc.weight")["axis"] == 1
    assert settings_of(profile, "sym_act")["signed"] is False
    assert settings_of(profile, "conv.weight")["signed"] is True


# ---------------------------------------------------------------------------------------------
# Writing: exact AIMET shapes
# ---------------------------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("version,stem", [("1.0.0", "toy_v1.0.0"), ("0.6.1", "toy_v0.6.1"),
                                          ("2.0.0", "toy_v2.0.0")])
def test_toy_files_byte_exact(version: str, stem: str) -> None:
    """AIMET's export of one toy model in three versions, reproduced from the 1.0.0 file."""
    need_corpus()
    source = (ENC_DIR / "generated_aimet_onnx_2.42.0_toy_v1.0.0.encodings").read_text()
    want = (ENC_DIR / f"generated_aimet_onnx_2.42.0_{stem}.encodings").read_text()
    assert E.dumps(E.read_file(source), version) == want
    assert E.write(E.read(source, "toy"), Report(), version=version) == want


@pytest.mark.corpus
@pytest.mark.parametrize("stem", ["toy_v0.6.1", "toy_v2.0.0"])
def test_toy_files_rewrite_identically(stem: str) -> None:
    need_corpus()
    text = (ENC_DIR / f"generated_aimet_onnx_2.42.0_{stem}.encodings").read_text()
    ef = E.read_file(text)
    assert E.dumps(ef) == text
    assert E.write(E.read(text), Report(), version=ef.version) == text


def per_entry() -> dict[str, Any]:
    return dict(json.loads(
        (ENC_DIR / "generated_aimet_onnx_2.42.0_per_entry_all_versions.json").read_text()))


@pytest.mark.corpus
@pytest.mark.parametrize("entry", ["a_sym_int16", "a_unsigned_sym_relu", "w_strict_sym"])
def test_per_entry_shapes_in_every_version(entry: str) -> None:
    """One entry in 0.6.1 / 1.0.0 / 2.0.0 as AIMET writes it (strict: y_zero_point -1, 0.6.1
    max = 128 * scale; unsigned symmetric: int8 zero point -128)."""
    need_corpus()
    shapes = per_entry()[entry]
    v1 = E.read_file(json.dumps({"version": "1.0.0",
                                 "param_encodings": [dict(shapes["1.0.0"], name=entry)]}))
    v061 = E.read_file(json.dumps({"version": "0.6.1",
                                   "param_encodings": {entry: shapes["0.6.1"]}}))
    v2 = E.read_file(json.dumps({"version": "2.0.0",
                                 "encodings": [dict(shapes["2.0.0"], name=entry)]}))
    assert numbers(v1) == numbers(v061) == numbers(v2)
    for ef in (v1, v061, v2):
        enc = ef.entries[0]
        assert E.entry_dict(enc, "0.6.1") == shapes["0.6.1"]
        assert E.entry_dict(enc, "1.0.0") == dict(shapes["1.0.0"], name=entry)
        assert E.entry_dict(enc, "2.0.0") == dict(shapes["2.0.0"], name=entry)


def test_strict_export_quirks() -> None:
    enc = E.TensorEncoding.from_grid("w", [0.5], [-127.0], 8, symmetric=True, kind="param")
    assert enc.strict and enc.max == [0.5 * 127]
    (legacy,) = E.entry_dict(enc, "0.6.1")
    assert legacy["max"] == 0.5 * 128 and legacy["offset"] == -127.0
    assert E.entry_dict(enc, "2.0.0")["y_zero_point"] == [-1]


def test_writer_format_is_aimets_json_dump() -> None:
    ef = E.read_file(fixture("small_v1.0.0.encodings"))
    text = E.dumps(ef, "1.0.0")
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, indent=4)
    assert not text.endswith("\n")
    assert text == fixture("small_v1.0.0.encodings")


@pytest.mark.parametrize("name", FIXTURE_FILES)
@pytest.mark.parametrize("version", WRITE_VERSIONS)
def test_writer_output_validates_against_schema(name: str, version: str) -> None:
    ef = E.read_file(fixture(name))
    if not holdable(ef, version):
        pytest.skip(f"{name} has entries {version} cannot hold")
    doc = json.loads(E.dumps(ef, version))
    layout = "legacy" if version == "0.6.1" else "1.0.0" if version == "1.0.0" else "2.x"
    jsonschema.Draft202012Validator(E.schema(layout)).validate(doc)


def test_required_fields_per_version() -> None:
    """aimet.md D loader requirements."""
    enc = E.TensorEncoding.from_grid("a", 0.1, -3.0, 8)
    (legacy,) = E.entry_dict(enc, "0.6.1")
    assert {"bitwidth", "dtype", "is_symmetric", "offset"} <= set(legacy)
    assert legacy["is_symmetric"] == "False"
    v1 = E.entry_dict(enc, "1.0.0")
    assert {"bw", "dtype", "enc_type", "is_sym", "offset", "scale"} <= set(v1)
    v2 = E.entry_dict(enc, "2.0.0")
    assert "output_dtype" in v2 and "bw" not in v2
    assert v2 == {"name": "a", "output_dtype": "uint8", "y_scale": 0.1, "y_zero_point": 3}
    f = E.TensorEncoding.float_("f")
    assert E.entry_dict(f, "0.6.1") == [{"bitwidth": 16, "dtype": "float"}]
    assert E.entry_dict(f, "1.0.0") == {"name": "f", "dtype": "FLOAT", "bw": 16,
                                         "enc_type": "PER_TENSOR"}
    assert E.entry_dict(f, "2.0.0") == {"name": "f", "output_dtype": "float16"}


def test_force_activation_as() -> None:
    act = E.TensorEncoding.from_grid("a", 0.25, -128.0, 8, symmetric=True)
    assert E.entry_dict(act, "2.0.0", force_activation_as="unsigned") == {
        "name": "a", "output_dtype": "uint8", "y_scale": 0.25, "y_zero_point": 128}
    assert E.entry_dict(act, "2.0.0") == {"name": "a", "output_dtype": "int8", "y_scale": 0.25}
    param = E.TensorEncoding.from_grid("w", 0.25, -128.0, 8, symmetric=True, kind="param")
    assert E.entry_dict(param, "2.0.0", force_activation_as="unsigned")["output_dtype"] == "int8"


def test_v2_writes_params_first_and_omits_quantizer_args() -> None:
    ef = E.read_file(fixture("small_v0.6.1.encodings"))
    doc = json.loads(E.dumps(ef, "2.0.0"))
    names = [e["name"] for e in doc["encodings"]]
    assert names[:2] == ["conv.bias", "conv.weight"]
    assert "quantizer_args" not in doc and doc["producer"]["package"] == "aimet-onnx"


def test_2x_cannot_keep_strict_on_forced_unsigned_activations() -> None:
    """AIMET's own 2.x export turns a strict int8 activation into uint8 zero point 127; the top
    code is back (max = 128 * scale). Scale and offset survive."""
    ef = E.read_file(fixture("small_v1.0.0.encodings"))
    again = E.read_file(E.dumps(ef, "2.0.0")).by_name()["strict_out"]
    orig = ef.by_name()["strict_out"]
    assert again.scale == orig.scale and again.offset == orig.offset
    assert not again.strict and again.max == [orig.scale[0] * 128]
    kept = E.read_file(E.dumps(ef, "2.0.0", force_activation_as=None)).by_name()["strict_out"]
    assert kept.strict and kept.max == orig.max


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_FILES)
@pytest.mark.parametrize("version", WRITE_VERSIONS)
def test_write_read_round_trip(name: str, version: str) -> None:
    ef = E.read_file(fixture(name), name)
    if not holdable(ef, version):
        with pytest.raises(QuantspecError) as exc:
            E.dumps(ef, version)
        assert exc.value.code == "E138"
        return
    text = E.dumps(ef, version, force_activation_as=None)
    again = E.read_file(text, "again")
    assert again.version == version
    assert numbers(again) == numbers(ef)
    assert E.dumps(again, version, force_activation_as=None) == text  # stable after one pass


def ir_round_trip(text: str, file: str, version: str) -> tuple[E.EncodingFile, E.EncodingFile,
                                                                Report]:
    ef = E.read_file(text, file)
    report = Report()
    out = E.write(E.read(text, file), report, version=version, force_activation_as=None)
    return ef, E.read_file(out, "again"), report


def ir_comparable(ef: E.EncodingFile, version: str) -> dict[str, tuple[Any, ...]]:
    # the IR has no LPBQ; 1.0.0/2.x need a range for int entries (reported W501)
    return {k: v for k, v in numbers(ef).items()
            if ef.by_name()[k].enc_type != "LPBQ"
            and (version == "0.6.1" or v[0] == "float" or v[2])}


@pytest.mark.parametrize("name", FIXTURE_FILES)
@pytest.mark.parametrize("version", ("0.6.1", "1.0.0", "2.0.0"))
def test_read_ir_write_read_is_identity(name: str, version: str) -> None:
    ef = E.read_file(fixture(name))
    if version == "0.6.1" and any(e.enc_type == "PER_BLOCK" for e in ef.entries):
        pytest.skip("0.6.1 has no blockwise encodings")
    ef, again, report = ir_round_trip(fixture(name), name, version)
    want = ir_comparable(ef, version)
    got = {k: v for k, v in numbers(again).items() if k in want}
    assert got == want
    assert all(d.code in ("W501", "W503") for d in report.diagnostics)


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("version", ("0.6.1", "1.0.0", "2.0.0"))
def test_corpus_read_ir_write_read_is_identity(path: Path, version: str) -> None:
    ef, again, report = ir_round_trip(path.read_text("utf-8"), str(path), version)
    assert numbers(again) == numbers(ef)
    assert all(d.code == "W503" for d in report.diagnostics)  # only "axis assumed" notes


def test_ir_round_trip_keeps_meta() -> None:
    text = fixture("small_v0.6.1.encodings")
    out = E.write(E.read(text), Report(), version="0.6.1")
    assert out == text
    again = E.read(out)
    assert again.meta["quantizer_args"] == E.read(text).meta["quantizer_args"]


# ---------------------------------------------------------------------------------------------
# Writing from a profile: what an encodings file cannot hold
# ---------------------------------------------------------------------------------------------


def sp(line: int) -> Span:
    return Span("p.qspec", line, 1)


def st(value: Any, line: int = 0) -> ir.Setting:
    return ir.Setting(value, sp(line) if line else None)


def test_write_reports_what_it_drops() -> None:
    tensor = ir.Selector
    profile = ir.Profile(
        extends=(("aimet/default", sp(1)),),
        rules=(
            ir.Rule(tensor("op", op_types=("Conv",)), {"bits": st(8)}, sp(2)),
            ir.Rule(tensor("defaults", slot="output"), {"bits": st(8)}, sp(3)),
            ir.Rule(tensor("tensor", names=("conv*",)), {"bits": st(8)}, sp(4)),
            ir.Rule(tensor("tensor", names=("off",)), {"quantized": st(False)}, sp(5)),
            ir.Rule(tensor("tensor", names=("b",)), {
                "dtype": st("int"), "bits": st(8), "fixed_range": st((-1.0, 1.0)),
                "symmetric": st(True), "calibration": st(ir.Calibration("minmax"), 7),
            }, sp(6)),
            ir.Rule(tensor("tensor", names=("c",)),
                    {"calibration": st(ir.Calibration("percentile"))}, sp(8)),
            ir.Rule(tensor("tensor", names=("d",)), {"bits": st(8), "fixed_range": st((0.0, None))},
                    sp(9)),
            ir.Rule(tensor("layer", names=("encoder.*",)), {"bits": st(16)}, sp(10)),
        ),
        patterns=(ir.Pattern((("Conv",), ("Relu",)), sp(11)),),
        ties=(ir.Tie("output_to_input", op_types=("Relu",), span=sp(12)),),
        passes=(("matmul_add", sp(13)),),
        calibrate={"method": st("minmax", 14)},
        transforms={"fold_batchnorm": st(True, 15)},
        options=ir.Options({"fusion": st("aimet1", 16)}),
    )
    report = Report()
    text = E.write(profile, report, version="1.0.0")
    doc = json.loads(text)
    assert [e["name"] for e in doc["activation_encodings"]] == ["b"]
    assert doc["activation_encodings"][0]["scale"] == [1 / 127]
    assert doc["activation_encodings"][0]["offset"] == [-128.0]
    found = [(d.code, d.span.line if d.span else None) for d in report.diagnostics]
    assert sorted(found, key=lambda f: f[1] or 0) == [
        ("W501", 1), ("W501", 2), ("W501", 3), ("W501", 4), ("W501", 5), ("W502", 7),
        ("W501", 8), ("W502", 9), ("W501", 9), ("W501", 10), ("W501", 11), ("W501", 12),
        ("W501", 13), ("W501", 14), ("W501", 15), ("W501", 16),
    ]
    assert all(d.severity == "warning" for d in report.diagnostics)
    messages = " | ".join(d.message for d in report.diagnostics)
    assert "op Conv" in messages and "'conv*'" in messages and "calibration" in messages


def test_write_cascade_and_param_slots() -> None:
    rng = st((-1.0, 1.0))
    profile = ir.Profile(rules=(
        ir.Rule(ir.Selector("tensor", names=("a",)), {"bits": st(8), "fixed_range": rng}),
        ir.Rule(ir.Selector("tensor", names=("a",)), {"bits": st(16)}),
        ir.Rule(ir.Selector("tensor", names=("f",)), {"bits": st(4), "fixed_range": rng},
                final=True),
        ir.Rule(ir.Selector("tensor", names=("f",)), {"bits": st(8)}),
        ir.Rule(ir.Selector("tensor", names=("w",), slot="weight"),
                {"bits": st(8), "fixed_range": rng, "symmetric": st(True)}),
    ))
    doc = json.loads(E.write(profile, Report(), version="1.0.0"))
    acts = {e["name"]: e for e in doc["activation_encodings"]}
    assert acts["a"]["bw"] == 16 and acts["f"]["bw"] == 4
    assert [e["name"] for e in doc["param_encodings"]] == ["w"]


def test_write_per_channel_and_unsigned_symmetric_from_settings() -> None:
    profile = ir.Profile(rules=(
        ir.Rule(ir.Selector("tensor", names=("w",), slot="weight"), {
            "dtype": st("int"), "bits": st(8), "symmetric": st(True),
            "unsigned_symmetric": st(True), "per_channel": st(True), "axis": st(1),
            "encodings": st(((-1.0, 0.5), (0.0, 2.0))),
        }),
    ))
    report = Report()
    doc = json.loads(E.write(profile, report, version="2.0.0"))
    (entry,) = doc["encodings"]
    # aimet.md C.1: symmetric [-1, 0.5] -> scale 1/128; unsigned [0, 2] -> asymmetric math
    assert entry["y_scale"] == [1 / 128, 2 / 255] and entry["axis"] == 1
    assert entry["output_dtype"] == "int8" and entry["y_zero_point"] == [0, -128]
    assert not report.diagnostics


def test_write_bits_only_entry_in_0_6_1() -> None:
    profile = ir.Profile(rules=(
        ir.Rule(ir.Selector("tensor", names=("a",)), {"dtype": st("int"), "bits": st(16)}),
        ir.Rule(ir.Selector("tensor", names=("f",)), {"dtype": st("float")}),
    ))
    doc = json.loads(E.write(profile, Report(), version="0.6.1"))
    assert doc["activation_encodings"] == {"a": [{"bitwidth": 16, "dtype": "int"}],
                                           "f": [{"bitwidth": 16, "dtype": "float"}]}
    report = Report()
    doc = json.loads(E.write(profile, report, version="1.0.0"))
    assert [e["name"] for e in doc["activation_encodings"]] == ["f"]
    # 'a' has no range (dropped); 'f' has no bit width (fp16 assumed)
    assert [(d.code, d.message.split("'")[1]) for d in report.diagnostics] == [
        ("W501", "a"), ("W503", "f")]


def test_write_per_channel_flag_without_encodings() -> None:
    profile = ir.Profile(rules=(
        ir.Rule(ir.Selector("tensor", names=("w",)), {
            "bits": st(8), "per_channel": st(True), "fixed_range": st((-1.0, 1.0))}),
    ))
    report = Report()
    doc = json.loads(E.write(profile, report, version="1.0.0"))
    assert doc["activation_encodings"][0]["enc_type"] == "PER_TENSOR"
    assert [d.code for d in report.diagnostics] == ["W502"]


def test_write_rejects_unknown_version() -> None:
    with pytest.raises(QuantspecError) as exc:
        E.write(ir.Profile(), Report(), version="0.4.0")
    assert exc.value.code == "E131"


# ---------------------------------------------------------------------------------------------
# Export helper and conventions
# ---------------------------------------------------------------------------------------------


def test_encodings_file_from_entries() -> None:
    entries = [
        E.TensorEncoding.from_min_max("x", -1.0, 0.5, 8),
        E.TensorEncoding.from_min_max("w", [-1.0, -0.25], [1.0, 0.25], 8, symmetric=True,
                                      strict=True, kind="param", axis=0),
        E.TensorEncoding.from_grid("y", 0.1, 0.0, 16),
        E.TensorEncoding.float_("z", 16),
    ]
    args = {"activation_bitwidth": 8, "param_bitwidth": 8, "dtype": "int", "is_symmetric": True,
            "per_channel_quantization": True, "quant_scheme": "min_max"}
    for version in WRITE_VERSIONS:
        text = E.encodings_file_from_entries(entries, version, quantizer_args=args)
        ef = E.read_file(text)
        assert {e.name for e in ef.entries} == {"x", "w", "y", "z"}
        w = ef.by_name()["w"]
        assert w.offset == [-127.0, -127.0] and w.scale == [1 / 127, 0.25 / 127]
        if version in ("0.6.1", "1.0.0"):
            assert ef.quantizer_args == args and w.kind == "param"


def test_check_entry_rejects_bad_entries() -> None:
    bad = E.TensorEncoding.from_grid("a", 0.1, -3.0, 8)
    bad.scale = [-0.1]
    with pytest.raises(QuantspecError) as exc:
        E.encodings_file_from_entries([bad])
    assert exc.value.code == "E138"
    dup = [E.TensorEncoding.float_("a"), E.TensorEncoding.float_("a")]
    with pytest.raises(QuantspecError) as exc:
        E.encodings_file_from_entries(dup)
    assert exc.value.code == "E136"
    nan = E.TensorEncoding.from_grid("a", 0.1, -3.0, 8)
    nan.scale = [math.nan]
    with pytest.raises(QuantspecError):
        E.encodings_file_from_entries([nan])


@pytest.mark.parametrize("bits", [4, 8, 16, 32])
@pytest.mark.parametrize("offset", [0, -1, -7, "half", "strict"])
def test_zero_point_conventions(bits: int, offset: Any) -> None:
    half = 2 ** (bits - 1)
    off = float({"half": -half, "strict": -(half - 1)}.get(offset, offset))
    for signed in (False, True):
        zp = E.zero_point(off, bits, signed)
        assert E.offset_from_zero_point(zp, bits, signed) == off
    assert E.zero_point(-float(half), bits, True) == 0  # symmetric -> signed zp 0
    assert E.zero_point(-float(half - 1), bits, True) == -1  # strict -> -1 (aimet.md D)
    assert E.zero_point(0.0, bits, True) == -half  # unsigned symmetric
    assert E.signed_offset(-float(half), bits) == 0
    assert E.qnn_offset(-12.0) == 12.0


@pytest.mark.parametrize(
    "lo,hi,scale,mn,mx",
    [
        (-1.8, 0.5, 0.009020, -1.803922, 0.496078),  # spec 004 worked example
        (-5.1, 5.1, 0.04, -5.12, 5.08),
        (5.0, 10.0, 10 / 255, 0.0, 10.0),  # strictly positive: min set to 0
        (-20.0, -6.0, 20 / 255, -20.0, 0.0),  # strictly negative: max set to 0
    ],
)
def test_qnn_encoding_spec004_examples(lo: float, hi: float, scale: float, mn: float,
                                       mx: float) -> None:
    s, o = E.qnn_encoding(lo, hi, 8)
    assert s == pytest.approx(scale, abs=5e-6)
    assert s * o == pytest.approx(mn, abs=5e-6) and s * (o + 255) == pytest.approx(mx, abs=5e-6)
    if lo == -1.8:
        assert o == -200.0


def test_compute_encoding_examples() -> None:
    """aimet.md C.1 consequences."""
    assert E.compute_encoding(-1.0, 0.5, 8, symmetric=True) == (1 / 128, -128.0)
    assert E.compute_encoding(0.0, 0.0, 8, symmetric=True) == (2.0**-23, -128.0)
    assert E.compute_encoding(-1.0, 1.0, 8, symmetric=True, strict=True) == (1 / 127, -127.0)
    assert E.compute_encoding(0.0, 1.0, 8) == (1 / 255, 0.0)
    assert E.compute_encoding(0.0, 2.0, 8, symmetric=True, unsigned=True) == (2 / 255, 0.0)


@pytest.mark.corpus
def test_compute_encoding_matches_aimet_golden_vectors() -> None:
    need_corpus()
    cases = json.loads(GOLDEN.read_text())["min_max"]
    assert len(cases) == 380
    for c in cases:
        sym, strict = c["is_symmetric"], c["strict_symmetric"]
        s, o = E.compute_encoding(c["data_min"], c["data_max"], c["bw"], symmetric=sym,
                                  strict=strict, unsigned=c["unsigned_symmetric"])
        mn, mx = E.grid_min_max(s, o, c["bw"], sym and strict)
        want = c["expected"]
        assert (s, o, mn, mx) == (want["scale"], want["offset"], want["min"], want["max"]), c


def test_compute_encoding_reproduces_grids_exactly() -> None:
    """A range read from a file re-encodes to the file's scale bit for bit (the ulp snap)."""
    for bits, sym, strict in ((8, True, False), (8, True, True), (8, False, False),
                              (16, False, False), (4, True, False)):
        half = 2 ** (bits - 1)
        offsets = [-half, -(half - 1)] if sym else [0, -1, -100 % half - half, -(2**bits - 1)]
        for scale in (0.1, 0.0028508434614797277, 1.1920928955078125e-07, 0.00025354719929612546,
                      3.3e-05, 7.0):
            for off in offsets:
                if sym and (off == -(half - 1)) != strict:
                    continue
                mn, mx = E.grid_min_max(scale, float(off), bits, strict)
                got = E.compute_encoding(mn, mx, bits, symmetric=sym, strict=strict)
                assert got == (scale, float(off)), (bits, sym, strict, scale, off)


# ---------------------------------------------------------------------------------------------
# Errors: code and position
# ---------------------------------------------------------------------------------------------

V1_ENTRY = ('{"version": "1.0.0",\n "activation_encodings": [\n'
            '  {"name": "a", "dtype": "INT", "bw": %s, "enc_type": "PER_TENSOR", "is_sym": false,\n'
            '   "scale": %s, "offset": %s}\n ]}')
V2_ENTRY = '{"version": "2.0.0", "encodings": [\n  {"name": "a", %s}\n]}'
LEGACY = '{"activation_encodings": {\n  "a": [%s]\n }, "param_encodings": {}}'

BAD = [
    # id, text, code, line, col
    ("bw-string", V1_ENTRY % ('"8"', "[0.1]", "[0.0]"), "E130", 3, 39),
    ("scale-not-list", V1_ENTRY % ("8", "0.1", "[0.0]"), "E130", 4, 13),
    ("offset-positive", V1_ENTRY % ("8", "[0.1]", "[12.0]"), "E133", 4, 31),
    ("offset-fraction", V1_ENTRY % ("8", "[0.1]", "[-1.5]"), "E133", 4, 31),
    ("scale-negative", V1_ENTRY % ("8", "[-0.1]", "[0.0]"), "E134", 4, 14),
    ("scale-zero", V1_ENTRY % ("8", "[0.0]", "[0.0]"), "E134", 4, 14),
    ("scale-inf", V1_ENTRY % ("8", "[1e999]", "[0.0]"), "E134", 4, 14),
    ("length-mismatch", V1_ENTRY % ("8", "[0.1]", "[0.0, 0.0]"), "E135", 4, 30),
    ("per-tensor-two-scales", V1_ENTRY % ("8", "[0.1, 0.2]", "[0.0, 0.0]"), "E135", 4, 13),
    ("bw-out-of-range", V1_ENTRY % ("1", "[0.1]", "[0.0]"), "E132", 3, 39),
    ("v1-missing-is-sym",
     '{"version": "1.0.0", "param_encodings": [\n {"name": "w", "dtype": "INT", "bw": 8,'
     ' "enc_type": "PER_TENSOR", "scale": [0.1], "offset": [0.0]}]}', "E130", 2, 2),
    ("v1-lowercase-dtype",
     '{"version": "1.0.0", "param_encodings": [\n {"name": "w", "dtype": "int", "bw": 8,'
     ' "enc_type": "PER_TENSOR"}]}', "E130", 2, 25),
    ("legacy-typo", LEGACY % '{"bitwidth": 8, "is_symetric": "True"}', "E130", 2, 25),
    ("legacy-bw", LEGACY % '{"bw": 8, "min": -1.0, "max": 1.0}', "E130", 2, 10),
    ("legacy-not-list", '{"activation_encodings": {\n  "a": {"bitwidth": 8}}}', "E130", 2, 8),
    ("legacy-empty-list", LEGACY % "", "E130", 2, 8),
    ("legacy-min-only", LEGACY % '{"bitwidth": 8, "min": -1.0}', "E137", 2, 32),
    ("legacy-scale-only", LEGACY % '{"bitwidth": 8, "scale": 0.1}', "E137", 2, 34),
    ("legacy-min-gt-max", LEGACY % '{"bitwidth": 8, "min": 1.0, "max": -1.0}', "E134", 2, 44),
    ("legacy-offset-range", LEGACY % '{"bitwidth": 4, "scale": 0.1, "offset": -17}', "E133",
     2, 49),
    ("legacy-bool-string", LEGACY % '{"bitwidth": 8, "is_symmetric": "yes"}', "E130", 2, 41),
    ("legacy-channel-mix", '{"param_encodings": {\n  "w": [{"bitwidth": 8},\n'
     '        {"bitwidth": 8, "dtype": "float"}]}}', "E135", 3, 34),
    ("legacy-nan", LEGACY % '{"bitwidth": 8, "min": NaN, "max": 1.0}', "E110", 2, 32),
    ("truncated", '{"activation_encodings": {\n  "a": [{"bitwidth": 8, "min": -1.0',
     "E110", 2, 36),
    ("trailing-comma", LEGACY % '{"bitwidth": 8,}', "E110", 2, 24),
    ("v2-bw", V2_ENTRY % '"output_dtype": "uint8", "bw": 8, "y_scale": 0.1', "E130", 2, 42),
    ("v2-dtype", V2_ENTRY % '"output_dtype": "unit8", "y_scale": 0.1', "E132", 2, 33),
    ("v2-int64", V2_ENTRY % '"output_dtype": "int64", "y_scale": 0.1', "E132", 2, 33),
    ("v2-no-scale", V2_ENTRY % '"output_dtype": "uint8"', "E130", 2, 3),
    ("v2-zp-range", V2_ENTRY % '"output_dtype": "int8", "y_scale": [0.1, 0.2], '
     '"y_zero_point": [0, 200]', "E133", 2, 84),
    ("v2-zp-negative-uint", V2_ENTRY % '"output_dtype": "uint8", "y_scale": 0.1, '
     '"y_zero_point": -1', "E133", 2, 74),
    ("v2-zp-fraction", V2_ENTRY % '"output_dtype": "uint8", "y_scale": 0.1, '
     '"y_zero_point": 3.5', "E130", 2, 74),
    ("v2-zp-shape", V2_ENTRY % '"output_dtype": "int8", "y_scale": [0.1, 0.2], '
     '"y_zero_point": 0', "E135", 2, 80),
    ("v2-scale-string", V2_ENTRY % '"output_dtype": "uint8", "y_scale": "0.1"', "E130", 2, 53),
    ("v2-scale-negative", V2_ENTRY % '"output_dtype": "uint8", "y_scale": [0.1, -0.1]', "E134",
     2, 59),
    ("v2-ragged", V2_ENTRY % '"output_dtype": "int4", "y_scale": [[0.1], [0.1, 0.2]], '
     '"block_size": 2', "E135", 2, 60),
    ("version-unknown", '{"version": "1.1.0", "encodings": []}', "E131", 1, 13),
    ("version-number", '{"version": 1.0, "encodings": []}', "E130", 1, 13),
    ("version-layout", '{"version": "1.0.0",\n "activation_encodings": {"a": [{"bitwidth": 8}]}}',
     "E131", 2, 2),
    ("not-object", "[1, 2]", "E130", 1, 1),
    ("no-sections", '{"version": "1.0.0"}', "E131", 1, 1),
    ("top-typo", '{"version": "1.0.0", "activation_encodings": [], "param_encoding": []}',
     "E130", 1, 50),
    ("duplicate-entry", '{"version": "1.0.0", "activation_encodings": [\n'
     '  {"name": "a", "dtype": "FLOAT", "bw": 16, "enc_type": "PER_TENSOR"},\n'
     '  {"name": "a", "dtype": "FLOAT", "bw": 16, "enc_type": "PER_TENSOR"}]}', "E136", 3, 3),
    ("duplicate-key", '{"activation_encodings": {\n  "a": [{"bitwidth": 8}],\n'
     '  "a": [{"bitwidth": 16}]}}', "E136", 3, 3),
    ("duplicate-across-sections", '{"activation_encodings": {"a": [{"bitwidth": 8}]},\n'
     ' "param_encodings": {"a": [{"bitwidth": 8}]}}', "E136", 2, 22),
]


@pytest.mark.parametrize("text,code,line,col", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs(text: str, code: str, line: int, col: int) -> None:
    with pytest.raises(QuantspecError) as exc:
        E.read(text, "bad.encodings")
    err = exc.value
    assert (err.code, err.span.line if err.span else None, err.span.col if err.span else None) \
        == (code, line, col), err.diagnostic.render(text)
    assert err.span is not None and err.span.file == "bad.encodings"


def test_error_hints() -> None:
    def hint(text: str) -> str:
        with pytest.raises(QuantspecError) as exc:
            E.read(text, "h")
        return exc.value.diagnostic.hint

    assert "is_symmetric" in hint(LEGACY % '{"bitwidth": 8, "is_symetric": "True"}')
    assert "bitwidth" in hint(LEGACY % '{"bw": 8}')
    assert "'INT'" in hint('{"version": "1.0.0", "param_encodings": [{"name": "w", '
                           '"dtype": "int", "bw": 8, "enc_type": "PER_TENSOR"}]}')
    assert "uint8" in hint(V2_ENTRY % '"output_dtype": "unit8", "y_scale": 0.1')
    assert "output_dtype" in hint(V2_ENTRY % '"output_dtype": "uint8", "bw": 8, "y_scale": 0.1')
    assert "param_encodings" in hint('{"activation_encodings": [], "param_encoding": []}')
    assert "JSON true" in hint('{"version": "1.0.0", "param_encodings": [{"name": "w", '
                               '"dtype": "INT", "bw": 8, "enc_type": "PER_TENSOR", '
                               '"is_sym": "True", "scale": [0.1], "offset": [-128.0]}]}')
    assert "quotes" in hint(V1_ENTRY % ('"8"', "[0.1]", "[0.0]"))
