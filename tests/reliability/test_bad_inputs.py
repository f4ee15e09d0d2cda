"""Bad inputs for every front end: one QuantspecError with a code, the right position, a hint.

Each case is read the way the CLI reads a file (``lang.load.load`` for profiles with extends
resolved, ``Graph.load`` / ``onnx_io.load_model`` for models, ``runtime.data`` for calibration
data) and is then run through ``quantspec.cli.main`` too: exit 1, the code and position on
stderr, never "internal error".

A position is either ``(line, col)``, or a marker: the expected place is where the marker's
text first occurs in the input (``at("True")``), optionally shifted by a number of characters.
For models and data the position is a node, tensor or input named in the span or message.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from models import conv_relu_add
from onnx import TensorProto, helper

from quantspec import cli, jsonpos
from quantspec.errors import QuantspecError

# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class At:
    marker: str
    shift: int = 0
    nth: int = 1


def at(marker: str, shift: int = 0, nth: int = 1) -> At:
    return At(marker, shift, nth)


@dataclass(frozen=True)
class Case:
    id: str
    frontend: str  # qspec | aimet | vitis | encodings | amct | onnx | data
    input: str | bytes | Callable[[Path], Path]  # text, raw bytes, or a builder of files
    code: str
    where: tuple[int, int] | At | str  # (line, col), a marker, or a name the position holds
    path: str = ""  # the JSON / proto field path the span must carry, when it has one
    hint: str = ""  # a substring of the hint, when the case is about the hint


SUFFIX = {"qspec": ".qspec", "aimet": ".json", "vitis": ".json", "encodings": ".encodings",
          "amct": ".cfg"}


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


# --- .qspec ----------------------------------------------------------------------------------

QSPEC = [
    Case("q-unknown-flag", "qspec", lines("defaults {", "  weight { int8 symetric }", "}"),
         "E006", (2, 17), hint="did you mean 'symmetric'?"),
    Case("q-unknown-slot", "qspec", lines("op Conv {", "  wieght { int8 }", "}"), "E004", (2, 3),
         hint="did you mean 'weight'?"),
    Case("q-unknown-setting", "qspec", lines("op Relu {", "  output { bitz: 8 }", "}"), "E003",
         (2, 12), hint="did you mean 'bits'?"),
    Case("q-bits-range", "qspec", "op Relu { output { bits: 65 } }", "E005", (1, 26)),
    Case("q-bits-flag-range", "qspec", "op Relu { output { int1000 } }", "E005", (1, 20)),
    Case("q-bits-10e100", "qspec", "op Relu { output { bits: 1" + "0" * 100 + " } }", "E015",
         (1, 26)),
    Case("q-5000-digits", "qspec", "op Relu { output { range: [0, " + "9" * 5000 + "] } }",
         "E015", (1, 31)),
    Case("q-deep-list", "qspec", lines("op Relu {", "  output { range: " + "[" * 9 + "0" + "]" * 9
                                       + " }", "}"), "E013", (2, 27)),
    Case("q-long-fuse", "qspec", "fuse " + " -> ".join(["Conv"] * 33), "E008", (1, 1)),
    Case("q-long-name", "qspec", "op " + "A" * 5000 + " { output { on } }", "E014", (1, 4)),
    Case("q-long-string", "qspec", 'layer "' + "x" * 5000 + '" { output { on } }', "E014",
         (1, 7)),
    # tokens: meta { a : [ then 1 , 1 , ...: the 20001st is the ',' at list offset 19995
    Case("q-too-many-tokens", "qspec", "meta { a: [" + ",".join(["1"] * 20_000) + "] }", "E011",
         (1, 11 + 19_995 + 1)),
    Case("q-too-many-statements", "qspec", "passes matmul_add\n" * 2001, "E012", (2001, 1)),
    Case("q-file-too-big", "qspec", "# " + "x" * (1 << 20) + "\n", "E010", (1, 1)),
    Case("q-unknown-option", "qspec", lines("options {", "  fusion: aimet3", "}"), "E007",
         (2, 11)),
    Case("q-unknown-tie", "qspec", "tie outputs_to_input: Relu", "E009", (1, 5),
         hint="did you mean 'output_to_input'?"),
    Case("q-unknown-pass", "qspec", "passes matmul_add, nope", "E009", at("nope")),
    Case("q-bad-character", "qspec", lines("op Relu { output { int8 } }", "$"), "E002", (2, 1)),
    Case("q-tensor-slot", "qspec", lines('tensor "t" {', "  output { on }", "}"), "E004", (2, 3)),
    Case("q-model-middle", "qspec", "model middle { on }", "E001", at("middle")),
    Case("q-range-reversed", "qspec", "op Relu { output { range: [2, 1] } }", "E005", at("[2")),
    Case("q-unknown-method", "qspec", "calibrate { method: percentil(99) }", "E005",
         at("percentil"), hint="did you mean 'percentile'?"),
    Case("q-like-weight", "qspec", "op Add { input { bits: like weight } }", "E005", at("like")),
    Case("q-bad-utf8", "qspec", b"op Relu {\n  output { \xff }\n}\n", "E103", (2, 12)),
    Case("q-index-on-weight", "qspec", "op Conv { weight 1 { int8 } }", "E004", at("weight")),
    Case("q-unterminated-string", "qspec", 'layer "abc { on }', "E002", (1, 7)),
    # end of file: the position is the last token, the '}' that left a block open
    Case("q-unclosed-block", "qspec", lines("defaults {", "  output { int8 }"), "E001", (2, 17),
         hint="not closed"),
    Case("q-range-and-min", "qspec", "op Relu { output { range: [0, 1] min: 0 } }", "E005",
         at("0 }")),
    Case("q-extends-unknown-stdlib", "qspec", 'profile "p" extends "ort/nope"', "E104",
         at('"ort/nope"'), hint="quantspec profiles"),
    Case("q-extends-stdlib-traversal", "qspec", 'extends "ort/../../../../etc/passwd"', "E104",
         (1, 9)),
    Case("q-extends-escapes", "qspec", 'extends "../outside.qspec"', "E106", (1, 9)),
    Case("q-extends-absolute", "qspec", 'extends "/etc/hostname.qspec"', "E106", (1, 9)),
    Case("q-extends-missing", "qspec", lines("# base", 'extends "./base.qspec"'), "E104",
         (2, 9)),
    Case("q-extends-itself", "qspec", lines('profile "p"', 'extends "./p.qspec"'), "E105",
         (2, 9)),
]

# --- AIMET quantsim config -------------------------------------------------------------------

AIMET_BASE = lines(
    "{",
    '  "defaults": {',
    '    "ops": {"is_output_quantized": "True"},',
    '    "params": {"is_quantized": "True"}',
    "  },",
    '  "params": {},',
    '  "op_type": {},',
    '  "supergroups": [],',
    '  "model_input": {"is_input_quantized": "True"},',
    '  "model_output": {}',
    "}",
)


def aimet(old: str, new: str) -> str:
    assert old in AIMET_BASE
    return AIMET_BASE.replace(old, new, 1)


KERNEL = ('"supported_kernels": [{"activation": {"bitwidth": 8, "dtype": "float"}, '
          '"param": {"bitwidth": 16, "dtype": "float"}}]')
AIMET = [
    Case("a-trailing-comma", "aimet", aimet('"model_output": {}\n}', '"model_output": {},\n}'),
         "E110", (11, 1), hint="no trailing comma"),
    Case("a-python-true", "aimet", aimet('"is_input_quantized": "True"',
                                         '"is_input_quantized": True'),
         "E110", at("True}"), hint="JSON spells it true"),
    Case("a-missing-section", "aimet", aimet(',\n  "model_output": {}', ""), "E131", (1, 1),
         hint="all six sections"),
    Case("a-unknown-key", "aimet", aimet('"params": {},', '"params": {}, "extra": 1,'), "E131",
         at('"extra"'), path="$.extra"),
    Case("a-bool-not-string", "aimet", aimet('"is_input_quantized": "True"',
                                             '"is_input_quantized": true'), "E131", at("true"),
         path="$.model_input.is_input_quantized", hint='strings "True" and "False"'),
    Case("a-model-input-false", "aimet", aimet('"is_input_quantized": "True"',
                                               '"is_input_quantized": "False"'), "E132",
         at('"is_input_quantized": "False"')),
    Case("a-float-kernel-8", "aimet", aimet('"params": {"is_quantized": "True"}',
                                            '"params": {"is_quantized": "True"},\n    ' + KERNEL),
         "E132", at('"bitwidth": 8'), path="$.defaults.supported_kernels[0].activation.bitwidth"),
    Case("a-supergroup-no-op-list", "aimet", aimet('"supergroups": []', '"supergroups": [{}]'),
         "E132", at("{}]"), path="$.supergroups[0]"),
    Case("a-op-list-too-short", "aimet", aimet('"supergroups": []',
                                               '"supergroups": [{"op_list": ["Conv"]}]'),
         "E131", at('["Conv"]'), path="$.supergroups[0].op_list"),
    Case("a-nested-too-deep", "aimet", aimet('"op_type": {}', '"op_type": ' + "[" * 300),
         "E111", at("[", shift=jsonpos.MAX_DEPTH)),  # the first '[' is depth 1
    Case("a-number-too-long", "aimet", aimet('"model_output": {}',
                                             '"model_output": {"x": 1' + "0" * 100 + "}"),
         "E112", at("1000")),
    Case("a-string-too-long", "aimet", aimet('"op_type": {}', '"op_type": {"' + "x" * 70_000
                                             + '": {}}'), "E113", at('"xxx')),
    Case("a-not-an-object", "aimet", "[1, 2]\n", "E131", (1, 1)),
    Case("a-bad-escape", "aimet", aimet('"op_type": {}', '"op_type": {"Co\\qnv": {}}'), "E110",
         at("\\q")),
    Case("a-nan", "aimet", aimet('"model_output": {}', '"model_output": {"x": NaN}'), "E110",
         at("NaN")),
    Case("a-empty-file", "aimet", "", "E110", (1, 1)),
    Case("a-bad-utf8", "aimet", AIMET_BASE.replace('"op_type"', '"op_\xe9type"').encode("latin-1"),
         "E103", at("\xe9")),
]

# --- Vitis AI vai_q_pytorch config ------------------------------------------------------------

VITIS_BASE = lines(
    "{",
    '  "target_device": "CPU",',
    '  "overall_quantize_config": {',
    '    "bit_width": 8',
    "  }",
    "}",
)


def vitis(old: str, new: str) -> str:
    assert old in VITIS_BASE
    return VITIS_BASE.replace(old, new, 1)


VITIS = [
    Case("v-unknown-key", "vitis", vitis('"target_device": "CPU",', '"target_device": "CPU", '
                                         '"bogus": 1,'), "E140", at('"bogus"'), path="$.bogus"),
    Case("v-typo-key", "vitis", vitis('"bit_width": 8', '"bit_width": 8, "symetry": true'),
         "E140", at('"symetry"'), hint="did you mean 'symmetry'?"),
    Case("v-device", "vitis", vitis('"CPU"', '"TPU"'), "E142", at('"TPU"'),
         path="$.target_device"),
    Case("v-bits-99", "vitis", vitis('"bit_width": 8', '"bit_width": 99'), "E142", at("99")),
    Case("v-bits-10e30", "vitis", vitis('"bit_width": 8', '"bit_width": 1' + "0" * 30), "E142",
         at("1000")),
    Case("v-bits-10e100", "vitis", vitis('"bit_width": 8', '"bit_width": 1' + "0" * 100), "E112",
         at("1000")),
    Case("v-bits-string", "vitis", vitis('"bit_width": 8', '"bit_width": "8"'), "E142",
         at('"8"')),
    Case("v-power-of-two", "vitis", vitis('"bit_width": 8', '"scale_type": "power_of_two"'),
         "E142", at('"power_of_two"'), hint="poweroftwo"),
    Case("v-method", "vitis", vitis('"bit_width": 8', '"method": "nope"'), "E142",
         at('"nope"'), path="$.overall_quantize_config.method"),
    Case("v-not-object", "vitis", "[1]\n", "E141", (1, 1)),
    Case("v-section-type", "vitis", vitis('{\n    "bit_width": 8\n  }', "[]"), "E141", at("[]")),
    Case("v-layer-needs-type", "vitis", vitis('"overall_quantize_config": {\n    "bit_width": 8\n'
                                              '  }', '"layer_quantize_config": [{}]'), "E141",
         at("{}]"), path="$.layer_quantize_config[0]"),
    Case("v-dpu-narrow-range", "vitis", vitis('"CPU"', '"DPU"').replace(
        '"bit_width": 8', '"narrow_range": true'), "E143", at('"narrow_range"')),
]

# --- encodings JSON ---------------------------------------------------------------------------

ENC_BASE = lines(
    "{",
    '  "version": "1.0.0",',
    '  "activation_encodings": [',
    '    {"name": "x", "dtype": "INT", "enc_type": "PER_TENSOR", "bw": 8, "is_sym": false,',
    '     "scale": [0.01], "offset": [-128]},',
    '    {"name": "y", "dtype": "INT", "enc_type": "PER_TENSOR", "bw": 8, "is_sym": false,',
    '     "scale": [0.02], "offset": [-10]}',
    "  ],",
    '  "param_encodings": []',
    "}",
)


def enc(old: str, new: str) -> str:
    assert old in ENC_BASE
    return ENC_BASE.replace(old, new, 1)


LEGACY = '{\n  "activation_encodings": {\n    "x": [%s]\n  },\n  "param_encodings": {}\n}\n'
ENCODINGS = [
    Case("e-not-object", "encodings", "[1]\n", "E130", (1, 1)),
    Case("e-negative-scale", "encodings", enc("[0.01]", "[-0.01]"), "E134", at("-0.01"),
         path="$.activation_encodings[0].scale[0]"),
    Case("e-bits-10e30", "encodings", enc('"bw": 8', '"bw": 1' + "0" * 30), "E132", at("1000")),
    Case("e-bits-10e100", "encodings", enc('"bw": 8', '"bw": 1' + "0" * 100), "E112",
         at("1000")),
    Case("e-offset-range", "encodings", enc("[-128]", "[1000000]"), "E133", at("1000000")),
    Case("e-duplicate-tensor", "encodings", enc('"name": "y"', '"name": "x"'), "E136",
         (6, 5), path="$.activation_encodings[1]"),
    Case("e-per-block-no-size", "encodings", enc('"PER_TENSOR"', '"PER_BLOCK"'), "E130", (4, 5)),
    Case("e-dtype", "encodings", enc('"INT"', '"DOUBLE"'), "E130", at('"DOUBLE"')),
    Case("e-length-mismatch", "encodings", enc("[0.01]", "[0.01, 0.02]"), "E135",
         at("[-128]")),
    Case("e-unknown-field", "encodings", enc('"name": "x",', '"name": "x", "bogus": 1,'), "E130",
         at('"bogus"')),
    Case("e-missing-name", "encodings", enc('"name": "x", ', ""), "E130", (4, 5)),
    Case("e-version", "encodings", enc('"1.0.0"', '"9.9.9"'), "E131", at('"9.9.9"'),
         path="$.version"),
    Case("e-legacy-min-over-max", "encodings", LEGACY % '{"bitwidth": 8, "min": 2.0, "max": 1.0}',
         "E134", at("1.0}"), path="$.activation_encodings.x[0].max"),
    Case("e-legacy-scale-no-offset", "encodings", LEGACY % '{"bitwidth": 8, "scale": 0.1}',
         "E137", at("0.1")),
    Case("e-legacy-string-min", "encodings", LEGACY % '{"bitwidth": 8, "min": "a", "max": 1.0}',
         "E130", at('"a"')),
    Case("e-v2-zero-point", "encodings", lines(
        '{"version": "2.0.0", "encodings": [',
        '  {"name": "a", "output_dtype": "int8", "y_scale": 0.1, "y_zero_point": 999}]}'),
         "E133", at("999")),
]

# --- AMCT prototext ---------------------------------------------------------------------------

AMCT = [
    Case("m-unknown-field", "amct", lines("batch_num: 2", "batch_nm: 1"), "E151", (2, 1),
         hint="did you mean 'batch_num'?"),
    Case("m-out-of-range", "amct", lines("batch_num: 99999999999"), "E150", (1, 12)),
    Case("m-negative-index", "amct", lines("tensor_quantize {", '  layer_name: "a"',
                                           "  input_index: -1", "}"), "E150", (3, 16)),
    # end of file: protobuf points at the last token read
    Case("m-unbalanced", "amct", lines("override_layer_types {", '  layer_type: "Conv"'), "E150",
         at('"Conv"')),
    Case("m-json", "amct", '{"batch_num": 1}\n', "E150", (1, 1), hint="this is JSON"),
    Case("m-too-big", "amct", "#" + "x" * 300_000 + "\n", "E114", (1, 1)),
    Case("m-duplicate-skip", "amct", lines('skip_layers: "a"', 'skip_layers: "a"'), "E153",
         (2, 14), path="skip_layers[1]"),
    Case("m-unknown-layer-type", "amct", lines(
        "override_layer_types {", '  layer_type: "NoSuchLayer"',
        "  calibration_config { ifmr_quantize { dst_type: INT16 } }", "}"), "E154", (2, 15)),
    Case("m-bins", "amct", lines(
        "override_layer_types {", '  layer_type: "Conv"',
        "  calibration_config { hfmg_quantize { num_of_bins: 1000 } }", "}"), "E152",
         at("1000"), path="override_layer_types[0].calibration_config.hfmg_quantize.num_of_bins"),
    Case("m-search-step", "amct", lines(
        "common_config {", "  ifmr_quantize {", "    search_range_start: 0.8",
        "    search_range_end: 1.2", "    search_step: 0.5", "  }", "}"), "E152",
         at("0.5"), path="common_config.ifmr_quantize.search_step"),
]

# --- ONNX models ------------------------------------------------------------------------------


def model_file(edit: Callable[[onnx.ModelProto], Any] | None = None,
               raw: bytes | None = None, extra: Callable[[Path], None] | None = None
               ) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        path = d / "model.onnx"
        if raw is not None:
            path.write_bytes(raw)
        else:
            m = conv_relu_add()
            if edit is not None:
                edit(m)
            path.write_bytes(m.SerializeToString())
        if extra is not None:
            extra(d)
        return path

    return build


def external(location: str) -> Callable[[onnx.ModelProto], None]:
    def edit(m: onnx.ModelProto) -> None:
        w = m.graph.initializer[0]  # w1, 4x4x3x3 float
        w.ClearField("raw_data")
        del w.float_data[:]
        w.data_location = TensorProto.EXTERNAL
        e = w.external_data.add()
        e.key, e.value = "location", location

    return edit


def _set(path: str, value: Any) -> Callable[[onnx.ModelProto], None]:
    """``m.graph.<path> = value`` for paths such as ``node[1].input[0]``."""
    def edit(m: onnx.ModelProto) -> None:
        obj: Any = m.graph
        parts = path.split(".")
        for part in parts[:-1]:
            name, _, idx = part.partition("[")
            obj = getattr(obj, name)[int(idx[:-1])] if idx else getattr(obj, name)
        name, _, idx = parts[-1].partition("[")
        if idx:
            getattr(obj, name)[int(idx[:-1])] = value
        else:
            setattr(obj, name, value)

    return edit


def _escape_link(d: Path) -> None:
    (d.parent / "secret.bin").write_bytes(b"\0" * 1024)
    (d / "link.bin").symlink_to(d.parent / "secret.bin")


def _add_output(m: onnx.ModelProto) -> None:
    m.graph.output.append(helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1]))


ONNX = [
    Case("o-not-found", "onnx", lambda d: d / "missing.onnx", "E301", "missing.onnx"),
    Case("o-garbage", "onnx", model_file(raw=b"\xff\xff\xff\xff not a model"), "E302",
         "model.onnx"),
    Case("o-empty-file", "onnx", model_file(raw=b""), "E309", "model.onnx"),
    Case("o-missing-input", "onnx", model_file(_set("node[1].input[0]", "nope")), "E303",
         "node 'relu1'"),
    Case("o-output-never-produced", "onnx", model_file(_add_output), "E303", "output 'y2'"),
    Case("o-cycle", "onnx", model_file(_set("node[1].input[0]", "y")), "E304", "node 'relu1'"),
    Case("o-two-producers", "onnx", model_file(_set("node[1].output[0]", "c1")), "E308",
         "node 'relu1'"),
    Case("o-writes-graph-input", "onnx", model_file(_set("node[2].output[0]", "x")), "E308",
         "node 'conv2'"),
    Case("o-unknown-dtype", "onnx", model_file(_set("initializer[0].data_type", 99)), "E310",
         "tensor 'w1'"),
    Case("o-no-op-type", "onnx", model_file(_set("node[3].op_type", "")), "E311", "node 'add'"),
    Case("o-external-escapes", "onnx", model_file(external("../secret.bin")), "E305", "w1"),
    Case("o-external-absolute", "onnx", model_file(external("/etc/hostname")), "E305", "w1"),
    Case("o-external-symlink", "onnx", model_file(external("link.bin"), extra=_escape_link),
         "E305", "w1"),
    Case("o-external-missing", "onnx", model_file(external("weights.bin")), "E306", "w1"),
    Case("o-external-nul", "onnx", model_file(external("w\0.bin")), "E306", "w1"),
]

# --- calibration data (runtime.data) ----------------------------------------------------------


def npz(**arrays: Any) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        path = d / "data.npz"
        np.savez(path, **arrays)
        return path

    return build


def raw_file(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return build


def _nan() -> np.ndarray:
    x = np.zeros((2, 1, 4, 8, 8), np.float32)
    x[1, 0, 2, 3, 4] = np.nan
    return x


def _object_array(d: Path) -> Path:
    # np.savez pickles object arrays; reading them back needs allow_pickle=True (refused)
    path = d / "data.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    return path


def _input_list(d: Path) -> Path:
    np.zeros((1, 4, 8, 8), np.float32).tofile(d / "s0.raw")
    (d / "list.txt").write_text("x:=s0.raw\nx:=nope.raw\n")
    return d / "list.txt"


DATA = [
    Case("d-not-found", "data", lambda d: d / "missing.npz", "E430", "missing.npz"),
    Case("d-corrupt-npz", "data", raw_file("data.npz", b"PK\x03\x04 truncated"), "E431",
         "data.npz"),
    Case("d-pickled-objects", "data", _object_array, "E431", "data.npz"),
    Case("d-missing-input", "data", npz(z=np.zeros((2, 1, 4, 8, 8), np.float32)), "E432",
         "'x'"),
    Case("d-wrong-shape", "data", npz(x=np.zeros((2, 1, 3, 8, 8), np.float32)), "E433",
         "data for 'x'"),
    Case("d-wrong-dtype", "data", npz(x=np.zeros((2, 1, 4, 8, 8), np.complex64)), "E434",
         "sample 0 of input 'x'"),
    Case("d-nan", "data", npz(x=_nan()), "E435", "sample 1 of input 'x'"),
    Case("d-empty", "data", npz(x=np.zeros((0, 1, 4, 8, 8), np.float32)), "E436", "data.npz"),
    Case("d-input-list-missing-file", "data", _input_list, "E438", "list.txt"),
]

CASES = QSPEC + AIMET + VITIS + ENCODINGS + AMCT + ONNX + DATA
PARAMS = [pytest.param(c, id=c.id) for c in CASES]


def test_the_table_is_big_enough() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 60
    assert {c.frontend for c in CASES} == {"qspec", "aimet", "vitis", "encodings", "amct",
                                           "onnx", "data"}


# ---------------------------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------------------------

GOOD_PROFILE = "defaults { output { on  int8 } }\n"


def materialize(case: Case, tmp: Path) -> Path:
    d = tmp / "proj"
    d.mkdir()
    if callable(case.input):
        return case.input(d)
    name = "p" if case.frontend == "qspec" else "c"
    path = d / f"{name}{SUFFIX[case.frontend]}"
    raw = case.input if isinstance(case.input, bytes) else case.input.encode("utf-8")
    path.write_bytes(raw)
    return path


def expected_line_col(case: Case) -> tuple[int, int]:
    if isinstance(case.where, tuple):
        return case.where
    assert isinstance(case.where, At)
    text = case.input.decode("latin-1") if isinstance(case.input, bytes) else case.input
    assert isinstance(text, str)
    off = -1
    for _ in range(case.where.nth):
        off = text.index(case.where.marker, off + 1)
    off += case.where.shift
    line = text.count("\n", 0, off) + 1
    col = off - (text.rfind("\n", 0, off) + 1) + 1
    return line, col


def read(case: Case, path: Path) -> Any:
    if case.frontend == "onnx":
        from quantspec.graph import Graph
        from quantspec.onnx_io import load_model

        Graph.load(path)
        return load_model(path)
    if case.frontend == "data":
        from quantspec.runtime.data import batches, open_data
        from quantspec.runtime.execute import InputSpec

        source = open_data(path, [InputSpec("x", TensorProto.FLOAT, [1, 4, 8, 8])])
        return list(batches(source))
    from quantspec.lang.load import load

    return load(str(path), case.frontend)


def check_position(case: Case, err: QuantspecError, path: Path) -> None:
    d = err.diagnostic
    assert d.span is not None, d.render()
    if case.frontend in ("onnx", "data"):
        assert isinstance(case.where, str)
        where = f"{d.span} {d.message}"
        assert case.where in where, where
        return
    assert Path(d.span.file) == path or d.span.file.endswith(path.name), d.span
    assert (d.span.line, d.span.col) == expected_line_col(case), d.render()
    if case.path:
        assert d.span.path == case.path, d.span.path


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input(case: Case, tmp_path: Path) -> None:
    path = materialize(case, tmp_path)
    with pytest.raises(QuantspecError) as info:
        read(case, path)
    err = info.value
    assert err.code == case.code, err.diagnostic.render()
    check_position(case, err, path)
    if case.hint:
        assert case.hint in err.diagnostic.hint, err.diagnostic.hint


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(argv, out, err)
    return rc, err.getvalue()


def cli_argv(case: Case, path: Path, tmp: Path) -> list[str]:
    """compile for profiles; calibrate (which reads weights and data) for models and data."""
    model = tmp / "good.onnx"
    model.write_bytes(conv_relu_add().SerializeToString())
    if case.frontend not in ("onnx", "data"):
        return ["compile", str(path), "--from", case.frontend, "--model", str(model)]
    profile = tmp / "good.qspec"
    profile.write_text(GOOD_PROFILE)
    data = tmp / "good.npz"
    np.savez(data, x=np.ones((2, 1, 4, 8, 8), np.float32))
    if case.frontend == "onnx":
        model, data = path, data
    else:
        data = path
    return ["calibrate", str(profile), "--model", str(model), "--data", str(data), "-o",
            str(tmp / "out")]


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input_at_the_cli(case: Case, tmp_path: Path) -> None:
    path = materialize(case, tmp_path)
    argv = cli_argv(case, path, tmp_path)
    if case.frontend in ("onnx", "data") and "calibrate" not in cli.COMMAND_MODULES:
        pytest.skip("no calibrate command")
    rc, err = run_cli(argv)
    assert rc == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert case.code in err, err
    if case.frontend in ("onnx", "data"):
        assert isinstance(case.where, str) and case.where in err, err
    else:
        line, col = expected_line_col(case)
        assert f"{path.name}:{line}:{col}: {case.code}" in err, err


def test_unknown_ops_and_non_float_tensors_are_not_errors(tmp_path: Path) -> None:
    """Unknown op types (default or custom domain) load and match rules by name; an integer
    tensor is never quantized, even when a rule names it."""
    import json

    from models import model
    from onnx import numpy_helper

    nodes = [helper.make_node("MyOp", ["x"], ["a"], name="mine"),
             helper.make_node("Custom", ["a"], ["b"], name="custom", domain="com.example"),
             helper.make_node("Gather", ["b", "idx"], ["y"], name="gather", axis=0)]
    m = model(nodes, {"x": [4, 4]}, {"y": [2, 4]},
              [numpy_helper.from_array(np.array([0, 1], np.int64), "idx")])
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    (tmp_path / "p.qspec").write_text('defaults { output { on  int8 } }\n'
                                      'op MyOp { output { int16 } }\ntensor "idx" { on  int8 }\n')
    out = io.StringIO()
    rc = cli.main(["compile", str(tmp_path / "p.qspec"), "--model", str(tmp_path / "m.onnx")],
                  out, io.StringIO())
    assert rc == 0
    plan = {t["name"]: t for t in json.loads(out.getvalue())["tensors"]}
    assert (plan["a"]["quantized"], plan["a"]["bits"]) == (True, 16)
    assert plan["b"]["quantized"] is True
    assert plan["idx"]["quantized"] is False
