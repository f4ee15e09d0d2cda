"""Every input limit: the largest accepted input reads, one step over is a coded error.

The limits and their codes are listed in docs/reliability.md; this file checks both sides of
each boundary, so a limit can neither silently disappear nor tighten.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quantspec import jsonpos
from quantspec.dialects import amct
from quantspec.errors import QuantspecError
from quantspec.fileio import read_text
from quantspec.lang import load as qload
from quantspec.lang import parse as qparse
from quantspec.lang.parse import parse


def fails(fn, *args, **kwargs) -> QuantspecError:  # type: ignore[no-untyped-def]
    with pytest.raises(QuantspecError) as info:
        fn(*args, **kwargs)
    d = info.value.diagnostic
    assert d.span is not None and d.hint, d.render()
    return info.value


# --- files ------------------------------------------------------------------------------------


def test_file_size(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_bytes(b"x" * 100)
    assert read_text(p, limit=100) == "x" * 100
    p.write_bytes(b"x" * 101)
    assert fails(read_text, p, limit=100).code == "E102"


def test_file_size_of_a_device_is_bounded() -> None:
    """/dev/zero reports size 0: reading stops after limit + 1 bytes instead of never."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    assert fails(read_text, "/dev/zero", limit=1000).code == "E102"


# --- .qspec -----------------------------------------------------------------------------------


def test_qspec_bytes() -> None:
    n = qparse.MAX_QSPEC_BYTES
    parse("#" + "x" * (n - 2) + "\n")
    assert fails(parse, "#" + "x" * (n - 1) + "\n").code == "E010"
    # counted in UTF-8 bytes, not characters
    assert fails(parse, "#" + "é" * (n // 2) + "\n").code == "E010"


def test_qspec_tokens() -> None:
    n = qparse.MAX_TOKENS  # meta { a : [ ... ] }: 7 tokens around the list
    items = n - 7
    ok = "meta { a: [" + ",".join(["1"] * ((items + 1) // 2)) + "] }"
    parse(ok)
    assert fails(parse, ok.replace("[", "[1,", 1)).code == "E011"


def test_qspec_statements() -> None:
    n = qparse.MAX_STATEMENTS
    parse("passes matmul_add\n" * n)
    err = fails(parse, "passes matmul_add\n" * (n + 1))
    assert (err.code, err.span.line) == ("E012", n + 1)


def test_qspec_list_depth() -> None:
    d = qparse.MAX_LIST_DEPTH
    parse("meta { a: " + "[" * d + "]" * d + " }")
    assert fails(parse, "meta { a: " + "[" * (d + 1) + "]" * (d + 1) + " }").code == "E013"


@pytest.mark.parametrize("make", [lambda n: "op " + "A" * n + " { output { on } }",
                                  lambda n: 'layer "' + "x" * (n - 2) + '" { output { on } }'],
                         ids=["name", "string"])
def test_qspec_word_length(make) -> None:  # type: ignore[no-untyped-def]
    n = qparse.MAX_WORD_CHARS
    parse(make(n))
    assert fails(parse, make(n + 1)).code == "E014"


def test_qspec_number_length_and_range() -> None:
    n = qparse.MAX_NUMBER_CHARS
    parse("meta { a: 1" + "0" * (n - 1) + " }")
    assert fails(parse, "meta { a: 1" + "0" * n + " }").code == "E015"
    assert fails(parse, "meta { a: 1e999 }").code == "E015"
    assert fails(parse, "op Relu { output { range: [0, -1e400] } }").code == "E015"


@pytest.mark.parametrize("text", ["op Relu { output { bits: 100000000000000000000 } }",
                                  "op Relu { output { int99 } }",
                                  "op Relu { output { uint0 } }"])
def test_qspec_bit_widths(text: str) -> None:
    assert fails(parse, text).code == "E005"


def test_fuse_pattern_length() -> None:
    n = qparse.MAX_PATTERN_LENGTH
    parse("fuse " + " -> ".join(["Conv"] * n))
    assert fails(parse, "fuse " + " -> ".join(["Conv"] * (n + 1))).code == "E008"


def test_extends_depth(tmp_path: Path) -> None:
    n = qload.MAX_EXTENDS_DEPTH
    for i in range(n + 2):
        (tmp_path / f"p{i}.qspec").write_text(f'extends "./p{i + 1}.qspec"\n' if i <= n else "")
    qload.load(str(tmp_path / "p1.qspec"))  # n files extending down to the last, empty one
    err = fails(qload.load, str(tmp_path / "p0.qspec"))
    assert err.code == "E107"


# --- JSON -------------------------------------------------------------------------------------


def test_json_depth() -> None:
    d = jsonpos.MAX_DEPTH + 1  # the top-level value is depth 0
    jsonpos.loads("[" * d + "]" * d)
    assert fails(jsonpos.loads, "[" * (d + 1) + "]" * (d + 1)).code == "E111"


@pytest.mark.parametrize("name, doc", [
    ("encodings", '{"version": "2.1.0", "encodings": [{"name": "a", "output_dtype": "int8", '
                  '"y_scale": %s, "y_zero_point": 0}]}'),
    ("aimet", '{"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {}, '
              '"supergroups": [{"op_list": %s}], "model_input": {}, "model_output": {}}'),
    ("vitis", '{"target_device": "CPU", "layer_quantize_config": [%s]}'),
])
def test_json_depth_leaves_room_for_schema_validation(name: str, doc: str) -> None:
    """Nesting at the limit inside a schema-checked field, read from an already deep stack:
    jsonschema recursed into RecursionError at 190 levels before the limit was lowered."""
    from quantspec import dialects

    d = jsonpos.MAX_DEPTH - 3
    text = doc % ("[" * d + "0.5" + "]" * d)

    def deep(n: int) -> str:
        if n:
            return deep(n - 1)
        try:
            dialects.get(name).read(text, "f.json")
        except QuantspecError as exc:
            return exc.code
        return ""

    assert deep(200) != "E111"  # read (or refused by its schema), not a RecursionError


def test_json_number_length() -> None:
    n = jsonpos.MAX_NUMBER_CHARS
    assert jsonpos.loads("-" + "9" * (n - 1))[0] == -int("9" * (n - 1))
    err = fails(jsonpos.loads, '{"a": -' + "9" * n + "}")
    assert (err.code, err.span.col, err.span.path) == ("E112", 7, "$.a")


def test_json_string_length() -> None:
    n = jsonpos.MAX_STRING_CHARS
    assert len(jsonpos.loads('"' + "x" * n + '"')[0]) == n
    assert fails(jsonpos.loads, '["' + "x" * (n + 1) + '"]').code == "E113"
    assert fails(jsonpos.loads, '{"' + "k" * (n + 1) + '": 1}').code == "E113"


# --- AMCT -------------------------------------------------------------------------------------


def test_amct_size() -> None:
    n = amct.MAX_CFG_CHARS
    amct.read("#" + "x" * (n - 2) + "\n", "a.cfg")
    assert fails(amct.read, "#" + "x" * (n - 1) + "\n", "a.cfg").code == "E114"
