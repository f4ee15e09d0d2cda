"""CI-sized fuzzing: every front end reads an input or raises QuantspecError, nothing else.

Three kinds of input: grammar-aware / random-tree generation driven by hypothesis (derandomized,
no example database, a one-second deadline per example), random bytes, and seeded mutations of
every corpus file (shared corpus and tests/fixtures). The long run is ``tools/fuzz.py``; its
report is in benchmarks/FUZZ.md. Mutated inputs are checked for CPU time, not wall time, so a
busy machine does not fail the suite.
"""

from __future__ import annotations

import random
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import fuzz_support as fs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantspec.errors import QuantspecError

T = TypeVar("T")

FRONTENDS = fs.frontends()
CI = settings(max_examples=40, deadline=timedelta(seconds=1), derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
              print_blob=True)
MUTATIONS_PER_FILE = 2
LIMIT_CPU_SECONDS = 1.0


class DrawChooser:
    """fuzz_support's Chooser over hypothesis draws (so failures shrink)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def pick(self, seq: Any) -> Any:
        return self.data.draw(st.sampled_from(list(seq)))

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def coin(self, p: float) -> bool:
        return self.data.draw(st.integers(0, 99)) < p * 100


def reads_or_fails_cleanly(fe: fs.FrontEnd, data: bytes) -> fs.Outcome:
    outcome = fs.run_one(fe, data)
    assert outcome.status != "crash", f"{fe.name}: {outcome.detail}\ninput: {data[:300]!r}"
    return outcome


# ---------------------------------------------------------------------------------------------
# Generated inputs
# ---------------------------------------------------------------------------------------------


@CI
@given(st.data())
def test_generated_qspec(data: st.DataObject) -> None:
    """Grammar-aware .qspec; what parses also formats, and the format is a fixed point."""
    from quantspec.lang.format import format_text
    from quantspec.lang.parse import parse

    text = fs.gen_qspec(DrawChooser(data))
    outcome = reads_or_fails_cleanly(FRONTENDS["qspec"], text.encode())
    if outcome.status == "ok":
        formatted = format_text(text, "g.qspec")
        assert parse(formatted, "g.qspec") is not None
        assert format_text(formatted, "g.qspec") == formatted


@pytest.mark.parametrize("name", ["aimet", "vitis", "encodings"])
def test_random_json_trees(name: str) -> None:
    fe = FRONTENDS[name]
    assert fe.generate is not None

    @CI
    @given(st.data(), st.sampled_from([None, 1, 2]))
    def check(data: st.DataObject, indent: int | None) -> None:
        tree = fs.gen_json(DrawChooser(data), _vocab(name))
        reads_or_fails_cleanly(fe, fs.json_dump(tree, indent).encode())

    check()


def _vocab(name: str) -> fs.Vocab:
    return {"aimet": fs._vocab_aimet, "vitis": fs._vocab_vitis,
            "encodings": fs._vocab_encodings}[name]()


@CI
@given(st.data())
def test_generated_amct(data: st.DataObject) -> None:
    reads_or_fails_cleanly(FRONTENDS["amct"], fs.gen_amct(DrawChooser(data)).encode())


AMCT_ALPHABET = st.sampled_from(list("{}<>[]:;,\"'#\\ \n\t") + ["batch_num", "common_config",
                                "ifmr_quantize", "override_layer_types", "layer_type", "1",
                                "-1", "1e999", "true", "INT16", "skip_layers", "nan"])


@CI
@given(st.lists(AMCT_ALPHABET, max_size=40).map(" ".join))
def test_random_amct_text(text: str) -> None:
    reads_or_fails_cleanly(FRONTENDS["amct"], text.encode())


# text without st.text (whose first use builds Unicode tables for seconds)
TEXT_PIECES = st.sampled_from(list("{}[]()\":,;#\\ \n\t<>|=-.0123456789eE") + [
    "a", "Conv", "op", "true", "null", "é", "\u2028", "\ufeff", "\x00", "𝔘"])


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_random_bytes(name: str) -> None:
    fe = FRONTENDS[name]

    @CI
    @given(st.binary(max_size=512) | st.lists(TEXT_PIECES, max_size=60).map(
        lambda xs: "".join(xs).encode()))
    def check(data: bytes) -> None:
        reads_or_fails_cleanly(fe, data)

    check()


# ---------------------------------------------------------------------------------------------
# Mutated corpus files
# ---------------------------------------------------------------------------------------------


def _seed(label: str) -> int:
    return zlib.crc32(label.encode())


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_corpus_mutations(name: str) -> None:
    """MUTATIONS_PER_FILE seeded mutations of every corpus file of the front end."""
    fe = FRONTENDS[name]
    seeds = fe.seeds()
    assert seeds, f"no seed inputs for {name}"
    slow = []
    for label, data in seeds:
        rng = random.Random(_seed(f"{name}:{Path(label).name}"))
        for _ in range(MUTATIONS_PER_FILE):
            mutated, how = fs.mutate(fe, rng, data)
            outcome = reads_or_fails_cleanly(fe, mutated)
            if outcome.seconds > LIMIT_CPU_SECONDS:
                slow.append((label, how, outcome.seconds))
    assert not slow, slow


def test_shared_corpus_is_used() -> None:
    from qs_paths import shared_path

    shared_path("corpus")  # skips when ../shared is absent
    counts = {n: len(fe.corpus()) for n, fe in FRONTENDS.items()}
    # every vendor front end has real files (the qspec and onnx seeds are built here)
    assert all(counts[n] >= 5 for n in ("aimet", "vitis", "encodings", "amct")), counts
    assert counts["onnx"] >= 5


def test_mutators_change_their_input() -> None:
    """Each mutator, on a corpus file, makes something different most of the time."""
    for name, fe in FRONTENDS.items():
        _, data = fe.seeds()[0]
        for m in fe.mutators:
            rng = random.Random(1)
            changed = sum(m(rng, data) != data for _ in range(8))
            assert changed >= 4, (name, m.__name__)


# ---------------------------------------------------------------------------------------------
# Reproducers of bugs the fuzzer found (minimized by hand); each once raised something else
# ---------------------------------------------------------------------------------------------

REGRESSIONS = [
    # int() of a 5000-digit literal raises ValueError (int_max_str_digits)
    ("qspec", b"op Conv { output { bits: " + b"9" * 5000 + b" } }", "E015"),
    ("qspec", b"op Conv { output { int" + b"9" * 5000 + b" } }", "E014"),
    # nested lists recursed without bound
    ("qspec", b"op Conv { output { range: " + b"[" * 3000 + b"]" * 3000 + b" } }", "E013"),
    # int("range_end"): a parameter name starting with "_" looked like a positional "_0"
    ("qspec", b"calibrate { method: ifmr(_range_end=1.3) }", "E005"),
    # a float literal that overflows printed back as the word inf
    ("qspec", b"meta { note: 1e999 }", "E015"),
    ("aimet", b'{"defaults": ' + b"9" * 5000 + b"}", "E112"),
    # json.loads in encodings.detect raised RecursionError on deep nesting
    ("aimet", b"[" * 100_000, "E111"),
    ("vitis", b'{"a": ' * 50_000, "E111"),
    # RecursionError in jsonschema: 190 nested arrays passed the old 200-level limit
    ("encodings", b'{"version": "2.1.0", "encodings": [{"name": "a", "output_dtype": "int8", '
                  b'"y_scale": ' + b"[" * 190 + b"0.1" + b"]" * 190 + b', "y_zero_point": 0}]}',
     "E111"),
    # KeyError: 'op_list'
    ("aimet", b'{"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {}, '
              b'"supergroups": [{}], "model_input": {}, "model_output": {}}', "E132"),
    # OverflowError: int too large to convert to float
    ("aimet", b'{"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {"Relu": '
              b'{"encoding_constraints": {"min": 1' + b"0" * 400
              + b'}}}, "supergroups": [], "model_input": {}, "model_output": {}}', "E112"),
    # decimal.InvalidOperation: nan passed the IFMR range checks, then reached Decimal
    ("amct", b"common_config {\n  ifmr_quantize {\n    search_range_start: 0.7\n"
             b"    search_range_end: 1.3\n    search_step: nan\n  }\n}\n", "E152"),
    # KeyError: 'offset' (legacy channel with min, max and scale but no offset)
    ("encodings", b'{"activation_encodings": {"x": [{"bitwidth": 8, "min": 0.0, "max": 1.0, '
                  b'"scale": 0.1}]}, "param_encodings": {}}', ""),
]


@pytest.mark.parametrize("name, data, code", REGRESSIONS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(REGRESSIONS)])
def test_fuzz_regressions(name: str, data: bytes, code: str) -> None:
    outcome = reads_or_fails_cleanly(FRONTENDS[name], data)
    assert (outcome.code or "") == code, outcome


@pytest.mark.parametrize("name", ["qspec", "aimet", "amct"])
def test_detection_is_linear(name: str) -> None:
    """AMCT's content sniffer was quadratic in blank lines (it runs for every .json / .cfg)."""
    outcome = reads_or_fails_cleanly(FRONTENDS[name], b"\n" * 20_000 + b"profile 0.1\n")
    assert outcome.seconds < LIMIT_CPU_SECONDS / 2, outcome  # was ~5 s of CPU


def test_onnx_regressions(tmp_path: Path) -> None:
    """A NUL byte in an external-data location made pathlib raise ValueError."""
    import onnx
    from models import conv_relu_add

    m = conv_relu_add()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = onnx.TensorProto.EXTERNAL
    e = w.external_data.add()
    e.key, e.value = "location", "w\0.bin"
    outcome = reads_or_fails_cleanly(FRONTENDS["onnx"], m.SerializeToString())
    assert outcome.code == "E306"
    with pytest.raises(QuantspecError):
        fs.read_onnx(b"")


def _edited(edit: Any) -> bytes:
    from models import conv_relu_add

    m = conv_relu_add()
    edit(m)
    return bytes(m.SerializeToString())


def _identity_without_input(m: Any) -> None:
    conv1 = m.graph.node[0]  # becomes an Identity with no input, producing c1 ...
    conv1.op_type = "Identity"
    del conv1.input[:]
    del conv1.attribute[:]
    m.graph.node[2].input[1] = "c1"  # ... that conv2 reads as its weight


def _constant_with_int_value(m: Any) -> None:
    import onnx

    m.graph.node.insert(0, onnx.helper.make_node("Constant", [], ["k"], value_int=3))
    m.graph.node[0].attribute[0].name = "value"  # 'value' of type INT, not TENSOR


def _name_not_utf8(m: Any) -> None:
    m.graph.node[1].name = "relu"
    raw = m.SerializeToString()
    assert raw.count(b"\x1a\x04relu") == 1  # NodeProto.name (field 3), 4 bytes
    raw = raw.replace(b"\x1a\x04relu", b"\x1a\x04r\xbbl\xbe")
    m.ParseFromString(raw)


def _location_not_utf8(m: Any) -> None:
    import onnx

    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = onnx.TensorProto.EXTERNAL
    e = w.external_data.add()
    e.key, e.value = "location", "LOCX.bin"
    m.ParseFromString(m.SerializeToString().replace(b"LOCX", b"\xff\xfeOC", 1))


@pytest.mark.parametrize("edit, code", [
    (_identity_without_input, None),  # IndexError in Graph.static_source
    (_constant_with_int_value, "E311"),  # AttributeError: 'int' object has no 'data_type'
    (_name_not_utf8, "E311"),  # protobuf returns bytes; regexes on node names raised TypeError
    (_location_not_utf8, "E306"),  # TypeError: PosixPath / bytes in check_external_data
], ids=["identity-without-input", "constant-int-value", "name-not-utf8", "location-not-utf8"])
def test_onnx_graph_regressions(edit: Any, code: str | None) -> None:
    outcome = reads_or_fails_cleanly(FRONTENDS["onnx"], _edited(edit))
    if code is not None:
        assert outcome.code == code, outcome
