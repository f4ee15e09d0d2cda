"""Fuzzing support shared by the CI-sized tests and the long run (``tools/fuzz.py``).

For every front end: how to read one input (bytes in, the same path the CLI takes), its seed
corpus, its mutators (byte-level, structural JSON, token-level for ``.qspec`` and AMCT text,
protobuf-level for ONNX) and a generator of fresh inputs. A generator draws through a
:class:`Chooser`, so the same grammar serves ``random.Random`` (the long run) and hypothesis
(``st.data()``, which shrinks).

The property every front end must hold: reading succeeds or raises ``QuantspecError``; any other
exception is a bug.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from qs_paths import FIXTURES, REPO, SHARED

from quantspec.errors import QuantspecError

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Choosers: one interface over random.Random and hypothesis draws
# ---------------------------------------------------------------------------------------------


class Chooser(Protocol):
    def pick(self, seq: Sequence[T]) -> T: ...

    def int(self, lo: int, hi: int) -> int: ...

    def coin(self, p: float) -> bool: ...


class RngChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.rng.randrange(len(seq))]

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def coin(self, p: float) -> bool:
        return self.rng.random() < p


# ---------------------------------------------------------------------------------------------
# Interesting values
# ---------------------------------------------------------------------------------------------

HUGE_NUMBER_TEXT = (
    "1" + "0" * 20, "1" + "0" * 100, "9" * 400, "9" * 5000, "-" + "9" * 5000, "1e999", "-1e999",
    "1e-999", "1e308", "5e-324", "2147483648", "4294967296", "9223372036854775808",
    "-9223372036854775809", "0.1e1", "-0", "1.7976931348623157e308", "0." + "0" * 400 + "1",
)
NOT_JSON_NUMBERS = ("NaN", "Infinity", "-Infinity", "nan", "inf", "0x10", "+1", "01", ".5", "1.")
NEST_DEPTHS = (10, 60, 199, 200, 201, 1000, 5000)
LONG_LENGTHS = (300, 5000, 70_000, 300_000)


# ---------------------------------------------------------------------------------------------
# Byte-level mutators (every front end)
# ---------------------------------------------------------------------------------------------

Mutator = Callable[[random.Random, bytes], bytes]

_BYTES = (b"\x00", b"\xff", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b'"', b"\\",
          b"\n", b"\r", b"\t", b"{", b"}", b"[", b"]", b":", b",", b"#", b"<", b">", b"'")


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def set_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(b) + 1)
        b[i:i + rng.randint(0, 1)] = rng.choice(_BYTES)
    return bytes(b)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def delete_chunk(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 64):]


def duplicate_chunk(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    chunk = data[i:i + rng.randint(1, 256)]
    j = rng.randrange(len(data) + 1)
    return data[:j] + chunk * rng.choice((1, 1, 2, 50)) + data[j:]


def swap_chunks(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 4:
        return data
    a, b = sorted(rng.sample(range(len(data)), 2))
    n = rng.randint(1, min(32, b - a))
    return data[:a] + data[b:b + n] + data[a + n:b] + data[a:a + n] + data[b + n:]


BYTE_MUTATORS: tuple[Mutator, ...] = (flip_bits, set_bytes, truncate, delete_chunk,
                                      duplicate_chunk, swap_chunks)


def insert_words(words: Sequence[str]) -> Mutator:
    """Insert a vocabulary word or an interesting number at a random offset."""
    pool = [*words, *HUGE_NUMBER_TEXT, *NOT_JSON_NUMBERS]

    def insert_word(rng: random.Random, data: bytes) -> bytes:
        i = rng.randrange(len(data) + 1)
        word = rng.choice(pool).encode()
        return data[:i] + rng.choice((b"", b" ", b'"')) + word + data[i:]

    return insert_word


# ---------------------------------------------------------------------------------------------
# JSON: structural mutators (key deletion/duplication, type swaps, huge numbers, deep nesting)
# ---------------------------------------------------------------------------------------------


class Obj(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, so a mutation can duplicate a key."""


@dataclass(frozen=True)
class Raw:
    """Text emitted as is (numbers JSON cannot spell, deep nesting built without recursion)."""

    text: str


def json_parse(text: str) -> Any:
    return json.loads(text, object_pairs_hook=Obj)


def json_dump(value: Any, indent: int | None) -> str:
    out: list[str] = []
    _dump(value, indent, 0, out)
    return "".join(out)


def _dump(v: Any, indent: int | None, level: int, out: list[str]) -> None:
    nl = "\n" + " " * (indent * (level + 1)) if indent is not None else ""
    end = "\n" + " " * (indent * level) if indent is not None else ""
    if isinstance(v, Raw):
        out.append(v.text)
    elif isinstance(v, Obj):
        if not v:
            out.append("{}")
            return
        out.append("{")
        for i, (k, x) in enumerate(v):
            out.append(("," if i else "") + nl + json.dumps(k) + ": ")
            _dump(x, indent, level + 1, out)
        out.append(end + "}")
    elif isinstance(v, list):
        if not v:
            out.append("[]")
            return
        out.append("[")
        for i, x in enumerate(v):
            out.append(("," if i else "") + nl)
            _dump(x, indent, level + 1, out)
        out.append(end + "]")
    elif isinstance(v, float) and v != v:
        out.append("NaN")
    else:
        out.append(json.dumps(v))


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in ``tree``, iteratively."""
    out: list[tuple[Any, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Obj):
            for i, (_, x) in enumerate(node):
                out.append((node, i))
                stack.append(x)
        elif isinstance(node, list):
            for i, x in enumerate(node):
                out.append((node, i))
                stack.append(x)
    return out


def _get(container: Any, i: int) -> Any:
    return container[i][1] if isinstance(container, Obj) else container[i]


def _set(container: Any, i: int, value: Any) -> None:
    if isinstance(container, Obj):
        container[i] = (container[i][0], value)
    else:
        container[i] = value


@dataclass(frozen=True)
class Vocab:
    """Words a dialect knows: keys and string values (so mutations stay near valid input)."""

    keys: tuple[str, ...]
    strings: tuple[str, ...] = ()
    top: tuple[str, ...] = ()


def _other_value(rng: random.Random, vocab: Vocab, old: Any) -> Any:
    choices: list[Any] = [
        None, True, False, 0, -1, 1, 2, 4, 8, 16, 32, 64, 1.5, -0.0, 1e-12, "", "True", "False",
        "true", "int", "float", "none", [], Obj(), [old], Obj([("k", old)]),
        Raw(rng.choice(HUGE_NUMBER_TEXT)), Raw(rng.choice(NOT_JSON_NUMBERS)),
        rng.choice(vocab.strings or ("x",)), rng.choice(vocab.keys or ("x",)),
        "x" * rng.choice(LONG_LENGTHS), 2**63, -(2**63) - 1, 10**30,
    ]
    return rng.choice(choices)


def _deep(rng: random.Random, value: Any) -> Raw:
    depth = rng.choice(NEST_DEPTHS)
    inner = json_dump(value, None) if rng.random() < 0.5 else "1"
    if rng.random() < 0.5:
        return Raw("[" * depth + inner + "]" * depth)
    return Raw('{"a": ' * depth + inner + "}" * depth)


def json_mutators(vocab: Vocab) -> tuple[Mutator, ...]:
    def structural(op: Callable[[random.Random, Any, Vocab], Any]) -> Mutator:
        def mutate(rng: random.Random, data: bytes) -> bytes:
            try:
                tree = json_parse(data.decode("utf-8-sig"))
                for _ in range(rng.randint(1, 3)):
                    tree = op(rng, tree, vocab)
                return json_dump(tree, rng.choice((None, 1, 2, 4))).encode()
            except (ValueError, RecursionError):  # not JSON, or nested too deep to copy
                return rng.choice(BYTE_MUTATORS)(rng, data)

        mutate.__name__ = op.__name__
        return mutate

    return tuple(structural(op) for op in (
        json_delete, json_duplicate_key, json_rename_key, json_type_swap, json_huge_number,
        json_deep_nesting, json_copy_subtree, json_empty_container,
    )) + (insert_words([*vocab.keys, *vocab.strings]),)


def json_delete(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = _slots(tree)
    if slots:
        container, i = rng.choice(slots)
        del container[i]
    return tree


def json_duplicate_key(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = [(c, i) for c, i in _slots(tree) if isinstance(c, Obj)]
    if slots:
        container, i = rng.choice(slots)
        key, value = container[i]
        again = copy.deepcopy(value) if rng.random() < 0.5 else _other_value(rng, vocab, value)
        container.insert(rng.randrange(len(container) + 1), (key, again))
    return tree


def json_rename_key(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = [(c, i) for c, i in _slots(tree) if isinstance(c, Obj)]
    if isinstance(tree, Obj) and (not slots or rng.random() < 0.3):
        tree.append((rng.choice(vocab.top or vocab.keys or ("x",)), _other_value(rng, vocab, 1)))
        return tree
    if slots:
        container, i = rng.choice(slots)
        key, value = container[i]
        if rng.random() < 0.5 and vocab.keys:
            key = rng.choice(vocab.keys)
        elif key:
            j = rng.randrange(len(key))
            key = rng.choice((key[:j] + key[j + 1:], key.upper(), key + "_", key[::-1], ""))
        container[i] = (key, value)
    return tree


def json_type_swap(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = _slots(tree)
    if not slots:
        return _other_value(rng, vocab, tree)
    container, i = rng.choice(slots)
    _set(container, i, _other_value(rng, vocab, _get(container, i)))
    return tree


def json_huge_number(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = _slots(tree)
    numeric = [(c, i) for c, i in slots if isinstance(_get(c, i), (int, float))]
    if numeric or slots:
        container, i = rng.choice(numeric or slots)
        _set(container, i, Raw(rng.choice(HUGE_NUMBER_TEXT + NOT_JSON_NUMBERS)))
    return tree


def json_deep_nesting(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = _slots(tree)
    if not slots:
        return _deep(rng, tree)
    container, i = rng.choice(slots)
    _set(container, i, _deep(rng, _get(container, i)))
    return tree


def json_copy_subtree(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = _slots(tree)
    if len(slots) >= 2:
        (c1, i1), (c2, i2) = rng.sample(slots, 2)
        _set(c2, i2, copy.deepcopy(_get(c1, i1)))
    return tree


def json_empty_container(rng: random.Random, tree: Any, vocab: Vocab) -> Any:
    slots = [(c, i) for c, i in _slots(tree) if isinstance(_get(c, i), list)]
    if slots:
        container, i = rng.choice(slots)
        _set(container, i, Obj() if isinstance(_get(container, i), Obj) else [])
    return tree


def gen_json(c: Chooser, vocab: Vocab, depth: int = 0) -> Any:
    """A random JSON tree whose keys mostly come from ``vocab`` (top-level: an object)."""
    if depth == 0:
        n = c.int(0, 6)
        keys = vocab.top or vocab.keys
        return Obj((c.pick(keys), gen_json(c, vocab, 1)) for _ in range(n))
    kinds = ("null", "bool", "int", "float", "str", "list", "obj") if depth < 6 else (
        "null", "bool", "int", "str")
    kind = c.pick(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return c.coin(0.5)
    if kind == "int":
        return c.pick((0, 1, -1, 4, 8, 16, 32, 255, 2**31, 10**20))
    if kind == "float":
        return c.pick((0.0, 0.5, -1.5, 99.99, 1e-8, 1e30))
    if kind == "str":
        return c.pick(("", "True", "False", "x", *vocab.strings, *vocab.keys))
    if kind == "list":
        return [gen_json(c, vocab, depth + 1) for _ in range(c.int(0, 4))]
    return Obj((c.pick(vocab.keys), gen_json(c, vocab, depth + 1)) for _ in range(c.int(0, 4)))


def _schema_words(*schema_files: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys: set[str] = set()
    strings: set[str] = set()
    for f in schema_files:
        stack = [json.loads(f.read_text("utf-8"))]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                props = node.get("properties")
                if isinstance(props, dict):
                    keys.update(props)
                for k in ("enum", "required"):
                    if isinstance(node.get(k), list):
                        strings.update(str(x) for x in node[k] if isinstance(x, str))
                if isinstance(node.get("const"), str):
                    strings.add(node["const"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return tuple(sorted(keys)), tuple(sorted(strings - keys))


# ---------------------------------------------------------------------------------------------
# Token-level mutators (.qspec and AMCT prototext) and generators
# ---------------------------------------------------------------------------------------------

_QSPEC_TOKEN = re.compile(
    r'\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"|->|==|!=|>=|<=|[A-Za-z_][A-Za-z0-9_.]*'
    r"|[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|.", re.S)
_AMCT_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[{}<>\[\]:;,]|[^\s{}<>\[\]:;,"'\#]+""",
    re.S)


def token_mutators(pattern: re.Pattern[str], words: Sequence[str],
                   extras: Sequence[Callable[[random.Random], str]]) -> tuple[Mutator, ...]:
    """Mutators over the tokens of a text (whitespace tokens kept, so lines stay)."""

    def tokens(data: bytes) -> list[str] | None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
        return pattern.findall(text)

    def real(toks: list[str]) -> list[int]:
        return [i for i, t in enumerate(toks) if t.strip() and not t.startswith("#")]

    def op(fn: Callable[[random.Random, list[str], list[int]], None]) -> Mutator:
        def mutate(rng: random.Random, data: bytes) -> bytes:
            toks = tokens(data)
            if toks is None:
                return rng.choice(BYTE_MUTATORS)(rng, data)
            for _ in range(rng.randint(1, 3)):
                fn(rng, toks, real(toks))
            return "".join(toks).encode()

        mutate.__name__ = fn.__name__
        return mutate

    def tok_delete(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        if idx:
            toks[rng.choice(idx)] = ""

    def tok_duplicate(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        if idx:
            i = rng.choice(idx)
            toks[i] = toks[i] + " " + toks[i]

    def tok_swap(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        if len(idx) >= 2:
            a, b = rng.sample(idx, 2)
            toks[a], toks[b] = toks[b], toks[a]

    def tok_replace(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        if idx:
            toks[rng.choice(idx)] = rng.choice(words)

    def tok_insert(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        i = rng.randrange(len(toks) + 1)
        toks.insert(i, " " + rng.choice(words) + " ")

    def tok_number(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        nums = [i for i in idx if re.fullmatch(r"[+-]?[\d.]+(?:[eE][+-]?\d+)?", toks[i])]
        if nums or idx:
            toks[rng.choice(nums or idx)] = rng.choice(HUGE_NUMBER_TEXT + NOT_JSON_NUMBERS)

    def tok_span_copy(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        if len(toks) >= 2:
            a = rng.randrange(len(toks))
            b = min(len(toks), a + rng.randint(1, 40))
            j = rng.randrange(len(toks) + 1)
            toks[j:j] = toks[a:b] * rng.choice((1, 1, 3, 200))

    def tok_extra(rng: random.Random, toks: list[str], idx: list[int]) -> None:
        i = rng.randrange(len(toks) + 1)
        toks.insert(i, "\n" + rng.choice(extras)(rng) + "\n")

    return tuple(op(f) for f in (tok_delete, tok_duplicate, tok_swap, tok_replace, tok_insert,
                                 tok_number, tok_span_copy, tok_extra))


def _long_name(rng: random.Random) -> str:
    return "n" * rng.choice(LONG_LENGTHS)


def _qspec_extras() -> list[Callable[[random.Random], str]]:
    def deep_list(rng: random.Random) -> str:
        d = rng.choice(NEST_DEPTHS)
        return "op Conv { output { range: " + "[" * d + "0, 1" + "]" * d + " } }"

    def long_fuse(rng: random.Random) -> str:
        return "fuse " + " -> ".join(["Conv"] * rng.choice((2, 32, 33, 200, 5000)))

    def long_string(rng: random.Random) -> str:
        return 'layer "' + "x" * rng.choice(LONG_LENGTHS) + '" { output { int8 } }'

    def long_name(rng: random.Random) -> str:
        return f"op {_long_name(rng)} {{ output {{ int8 }} }}"

    def many_rules(rng: random.Random) -> str:
        return "op Relu { output { int8 } }\n" * rng.choice((100, 2000, 20_000))

    def huge_bits(rng: random.Random) -> str:
        n = rng.choice(HUGE_NUMBER_TEXT)
        return rng.choice((f"op Conv {{ output {{ bits: {n} }} }}",
                           f"op Conv {{ output {{ int{n.lstrip('-')} }} }}",
                           f"op Conv {{ input {n} {{ int8 }} }}",
                           f"op Conv {{ weight {{ axis: {n} }} }}"))

    def many_alternatives(rng: random.Random) -> str:
        return "op " + " | ".join(["Conv"] * rng.choice((10, 1000, 20_000))) + " { output { on } }"

    return [deep_list, long_fuse, long_string, long_name, many_rules, huge_bits,
            many_alternatives]


def _amct_extras() -> list[Callable[[random.Random], str]]:
    def deep(rng: random.Random) -> str:
        d = rng.choice(NEST_DEPTHS)
        return "override_layer_configs {" * d + "}" * d

    def long_string(rng: random.Random) -> str:
        return 'skip_layers: "' + "x" * rng.choice(LONG_LENGTHS) + '"'

    def huge(rng: random.Random) -> str:
        return f"batch_num: {rng.choice(HUGE_NUMBER_TEXT)}"

    def many(rng: random.Random) -> str:
        return 'skip_layers: "a"\n' * rng.choice((100, 5000, 50_000))

    return [deep, long_string, huge, many]


def gen_qspec(c: Chooser) -> str:
    """A .qspec text built from the grammar's statements with mostly-valid words."""
    from quantspec import ir
    from quantspec.lang import settings as S
    from quantspec.lang.parse import SLOT_NAMES

    ops = ("Conv", "Relu", "MatMul", "Gemm", "Add", "LayerNormalization", "Softmax", "Foo")
    flags = (*S.FLAG_WORDS, "int8", "uint8", "int16", "int4", "float16", "int0", "int65",
             "bogus")
    keys = (*ir.FIELDS, *S.KEY_ALIASES, "min", "max", "nope")

    def value(depth: int = 0) -> str:
        kind = c.pick(("num", "word", "str", "list", "call", "like") if depth < 3 else
                      ("num", "word", "str"))
        if kind == "num":
            return c.pick(("0", "1", "8", "-1", "64", "65", "99.99", "1e-3", "1e999", "0.5",
                           "10000000000000000000000"))
        if kind == "word":
            return c.pick((*ir.CALIBRATION_METHODS, *ir.ROUNDING_MODES, *ir.DTYPES, "true",
                           "false", "null", "on", "off", "inf", "-inf", "power_of_two", "zz"))
        if kind == "str":
            return c.pick(('"x"', '""', '"a\\"b"', '"conv.*"'))
        if kind == "list":
            return "[" + ", ".join(value(depth + 1) for _ in range(c.int(0, 3))) + "]"
        if kind == "call":
            args = [c.pick(("99.9", "percentile=99.99", "bins=2048", "x")) for _ in
                    range(c.int(0, 2))]
            return c.pick(ir.CALIBRATION_METHODS) + "(" + ", ".join(args) + ")"
        return "like " + c.pick(("output", "input", "weight"))

    def item() -> str:
        if c.coin(0.5):
            return c.pick(flags)
        return f"{c.pick(keys)}: {value()}"

    def block() -> str:
        parts = []
        for _ in range(c.int(0, 3)):
            if c.coin(0.6):
                idx = f" {c.int(0, 3)}" if c.coin(0.2) else ""
                inner = " ".join(item() for _ in range(c.int(0, 3)))
                parts.append(f"{c.pick(SLOT_NAMES)}{idx} {{ {inner} }}")
            else:
                parts.append(item())
        return "{ " + " ".join(parts) + " }"

    def op_types() -> str:
        return " | ".join(c.pick(ops) for _ in range(c.int(1, 3)))

    def statement() -> str:
        kind = c.int(0, 13)
        final = "final " if c.coin(0.1) else ""
        if kind == 0:
            return f"{final}defaults {block()}"
        if kind == 1:
            pred = ""
            if c.coin(0.3):
                pred = "(" + c.pick(("depthwise", "group > 1", "transB == 1", "x != \"a\"")) + ")"
            return f"{final}op {op_types()} {pred} {block()}"
        if kind == 2:
            return f"{final}layer \"{c.pick(('conv*', 'a.b', '[x'))}\" {block()}"
        if kind == 3:
            return f"{final}tensor \"t\" {{ {item()} }}"
        if kind == 4:
            return f"{final}model {c.pick(('input', 'output', 'middle'))} {block()}"
        if kind == 5:
            return "fuse " + " -> ".join(op_types() for _ in range(c.int(1, 4)))
        if kind == 6:
            return f"tie {c.pick((*ir.TIE_MODES, 'zz'))}: {op_types()}" + (
                f" through {op_types()}" if c.coin(0.3) else "")
        if kind == 7:
            return "share " + ", ".join(f'"t{i}"' for i in range(c.int(1, 3)))
        if kind == 8:
            key = c.pick((*ir.OPTION_DEFAULTS, "nope"))
            return f"options {{ {key}: {value()} }}"
        if kind == 9:
            return f"calibrate {{ method: {value()} }}"
        if kind == 10:
            return f"transform {{ {c.pick((*ir.TRANSFORMS, 'nope'))}: {c.pick(('on', 'off'))} }}"
        if kind == 11:
            return "passes " + ", ".join(c.pick((*ir.GRAPH_PASSES, "nope"))
                                         for _ in range(c.int(1, 2)))
        if kind == 12:
            return f"meta {{ {c.pick(('note', 'x'))}: {value()} }}"
        return f'post "{c.pick(("x", "y"))}"'

    head = ""
    if c.coin(0.5):
        head = 'profile "p"' + (' extends "ort/qdq"' if c.coin(0.3) else "") + "\n"
    return head + "\n".join(statement() for _ in range(c.int(0, 6))) + "\n"


def _amct_words() -> tuple[list[str], list[str]]:
    from quantspec.dialects import amct_pb2 as pb

    fields: set[str] = set()
    enums: set[str] = set()
    for msg in pb.DESCRIPTOR.message_types_by_name.values():
        fields.update(msg.fields_by_name)
    for enum in pb.DESCRIPTOR.enum_types_by_name.values():
        enums.update(enum.values_by_name)
    for msg in pb.DESCRIPTOR.message_types_by_name.values():
        for enum in msg.enum_types:
            enums.update(enum.values_by_name)
    return sorted(fields), sorted(enums)


def gen_amct(c: Chooser) -> str:
    """AMCT text built from the message descriptors: a field, a value or a block, nested."""
    from quantspec.dialects import amct_pb2 as pb

    def message(desc: Any, depth: int) -> list[str]:
        out: list[str] = []
        names = list(desc.fields_by_name)
        for _ in range(c.int(0, 5 if depth < 3 else 1)):
            name = c.pick(names) if c.coin(0.9) else c.pick(("bogus", "layer_type", "a"))
            fd = desc.fields_by_name.get(name)
            if fd is not None and fd.message_type is not None and depth < 4:
                body = " ".join(message(fd.message_type, depth + 1))
                out.append(f"{name} {{ {body} }}")
            elif fd is not None and fd.enum_type is not None and c.coin(0.8):
                out.append(f"{name}: {c.pick(list(fd.enum_type.values_by_name) + ['NOPE'])}")
            else:
                out.append(f"{name}: {scalar()}")
        return out

    def scalar() -> str:
        return c.pick(("1", "0", "-1", "8", "16", "0.5", "1e999", "true", "false", '"Conv"',
                       '"conv1"', "'x'", "nan", "inf", "99999999999999999999", '"\\x"'))

    return "\n".join(message(pb.AMCTConfig.DESCRIPTOR, 0)) + "\n"


# ---------------------------------------------------------------------------------------------
# ONNX: protobuf-level mutators
# ---------------------------------------------------------------------------------------------

ONNX_OP_TYPES = ("Conv", "Relu", "MatMul", "Gemm", "Add", "Identity", "Transpose", "Constant",
                 "ConstantOfShape", "LSTM", "BatchNormalization", "If", "Loop", "NoSuchOp", "",
                 "conv", "LayerNormalization", "ConvTranspose")
EXTERNAL_LOCATIONS = ("../escape.bin", "/etc/hostname", "missing.bin", "w.bin", "sub/../w.bin",
                      "", "w.bin\x00x", "./w.bin", "../" * 20 + "etc/passwd", ".")


def _onnx_mutate(op: Callable[[random.Random, Any], None]) -> Mutator:
    def mutate(rng: random.Random, data: bytes) -> bytes:
        import onnx
        from google.protobuf.message import DecodeError

        try:
            m = onnx.ModelProto.FromString(data)
        except (DecodeError, ValueError, RuntimeError):
            return rng.choice(BYTE_MUTATORS)(rng, data)
        try:
            op(rng, m)
            return bytes(m.SerializeToString())
        except Exception:  # noqa: BLE001 - some mutations make a message protobuf won't encode
            return data

    mutate.__name__ = op.__name__
    return mutate


def _names(m: Any) -> list[str]:
    g = m.graph
    out = [i.name for i in g.input] + [i.name for i in g.initializer]
    out += [o for n in g.node for o in n.output]
    return out or ["x"]


def onnx_delete(rng: random.Random, m: Any) -> None:
    g = m.graph
    fields = [f for f in (g.node, g.initializer, g.input, g.output, g.value_info) if len(f)]
    if fields:
        f = rng.choice(fields)
        del f[rng.randrange(len(f))]


def onnx_rewire(rng: random.Random, m: Any) -> None:
    g = m.graph
    if not len(g.node):
        return
    i = rng.randrange(len(g.node))
    node = g.node[i]
    later = [o for n in g.node[i:] for o in n.output]
    choice = rng.choice(("", "nope", *later, *_names(m)))
    if len(node.input) and rng.random() < 0.7:
        node.input[rng.randrange(len(node.input))] = choice  # cycles, self-loops, dangling
    elif len(node.output):
        node.output[rng.randrange(len(node.output))] = rng.choice(("", *_names(m)))
    else:
        node.input.append(choice)


def onnx_duplicate_node(rng: random.Random, m: Any) -> None:
    g = m.graph
    if len(g.node):
        n = g.node[rng.randrange(len(g.node))]
        g.node.insert(rng.randrange(len(g.node) + 1), copy.deepcopy(n))


def onnx_op_type(rng: random.Random, m: Any) -> None:
    g = m.graph
    if len(g.node):
        n = g.node[rng.randrange(len(g.node))]
        n.op_type = rng.choice(ONNX_OP_TYPES)
        if rng.random() < 0.3:
            n.domain = rng.choice(("", "ai.onnx", "com.microsoft", "custom", "ai.onnx.ml"))


def onnx_dtype(rng: random.Random, m: Any) -> None:
    g = m.graph
    dtype = rng.choice((*range(0, 24), 99, 2**31 - 1))
    targets = [*g.initializer]
    if targets and rng.random() < 0.5:
        rng.choice(targets).data_type = dtype
    else:
        vis = [*g.input, *g.output, *g.value_info]
        if vis:
            rng.choice(vis).type.tensor_type.elem_type = dtype


def onnx_shape(rng: random.Random, m: Any) -> None:
    g = m.graph
    dims = rng.choice(([], [0], [-1], [2**62], [1] * 40, [3, 0, 5]))
    if len(g.initializer) and rng.random() < 0.5:
        t = rng.choice(list(g.initializer))
        del t.dims[:]
        t.dims.extend(dims)
    else:
        vis = [*g.input, *g.output, *g.value_info]
        if vis:
            shape = rng.choice(vis).type.tensor_type.shape
            del shape.dim[:]
            for d in dims:
                shape.dim.add().dim_value = d
            if rng.random() < 0.3:
                shape.dim.add().dim_param = rng.choice(("N", "", "x" * 300))


def onnx_external(rng: random.Random, m: Any) -> None:
    import onnx

    g = m.graph
    if not len(g.initializer):
        return
    t = g.initializer[rng.randrange(len(g.initializer))]
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    del t.external_data[:]
    e = t.external_data.add()
    e.key, e.value = "location", rng.choice(EXTERNAL_LOCATIONS)
    if rng.random() < 0.5:
        e = t.external_data.add()
        e.key, e.value = rng.choice(("offset", "length", "checksum", "bogus")), rng.choice(
            ("0", "4", "-1", "abc", "99999999999", ""))


def onnx_attribute(rng: random.Random, m: Any) -> None:
    import onnx

    g = m.graph
    if not len(g.node):
        return
    n = g.node[rng.randrange(len(g.node))]
    if len(n.attribute) and rng.random() < 0.6:
        a = n.attribute[rng.randrange(len(n.attribute))]
        a.type = rng.choice(range(0, 15))
        if rng.random() < 0.3:
            a.ClearField("ints")
            a.ClearField("i")
    else:
        a = n.attribute.add()
        a.name = rng.choice(("value", "group", "transB", "axis", "then_branch", "x"))
        kind = rng.choice(("int", "tensor", "graph", "float", "ints"))
        if kind == "int":
            a.type, a.i = onnx.AttributeProto.INT, rng.choice((0, 1, -1, 2**62))
        elif kind == "tensor":
            a.type = onnx.AttributeProto.TENSOR
            a.t.data_type = rng.choice((0, 1, 7, 99))
            a.t.dims.extend(rng.choice(([], [2], [-1])))
        elif kind == "graph":
            a.type = onnx.AttributeProto.GRAPH
            a.g.CopyFrom(copy.deepcopy(g))
        elif kind == "float":
            a.type, a.f = onnx.AttributeProto.FLOAT, rng.choice((0.0, float("nan"), 1e38))
        else:
            a.type = onnx.AttributeProto.INTS
            a.ints.extend([1, 2, 3])


def onnx_header(rng: random.Random, m: Any) -> None:
    which = rng.randrange(4)
    if which == 0:
        m.ir_version = rng.choice((0, 1, 3, 8, 10, 99, -1))
    elif which == 1:
        del m.opset_import[:]
        if rng.random() < 0.5:
            op = m.opset_import.add()
            op.domain, op.version = rng.choice(("", "ai.onnx", "x")), rng.choice((0, 1, 17, 999))
    elif which == 2:
        m.ClearField("graph")
    else:
        m.graph.name = "g" * rng.choice((0, 1, 100_000))


ONNX_MUTATORS: tuple[Mutator, ...] = tuple(_onnx_mutate(f) for f in (
    onnx_delete, onnx_rewire, onnx_duplicate_node, onnx_op_type, onnx_dtype, onnx_shape,
    onnx_external, onnx_attribute, onnx_header)) + BYTE_MUTATORS


def onnx_seed_models() -> dict[str, bytes]:
    """Small models built here (every structure graph.py handles), serialized."""
    import numpy as np
    from models import conv_relu_add, model
    from onnx import TensorProto, helper, numpy_helper

    def init(name: str, *shape: int) -> Any:
        return numpy_helper.from_array(np.ones(shape, np.float32), name)

    out = {"conv_relu_add": conv_relu_add()}
    out["matmul_transpose"] = model([
        helper.make_node("Transpose", ["wt"], ["w"], name="tr", perm=[1, 0]),
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b"], ["y"], name="add"),
    ], {"x": [2, 4]}, {"y": [2, 3]}, [init("wt", 3, 4), init("b", 3)])
    const = helper.make_node("Constant", [], ["c"], name="const",
                             value=numpy_helper.from_array(np.ones(4, np.float32)))
    out["constant_gemm"] = model([
        const,
        helper.make_node("Identity", ["c"], ["ci"], name="id"),
        helper.make_node("Gemm", ["x", "w", "ci"], ["y"], name="gemm", transB=1),
    ], {"x": [1, 4]}, {"y": [1, 4]}, [init("w", 4, 4)])
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    out["if_subgraph"] = model([
        helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        helper.make_node("Cast", ["s"], ["cond"], name="cast", to=TensorProto.BOOL),
        helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then, else_branch=then),
    ], {"x": [1, 4]}, {"y": [1, 4]}, [])
    ext = conv_relu_add()
    w = ext.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", "576")):
        e = w.external_data.add()
        e.key, e.value = k, v
    out["external_data"] = ext
    return {k: v.SerializeToString() for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Front ends
# ---------------------------------------------------------------------------------------------


@dataclass
class FrontEnd:
    name: str
    suffix: str
    read: Callable[[bytes], Any]
    corpus: Callable[[], list[Path]]
    mutators: tuple[Mutator, ...]
    generate: Callable[[Chooser], bytes] | None = None
    builtin: Callable[[], dict[str, bytes]] = field(default=lambda: {})
    generate_share: float = 0.15  # of the long run's inputs, when there are seeds to mutate

    def seeds(self) -> list[tuple[str, bytes]]:
        out = [(str(p), p.read_bytes()) for p in self.corpus()]
        out += sorted(self.builtin().items())
        return out


def _config_reader(dialect: str, suffix: str) -> Callable[[bytes], Any]:
    """bytes -> profile the way the CLI reads a file: decode, detect, read in ``dialect``."""

    def read(data: bytes) -> Any:
        from quantspec import dialects
        from quantspec.fileio import MAX_INPUT_BYTES, decode
        from quantspec.lang.load import read_profile

        file = f"fuzz{suffix}"
        if len(data) > MAX_INPUT_BYTES:
            return None  # read_text stops these before decoding (E102)
        text = decode(data, file)
        dialects.detect(text, file)
        dialects.detect(text, "fuzz.json")
        return read_profile(text, file, dialect)

    return read


_ONNX_DIR: list[Path] = []


def _onnx_dir() -> Path:
    if not _ONNX_DIR:
        d = Path(tempfile.mkdtemp(prefix="qs-fuzz-onnx-")) / "model"
        d.mkdir()
        (d / "w.bin").write_bytes(bytes(range(256)) * 16)
        (d.parent / "escape.bin").write_bytes(b"\0" * 64)
        _ONNX_DIR.append(d)
    return _ONNX_DIR[0]


def read_onnx(data: bytes) -> Any:
    """Graph.load (structure) and onnx_io.load_model (weights, external data checked)."""
    from quantspec.graph import Graph
    from quantspec.onnx_io import load_model

    path = _onnx_dir() / "model.onnx"
    path.write_bytes(data)
    graph = Graph.load(path)
    load_model(path)
    return graph


def _files(root: Path, *globs: str) -> list[Path]:
    if not root.exists():
        return []
    out: set[Path] = set()
    for g in globs:
        out.update(p for p in root.glob(g) if p.is_file())
    return sorted(out)


def _corpus(*parts: tuple[Path, tuple[str, ...]]) -> Callable[[], list[Path]]:
    return lambda: [p for root, globs in parts for p in _files(root, *globs)]


CORPUS = SHARED / "corpus"


def _vocab_aimet() -> Vocab:
    schema = REPO / "src" / "quantspec" / "schemas" / "aimet_quantsim_config.json"
    keys, strings = _schema_words(schema)
    return Vocab(keys, (*strings, "Conv", "Relu", "Gemm", "MatMul", "int", "float"),
                 ("defaults", "params", "op_type", "supergroups", "model_input", "model_output",
                  "supergroup_pass_list"))


def _vocab_vitis() -> Vocab:
    from quantspec.dialects import vitis

    schema = REPO / "src" / "quantspec" / "schemas" / "vitis_quant_config.json"
    keys, strings = _schema_words(schema)
    return Vocab((*keys, *vitis.KINDS, *vitis.PARAM_KEYS, *vitis.LAYER_KEYS),
                 (*strings, *vitis.METHODS, *vitis.SCALE_TYPES, *vitis.ROUND_MODES,
                  "torch.nn.Conv2d", "CPU", "DPU"), vitis.TOP_KEYS)


def _vocab_encodings() -> Vocab:
    d = REPO / "src" / "quantspec" / "schemas"
    keys, strings = _schema_words(d / "encodings_legacy.json", d / "encodings_v1.json",
                                  d / "encodings_v2.json")
    return Vocab(keys, (*strings, "0.6.1", "1.0.0", "2.0.0", "2.1.0", "PER_TENSOR",
                        "PER_CHANNEL", "LPBQ", "INT", "FLOAT", "int8", "uint8"),
                 ("version", "activation_encodings", "param_encodings", "encodings",
                  "quantizer_args", "producer"))


def _json_frontend(name: str, suffix: str, vocab: Callable[[], Vocab],
                   corpus: Callable[[], list[Path]]) -> FrontEnd:
    v = vocab()
    return FrontEnd(name, suffix, _config_reader(name, suffix), corpus,
                    json_mutators(v) + BYTE_MUTATORS,
                    lambda c: json_dump(gen_json(c, v), 2).encode())


def frontends() -> dict[str, FrontEnd]:
    qspec_words = [*_qspec_vocab()]
    fields, enums = _amct_words()
    amct_words = [*fields, *enums, "{", "}", "<", ">", ":", ";", ",", "[", "]", '"x"', "'",
                  "true", "false", "1", "-1", "0.5"]
    out = {
        "qspec": FrontEnd(
            "qspec", ".qspec", _config_reader("qspec", ".qspec"),
            _corpus((FIXTURES, ("**/*.qspec",)),
                    (REPO / "src" / "quantspec" / "stdlib_profiles", ("**/*.qspec",)),
                    (REPO / "examples", ("**/*.qspec",)), (REPO / "tests", ("**/*.qspec",))),
            token_mutators(_QSPEC_TOKEN, qspec_words, _qspec_extras())
            + (insert_words(qspec_words),) + BYTE_MUTATORS,
            lambda c: gen_qspec(c).encode(),
            lambda: {"generated-docs": _docs_qspec()},
        ),
        "aimet": _json_frontend("aimet", ".json", _vocab_aimet, _corpus(
            (CORPUS / "aimet" / "configs", ("*.json", "tests/*.json")),
            (CORPUS / "aimet" / "conformance" / "configs", ("*.json",)),
            (REPO / "examples", ("**/*.json",)), (FIXTURES / "aimet", ("*.json",)))),
        "vitis": _json_frontend("vitis", ".json", _vocab_vitis, _corpus(
            (CORPUS / "vitis", ("**/*.json",)), (FIXTURES / "vitis", ("*.json",)))),
        "encodings": _json_frontend("encodings", ".encodings", _vocab_encodings, _corpus(
            (CORPUS / "aimet" / "encodings", ("*",)),
            (CORPUS / "aimet" / "conformance" / "encodings", ("*.encodings",)),
            (FIXTURES / "encodings", ("*",)))),
        "amct": FrontEnd(
            "amct", ".cfg", _config_reader("amct", ".cfg"),
            _corpus((CORPUS / "amct", ("**/*.cfg",)), (FIXTURES / "amct", ("*.cfg",))),
            token_mutators(_AMCT_TOKEN, amct_words, _amct_extras())
            + (insert_words(amct_words),) + BYTE_MUTATORS,
            lambda c: gen_amct(c).encode(),
        ),
        "onnx": FrontEnd(
            "onnx", ".onnx", read_onnx,
            _corpus((CORPUS / "aimet" / "conformance" / "models", ("*.onnx",))),
            ONNX_MUTATORS, None, onnx_seed_models,
        ),
    }
    return out


def _qspec_vocab() -> list[str]:
    from quantspec import ir
    from quantspec.lang import settings as S
    from quantspec.lang.parse import KEYWORDS, SLOT_NAMES

    return sorted({*KEYWORDS, *SLOT_NAMES, *ir.FIELDS, *S.FLAG_WORDS, *S.KEY_ALIASES,
                   *ir.CALIBRATION_METHODS, *ir.TIE_MODES, *ir.GRAPH_PASSES, *ir.TRANSFORMS,
                   *ir.OPTION_DEFAULTS, "Conv", "Relu", "MatMul", "{", "}", "[", "]", "(", ")",
                   ":", ",", "|", "->", "=", "==", ">", '"x"', '"', "like", "input", "output",
                   "int8", "uint8", "int16", "float16", "null", "true", "#"})


def _docs_qspec() -> bytes:
    """The ``qspec`` code blocks of docs/language.md, joined (a seed with every construct)."""
    doc = REPO / "docs" / "language.md"
    if not doc.exists():
        return b""
    blocks = re.findall(r"```qspec\n(.*?)```", doc.read_text("utf-8"), re.S)
    return "\n".join(blocks).encode()


# ---------------------------------------------------------------------------------------------
# Running one input
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str  # "ok" | "error" | "crash" | "hang"
    seconds: float  # CPU time of this process (not inflated by a busy machine)
    code: str = ""
    detail: str = ""  # crash: exception type and message, and the traceback
    wall: float = 0.0


def run_one(fe: FrontEnd, data: bytes) -> Outcome:
    w0, t0 = time.perf_counter(), time.process_time()

    def done(status: str, code: str = "", detail: str = "") -> Outcome:
        return Outcome(status, time.process_time() - t0, code, detail, time.perf_counter() - w0)

    try:
        fe.read(data)
    except QuantspecError as exc:
        return done("error", exc.code)
    except Exception as exc:  # noqa: BLE001 - anything else is the bug being looked for
        return done("crash", "", f"{type(exc).__name__}: {str(exc)[:300]}\n"
                    f"{traceback.format_exc()}")
    return done("ok")


def mutate(fe: FrontEnd, rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    """1-3 mutations of ``data``; returns the input and the mutator names (for the report)."""
    names = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        m = rng.choice(fe.mutators)
        try:
            data = m(rng, data)
        except (ValueError, TypeError, RecursionError, MemoryError):  # a mutator's own limit
            names.append(m.__name__ + "(failed)")
            continue
        names.append(m.__name__)
    return data, names


def crash_signature(outcome: Outcome) -> str:
    """Exception type and innermost quantspec frame: one line per distinct bug."""
    first = outcome.detail.split("\n", 1)[0].split(":", 1)[0]
    frames = re.findall(r'File "([^"]*quantspec[^"]*)", line (\d+), in (\w+)', outcome.detail)
    where = f"{os.path.basename(frames[-1][0])}:{frames[-1][1]} {frames[-1][2]}" if frames else ""
    return f"{first} at {where}" if where else first


# ---------------------------------------------------------------------------------------------
# Compile stage: generated ONNX graphs x profiles
# ---------------------------------------------------------------------------------------------
#
# An input of the ``compile`` front end is a (model, profile) pair packed into one file (a JSON
# header line, the profile's bytes, the model's bytes: :func:`pack_case`). Reading it loads the
# profile the way the CLI does, builds the graph view and compiles; beyond "a Plan or a
# QuantspecError", the plan must validate against the plan schema, compile to the same text
# twice without changing the graph, keep ``shared_with`` symmetric and inside the plan, name a
# rule of the profile (or a derivation) in every ``why``, and ``explain`` every tensor.

_FLOAT, _F16 = 1, 10  # onnx.TensorProto.FLOAT, FLOAT16
_INT8, _UINT8, _INT32, _INT64, _BOOL = 3, 2, 6, 7, 9


@dataclass
class _Val:
    """A tensor later nodes may read: its name, (true) shape and element type."""

    name: str
    shape: tuple[int, ...]
    elem: int = _FLOAT


@dataclass
class GraphInfo:
    """What a profile generator needs to know about a generated graph to hit it."""

    op_types: list[str] = field(default_factory=list)
    node_names: list[str] = field(default_factory=list)
    tensors: list[str] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)  # (producer op, consumer op)


class _GraphGen:
    """Random graphs that are valid (or nearly: see ``gen_graph``) over the op types that
    matter to quantization, with their shapes tracked so parameters have the right ranks."""

    def __init__(self, c: Chooser, odd: bool = True) -> None:
        self.c = c
        self.odd = odd  # now and then an odd edit, nodes out of order
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.inputs: list[Any] = []
        self.floats: list[_Val] = []  # float activations
        self.others: list[_Val] = []  # int / bool activations
        self.by_shape: dict[tuple[tuple[int, ...], int], list[str]] = {}  # shareable inits
        self.node_names: list[str] = []
        self.n = 0

    # -- names and initializers -----------------------------------------------------------
    def tname(self, prefix: str = "t") -> str:
        self.n += 1
        if self.c.coin(0.1):  # names as exporters write them
            return self.c.pick((f"{prefix}{self.n}:0", f"blk.{self.n}/{prefix}",
                                f"{prefix} {self.n}", f"/m/{prefix}_{self.n}/out"))
        return f"{prefix}{self.n}"

    def nname(self, op: str) -> str:
        self.n += 1
        r = self.c.int(0, 99)
        if r < 6:
            name = ""  # Graph names it "<op>_<index>"
        elif r < 10 and self.node_names:
            name = self.c.pick(self.node_names)  # duplicate node names
        elif r < 20:
            name = f"layer.{self.n}.{op.lower()}"
        else:
            name = f"{op.lower()}{self.n}"
        if name:
            self.node_names.append(name)
        return name

    def init(self, shape: tuple[int, ...], elem: int = _FLOAT, values: Any = None,
             share: bool = True) -> str:
        import numpy as np
        from onnx import helper, numpy_helper

        key = (shape, elem)
        if share and values is None and key in self.by_shape and self.c.coin(0.25):
            return self.c.pick(self.by_shape[key])  # one initializer read by several ops
        name = self.tname("w" if elem in (_FLOAT, _F16) else "k")
        if values is not None:
            arr = np.asarray(values, dtype={_INT64: np.int64, _FLOAT: np.float32}[elem])
            self.inits.append(numpy_helper.from_array(arr.reshape(shape), name))
        elif elem == _BOOL:
            self.inits.append(numpy_helper.from_array(np.ones(shape, bool), name))
        elif elem in (_FLOAT, _F16):
            dt = np.float32 if elem == _FLOAT else np.float16
            self.inits.append(numpy_helper.from_array(np.full(shape, 0.5, dt), name))
        else:
            tp = helper.tensor_dtype_to_np_dtype(elem)
            self.inits.append(numpy_helper.from_array(np.zeros(shape, tp), name))
        if values is None:
            self.by_shape.setdefault(key, []).append(name)
        return name

    def param(self, shape: tuple[int, ...]) -> str:
        """A float parameter: an initializer (maybe shared), or one behind a Constant or an
        Identity node (graph.py follows both)."""
        import numpy as np
        from onnx import numpy_helper

        how = self.c.int(0, 9)
        if how == 0:
            out = self.tname("c")
            value = numpy_helper.from_array(np.full(shape, 0.25, np.float32), out)
            self.add("Constant", [], [out], value=value)
            return out
        name = self.init(shape)
        if how == 1:
            out = self.tname("id")
            self.add("Identity", [name], [out])
            return out
        return name

    def add(self, op: str, ins: list[str], outs: list[str], domain: str = "",
            **attrs: Any) -> Any:
        from onnx import helper

        node = helper.make_node(op, ins, outs, name=self.nname(op), domain=domain or None,
                                **attrs)
        self.nodes.append(node)
        return node

    def val(self, shape: tuple[int, ...], elem: int = _FLOAT, prefix: str = "t") -> _Val:
        v = _Val(self.tname(prefix), tuple(shape), elem)
        (self.floats if elem in (_FLOAT, _F16) else self.others).append(v)
        return v

    # -- graph inputs ---------------------------------------------------------------------
    def graph_input(self, shape: tuple[int, ...], elem: int = _FLOAT) -> _Val:
        from onnx import helper

        v = _Val(self.tname("in"), shape, elem)
        dims: list[Any] = list(shape)
        if dims and self.c.coin(0.15):
            dims[0] = "N"  # a symbolic batch dimension
        self.inputs.append(helper.make_tensor_value_info(v.name, elem, dims))
        return v

    def start(self) -> None:
        c = self.c
        family = c.pick(("image", "image", "image", "conv1d", "conv3d", "vector", "sequence",
                         "tokens"))
        if family == "image":
            s = c.int(2, 4) * 2
            shape: tuple[int, ...] = (1, c.pick((1, 2, 3, 4, 8)), s, s)
        elif family == "conv1d":
            shape = (1, c.pick((1, 2, 4)), c.pick((4, 8)))
        elif family == "conv3d":
            shape = (1, c.pick((1, 2, 4)), 2, 4, 4)
        elif family == "vector":
            shape = (c.pick((1, 2)), c.pick((4, 8, 16)))
        else:
            shape = (1, c.pick((2, 4)), c.pick((4, 8)))
        if family == "tokens":  # int64 ids -> Gather(embedding)
            ids = self.graph_input(shape[:2], _INT64)
            self.others.append(ids)
            table = self.init((c.pick((8, 16)), shape[2]))
            out = self.val(shape)
            self.add("Gather", [table, ids.name], [out.name], axis=0)
        else:
            self.floats.append(self.graph_input(shape))
        if c.coin(0.25):  # a second input of the same shape (residuals, Concat, Where)
            self.floats.append(self.graph_input(self.floats[-1].shape))
        if c.coin(0.1):  # float16 input, cast to float
            h = self.graph_input(self.floats[-1].shape, _F16)
            self.others.append(h)
            out = self.val(h.shape)
            self.add("Cast", [h.name], [out.name], to=_FLOAT)
        if c.coin(0.1):  # a bool input (a Where condition)
            self.others.append(self.graph_input(self.floats[0].shape, _BOOL))
        if c.coin(0.05):  # an input nothing reads
            self.graph_input((1, 4))

    # -- ops ------------------------------------------------------------------------------
    def ops_for(self, x: _Val) -> list[str]:
        r = len(x.shape)
        if r == 0:  # a scalar (Gather with a scalar index)
            return ["binary", "unary", "cast", "shape", "unknown", "qdq"]
        ops = ["binary", "binary", "unary", "unary", "unary", "concat", "transpose", "cast",
               "shape", "unknown", "qdq", "where", "gather"]
        if r in (3, 4, 5):
            ops += ["conv", "conv", "conv", "convtranspose", "batchnorm", "instancenorm", "gap",
                    "pool"]
        if r >= 2:
            ops += ["matmul", "matmul", "layernorm", "reshape", "flatten", "layer_norm_motif",
                    "rms_norm_motif", "masked_softmax"]
        if r == 2:
            ops += ["gemm", "gemm", "gemm"]
        if r == 4:
            ops += ["resize"]
        if r == 3:
            ops += ["rnn"]
        if r >= 2 and x.shape[1] >= 2 and x.shape[1] % 2 == 0:
            ops += ["split"]
        if x.shape and x.shape[-1] >= 2:
            ops += ["slice"]
        if r >= 2:
            ops += ["batchnorm"]
        return ops

    def step(self, x: _Val) -> None:
        getattr(self, "op_" + self.c.pick(self.ops_for(x)))(x)

    def op_conv(self, x: _Val) -> None:
        c = self.c
        n, ch, *spatial = x.shape
        k = c.pick((1, 3))
        kind = c.pick(("plain", "plain", "depthwise", "grouped"))
        if kind == "depthwise":
            group, co = ch, ch * c.pick((1, 2))
            w = self.param((co, 1, *[k] * len(spatial)))
        elif kind == "grouped" and ch % 2 == 0:
            group, co = 2, c.pick((2, 4, 8))
            w = self.param((co, ch // 2, *[k] * len(spatial)))
        else:
            group, co = 1, c.pick((1, 2, 4, 8))
            w = self.param((co, ch, *[k] * len(spatial)))
        ins = [x.name, w] + ([self.param((co,))] if c.coin(0.7) else [])
        attrs: dict[str, Any] = {"pads": [k // 2] * 2 * len(spatial)}
        if group != 1 or c.coin(0.2):
            attrs["group"] = group
        if c.coin(0.3):
            attrs["kernel_shape"] = [k] * len(spatial)
        out = self.val((n, co, *spatial))
        self.add("Conv", ins, [out.name], **attrs)

    def op_convtranspose(self, x: _Val) -> None:
        c = self.c
        n, ch, *spatial = x.shape
        k = c.pick((1, 3))
        if c.coin(0.3):
            group, co = ch, ch
            w = self.param((ch, 1, *[k] * len(spatial)))
        else:
            group, co = 1, c.pick((1, 2, 4))
            w = self.param((ch, co, *[k] * len(spatial)))
        ins = [x.name, w] + ([self.param((co,))] if c.coin(0.5) else [])
        attrs: dict[str, Any] = {"pads": [k // 2] * 2 * len(spatial)}
        if group != 1:
            attrs["group"] = group
        out = self.val((n, co, *spatial))
        self.add("ConvTranspose", ins, [out.name], **attrs)

    def op_gemm(self, x: _Val) -> None:
        c = self.c
        n, k = x.shape
        m = c.pick((1, 2, 4, 8))
        trans_b = c.int(0, 1)
        ins = [x.name, self.param((m, k) if trans_b else (k, m))]
        bias = c.int(0, 3)
        if bias == 1:
            ins.append(self.param((m,)))
        elif bias == 2:
            ins.append(self.param((1, m)))
        attrs: dict[str, Any] = {}
        if trans_b or c.coin(0.3):
            attrs["transB"] = trans_b
        if c.coin(0.1):
            attrs["alpha"] = 0.5
        out = self.val((n, m))
        self.add("Gemm", ins, [out.name], **attrs)

    def op_matmul(self, x: _Val) -> None:
        c = self.c
        k = x.shape[-1]
        mode = c.pick(("const", "const", "transposed", "dynamic"))
        if mode == "dynamic":  # two activations: x @ x^T
            perm = list(range(len(x.shape)))
            perm[-1], perm[-2] = perm[-2], perm[-1]
            xt = self.val(tuple(x.shape[i] for i in perm))
            self.add("Transpose", [x.name], [xt.name], perm=perm)
            out = self.val((*x.shape[:-1], x.shape[-2]))
            self.add("MatMul", [x.name, xt.name], [out.name])
            return
        m = c.pick((2, 4, 8))
        if mode == "transposed":  # weight stored [M, K] behind a Transpose (aimet.md B.6)
            wt = self.init((m, k))
            w = self.tname("wT")
            self.add("Transpose", [wt], [w], perm=[1, 0])
        else:
            w = self.param((k, m))
        mm = self.val((*x.shape[:-1], m))
        self.add("MatMul", [x.name, w], [mm.name])
        if c.coin(0.4):  # + rank-1 bias: the matmul_add pass's pattern
            out = self.val(mm.shape)
            b = self.param((m,))
            self.add("Add", [mm.name, b] if c.coin(0.8) else [b, mm.name], [out.name])

    def const_like(self, x: _Val) -> str:
        c = self.c
        r = len(x.shape)
        kind = c.int(0, 3)
        if kind == 0 or r == 0:
            return self.init(())
        if kind == 1:
            return self.init((1,))
        if kind == 2 and r >= 3:
            return self.param((x.shape[1], *[1] * (r - 2)))
        return self.param((x.shape[-1],))

    def op_binary(self, x: _Val) -> None:
        c = self.c
        op = c.pick(("Add", "Add", "Mul", "Mul", "Sub", "Div"))
        same = [v for v in self.floats if v.shape == x.shape and v.elem == x.elem]
        other = c.pick(same).name if c.coin(0.4) else self.const_like(x)  # maybe x itself
        ins = [x.name, other] if c.coin(0.8) else [other, x.name]
        out = self.val(x.shape, x.elem)
        self.add(op, ins, [out.name])

    def op_unary(self, x: _Val) -> None:
        c = self.c
        op = c.pick(("Relu", "Relu", "Sigmoid", "Tanh", "Clip", "Clip", "Softmax", "LeakyRelu",
                     "Identity", "Dropout", "HardSigmoid"))
        out = self.val(x.shape, x.elem)
        ins = [x.name]
        outs = [out.name]
        attrs: dict[str, Any] = {}
        if op == "Clip":
            form = c.int(0, 3)
            if form == 0:
                ins += [self.init((), values=0.0), self.init((), values=6.0)]
            elif form == 1:
                ins += ["", self.init((), values=1.0)]  # no min: an omitted input
            elif form == 2:
                ins += [self.init((), values=-1.0)]
        elif op == "Softmax":
            attrs["axis"] = c.pick((-1, 1))
        elif op == "LeakyRelu":
            attrs["alpha"] = 0.1
        elif op == "Dropout" and c.coin(0.5):
            mask = self.val(x.shape, _BOOL)
            outs.append(mask.name)
        self.add(op, ins, outs, **attrs)

    def op_batchnorm(self, x: _Val) -> None:
        ch = x.shape[1]
        names = [self.param((ch,)) for _ in range(4)]
        if self.c.coin(0.1):
            names[3] = names[2]  # one tensor in two parameter slots
        out = self.val(x.shape)
        self.add("BatchNormalization", [x.name, *names], [out.name])

    def op_instancenorm(self, x: _Val) -> None:
        ch = x.shape[1]
        out = self.val(x.shape)
        self.add("InstanceNormalization", [x.name, self.param((ch,)), self.param((ch,))],
                 [out.name])

    def op_layernorm(self, x: _Val) -> None:
        d = x.shape[-1]
        ins = [x.name, self.param((d,))] + ([self.param((d,))] if self.c.coin(0.7) else [])
        out = self.val(x.shape)
        self.add("LayerNormalization", ins, [out.name], axis=-1)

    def op_concat(self, x: _Val) -> None:
        c = self.c
        same = [v for v in self.floats if v.shape == x.shape and v.elem == x.elem]
        parts = [x] + [c.pick(same) for _ in range(c.int(1, 2))]  # repeats allowed
        axis = c.pick((1, -1)) if len(x.shape) >= 2 else 0
        ax = axis % len(x.shape)
        shape = list(x.shape)
        shape[ax] = sum(p.shape[ax] for p in parts)
        out = self.val(tuple(shape), x.elem)
        self.add("Concat", [p.name for p in parts], [out.name], axis=axis)

    def op_split(self, x: _Val) -> None:
        half = x.shape[1] // 2
        shape = (x.shape[0], half, *x.shape[2:])
        a, b = self.val(shape, x.elem), self.val(shape, x.elem)
        ins = [x.name] + ([self.init((2,), _INT64, [half, half])] if self.c.coin(0.5) else [])
        self.add("Split", ins, [a.name, b.name], axis=1)

    def op_reshape(self, x: _Val) -> None:
        c = self.c
        total = 1
        for d in x.shape:
            total *= d
        if c.coin(0.2):  # Reshape(x, Shape(x)): a computed (int64 activation) shape
            s = self.val((len(x.shape),), _INT64)
            self.add("Shape", [x.name], [s.name])
            out = self.val(x.shape, x.elem)
            self.add("Reshape", [x.name, s.name], [out.name])
            return
        target = c.pick(((x.shape[0], total // x.shape[0]), (total,), tuple(reversed(x.shape))))
        spelled = [-1 if i == 0 and len(target) > 1 and c.coin(0.3) else d
                   for i, d in enumerate(target)]
        out = self.val(target, x.elem)
        shape = self.init((len(spelled),), _INT64, spelled)
        self.add("Reshape", [x.name, shape], [out.name])

    def op_transpose(self, x: _Val) -> None:
        items = list(range(len(x.shape)))
        perm = [items.pop(self.c.int(0, len(items) - 1)) for _ in range(len(x.shape))]
        out = self.val(tuple(x.shape[i] for i in perm), x.elem)
        self.add("Transpose", [x.name], [out.name], perm=perm)

    def op_flatten(self, x: _Val) -> None:
        rest = 1
        for d in x.shape[1:]:
            rest *= d
        out = self.val((x.shape[0], rest), x.elem)
        self.add("Flatten", [x.name], [out.name], axis=1)

    def op_slice(self, x: _Val) -> None:
        end = x.shape[-1] // 2
        ins = [x.name, self.init((1,), _INT64, [0]), self.init((1,), _INT64, [end])]
        if len(x.shape) > 1 or self.c.coin(0.5):  # without axes, the first axis is sliced
            ins.append(self.init((1,), _INT64, [-1]))
        out = self.val((*x.shape[:-1], end), x.elem)
        self.add("Slice", ins, [out.name])

    def op_pool(self, x: _Val) -> None:
        c = self.c
        op = c.pick(("MaxPool", "AveragePool"))
        spatial = x.shape[2:]
        k = 2 if all(d % 2 == 0 for d in spatial) else 1
        out = self.val((*x.shape[:2], *(d // k for d in spatial)), x.elem)
        outs = [out.name]
        if op == "MaxPool" and c.coin(0.2):
            outs.append(self.val(out.shape, _INT64).name)  # Indices: an int64 output
        self.add(op, [x.name], outs, kernel_shape=[k] * len(spatial), strides=[k] * len(spatial))

    def op_gap(self, x: _Val) -> None:
        out = self.val((*x.shape[:2], *[1] * (len(x.shape) - 2)), x.elem)
        self.add("GlobalAveragePool", [x.name], [out.name])

    def op_resize(self, x: _Val) -> None:
        n, ch, h, w = x.shape
        out = self.val((n, ch, 2 * h, 2 * w), x.elem)
        if self.c.coin(0.6):  # a float constant input: Resize scales are never quantized
            scales = self.init((4,), _FLOAT, [1.0, 1.0, 2.0, 2.0])
            self.add("Resize", [x.name, "", scales], [out.name], mode="nearest")
        else:
            sizes = self.init((4,), _INT64, [n, ch, 2 * h, 2 * w])
            self.add("Resize", [x.name, "", "", sizes], [out.name], mode="nearest")

    def op_gather(self, x: _Val) -> None:
        c = self.c
        axis = c.int(0, len(x.shape) - 1)
        if c.coin(0.3):
            idx = self.init((), _INT64, 0)
            shape = x.shape[:axis] + x.shape[axis + 1:]
        else:
            idx = self.init((1,), _INT64, [0])
            shape = x.shape[:axis] + (1,) + x.shape[axis + 1:]
        if not shape:
            shape = ()
        out = self.val(shape, x.elem)
        self.add("Gather", [x.name, idx], [out.name], axis=axis)

    def op_where(self, x: _Val) -> None:
        c = self.c
        conds = [v for v in self.others if v.elem == _BOOL and v.shape == x.shape]
        if conds and c.coin(0.5):
            cond = c.pick(conds).name
        elif c.coin(0.5):
            cond = self.val(x.shape, _BOOL).name
            self.add("Greater", [x.name, self.init(())], [cond])
        else:
            cond = self.init((x.shape[-1],) if x.shape else (), _BOOL)
        out = self.val(x.shape, x.elem)
        self.add("Where", [cond, x.name, self.init(())], [out.name])

    def op_cast(self, x: _Val) -> None:
        c = self.c
        to = c.pick((_INT8, _UINT8, _INT32, _INT64, _F16))
        mid = self.val(x.shape, to)
        self.add("Cast", [x.name], [mid.name], to=to)
        if c.coin(0.6):
            back = self.val(x.shape)
            self.add("Cast", [mid.name], [back.name], to=_FLOAT)

    def op_shape(self, x: _Val) -> None:
        s = self.val((len(x.shape),), _INT64)
        self.add("Shape", [x.name], [s.name])

    def op_unknown(self, x: _Val) -> None:
        c = self.c
        op = c.pick(("MyCustomOp", "FooBar", "Swish", "Conv", "Relu"))
        domain = c.pick(("", "com.example", "custom.ops")) if op not in ("Conv", "Relu") else \
            "com.example"  # a known type in another domain is an unknown op too
        ins = [x.name]
        if c.coin(0.3):
            ins.append(self.init((x.shape[-1],) if x.shape else ()))
        if self.others and c.coin(0.3):
            ins.append(c.pick(self.others).name)
        outs = [self.val(x.shape).name for _ in range(c.int(1, 2))]
        self.add(op, ins, outs, domain=domain)

    def op_qdq(self, x: _Val) -> None:
        """A QuantizeLinear / DequantizeLinear pair (a model that is already quantized)."""
        c = self.c
        zp_type = c.pick((_INT8, _UINT8))
        scale = self.init((), values=0.1)
        zp = self.init((), zp_type)
        q = self.val(x.shape, zp_type)
        self.add("QuantizeLinear", [x.name, scale, zp], [q.name])
        out = self.val(x.shape)
        self.add("DequantizeLinear", [q.name, scale] + ([zp] if c.coin(0.8) else []), [out.name])

    def op_rnn(self, x: _Val) -> None:
        c = self.c
        t, b, i = x.shape
        h = c.pick((2, 4))
        op, gates = c.pick((("LSTM", 4), ("GRU", 3)))
        ins = [x.name, self.param((1, gates * h, i)), self.param((1, gates * h, h))]
        if c.coin(0.6):
            ins.append(self.param((1, 2 * gates * h)))
        if c.coin(0.3):  # no sequence_lens (an omitted input), an initial hidden state
            ins += [""] * (4 - len(ins)) + ["", self.param((1, b, h))]
        y = self.val((t, 1, b, h))
        yh = self.val((1, b, h))
        outs = [y.name, yh.name]
        if op == "LSTM" and c.coin(0.7):
            outs.append(self.val((1, b, h)).name)
        self.add(op, ins, outs, hidden_size=h)

    def _over_root_mean_square(self, x: _Val, eps: float) -> _Val:
        """``x / sqrt(mean(x^2, last axis) + eps)``, decomposed: the tail of both norm motifs."""
        red = x.shape[:-1] + (1,)
        sq = self.val(x.shape)
        self.add("Pow", [x.name, self.init((), values=2.0)], [sq.name])
        mean = self.val(red)
        self.add("ReduceMean", [sq.name], [mean.name], axes=[-1])
        plus = self.val(red)
        self.add("Add", [mean.name, self.init((), values=eps)], [plus.name])
        std = self.val(red)
        self.add("Sqrt", [plus.name], [std.name])
        out = self.val(x.shape)
        self.add("Div", [x.name, std.name], [out.name])
        return out

    def op_layer_norm_motif(self, x: _Val) -> None:
        """A decomposed LayerNorm (the layer_norm pass fuses it)."""
        c = self.c
        red = x.shape[:-1] + (1,)
        mean = self.val(red)
        self.add("ReduceMean", [x.name], [mean.name], axes=[-1])
        sub = self.val(x.shape)
        self.add("Sub", [x.name, mean.name], [sub.name])
        out = self._over_root_mean_square(sub, 1e-5)
        if c.coin(0.7):
            g = self.val(x.shape)
            self.add("Mul", [out.name, self.param((x.shape[-1],))], [g.name])
            if c.coin(0.7):
                bias = self.val(x.shape)
                self.add("Add", [g.name, self.param((x.shape[-1],))], [bias.name])

    def op_rms_norm_motif(self, x: _Val) -> None:
        out = self._over_root_mean_square(x, 1e-6)
        if self.c.coin(0.7):
            g = self.val(x.shape)
            self.add("Mul", [out.name, self.param((x.shape[-1],))], [g.name])

    def op_masked_softmax(self, x: _Val) -> None:
        masked = self.val(x.shape)
        self.add("Add", [x.name, self.init((x.shape[-1],))], [masked.name])
        out = self.val(x.shape)
        self.add("Softmax", [masked.name], [out.name], axis=-1)

    def damage(self) -> None:
        """One edit that keeps the graph loadable (no dangling name, no cycle) but breaks what
        an op expects: missing or omitted inputs and outputs, attributes of the wrong type,
        parameters of odd ranks and element types, op types swapped."""
        from onnx import helper

        c = self.c
        if not self.nodes:
            return
        node = c.pick(self.nodes)
        kind = c.int(0, 9)
        if kind == 0 and len(node.input):  # fewer inputs (a Conv without its weight)
            del node.input[c.int(0, len(node.input) - 1):]
        elif kind == 1 and len(node.input):  # an omitted input: "" (a MatMul without weight)
            node.input[c.int(0, len(node.input) - 1)] = ""
        elif kind == 2 and len(node.output):  # an omitted output
            node.output[c.int(0, len(node.output) - 1)] = ""
        elif kind == 3:  # an attribute of another type or value
            name = c.pick(("group", "transB", "axis", "perm", "kernel_shape", "to", "alpha",
                           "hidden_size"))
            value = c.pick((0, -1, 2, 1000, 2.0, "2", b"\xff", [1, 2], [0.5], ""))
            for a in list(node.attribute):
                if a.name == name:
                    node.attribute.remove(a)
            try:
                node.attribute.append(helper.make_attribute(name, value))
            except (ValueError, TypeError):
                pass
        elif kind == 4:  # another op type, same inputs and outputs
            node.op_type = c.pick(("Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU",
                                   "BatchNormalization", "LayerNormalization", "Relu",
                                   "Transpose", "Identity", "Constant", "Concat", "Split"))
        elif kind == 5:
            node.domain = c.pick(("ai.onnx", "com.example", "quantspec.fused"))
        elif kind == 6 and self.inits:  # a parameter of another rank
            t = c.pick(self.inits)
            del t.dims[:]
            t.dims.extend(c.pick(([], [0], [1], [1, 1, 1, 1, 1, 1], [0, 3])))
            t.ClearField("raw_data")
            del t.float_data[:], t.int64_data[:], t.int32_data[:]
        elif kind == 7 and self.inits:  # a parameter of another element type
            t = c.pick(self.inits)
            t.data_type = c.pick((_INT8, _UINT8, _INT64, _BOOL, 11, 16, 8))  # double, bf16, str
        elif kind == 8:  # the same tensor in every input slot
            if len(node.input):
                first = node.input[0]
                for i in range(len(node.input)):
                    node.input[i] = first
        elif len(node.input):  # a graph input in a parameter slot
            node.input[c.int(0, len(node.input) - 1)] = self.inputs[0].name

    # -- the model ------------------------------------------------------------------------
    def build(self) -> tuple[Any, GraphInfo]:
        from onnx import helper

        c = self.c
        self.start()
        dag = c.coin(0.5)  # a chain mostly reads the last tensor; a DAG any earlier one
        for _ in range(c.int(1, 40) if c.coin(0.05) else c.int(1, 12)):
            xs = [v for v in self.floats if v.elem == _FLOAT]
            if not xs:
                break
            x = xs[-1] if not dag and c.coin(0.85) else c.pick(xs)
            self.step(x)
        consumed = {i for n in self.nodes for i in n.input}
        produced = [v for v in self.floats + self.others if v.name not in
                    {i.name for i in self.inputs}]
        outs: list[_Val] = []
        last = [v for v in self.floats if v.elem == _FLOAT][-1]
        outs.append(last)
        for v in produced:
            if v is last:
                continue
            leaf = v.name not in consumed
            if (leaf and c.coin(0.6)) or c.coin(0.12):  # outputs in the middle of chains too
                outs.append(v)
        real: dict[str, tuple[int, ...]] = {}  # shapes of the outputs added below
        if c.coin(0.05):  # a graph input that is also a graph output
            vi = self.inputs[0]
            outs.append(_Val(vi.name, (), vi.type.tensor_type.elem_type))
            real[vi.name] = next(v.shape for v in (*self.floats, *self.others)
                                 if v.name == vi.name)
        if self.inits and c.coin(0.03):  # an initializer as a graph output
            outs.append(_Val(self.inits[0].name, (), self.inits[0].data_type))
            real[self.inits[0].name] = tuple(self.inits[0].dims)
        for _ in range(c.int(0, 2) if c.coin(0.3) else 0):  # initializers nothing reads
            self.init((3,), c.pick((_FLOAT, _INT64, _F16)), share=False)
        if self.inits and c.coin(0.1):  # an initializer also listed as an input (IR < 4 style)
            i = self.inits[-1]
            self.inputs.append(helper.make_tensor_value_info(i.name, i.data_type,
                                                             list(i.dims)))
        if self.odd:  # now and then an output without a shape
            outputs = [helper.make_tensor_value_info(v.name, v.elem, list(v.shape)
                                                     if c.coin(0.9) and v.shape else None)
                       for v in outs]
        else:
            outputs = [helper.make_tensor_value_info(v.name, v.elem, list(real.get(v.name,
                                                                                  v.shape)))
                       for v in outs]
        if self.odd and c.coin(0.25):  # odd but loadable: exporters and hand edits do it
            for _ in range(c.int(1, 2)):
                self.damage()
        nodes = list(self.nodes)
        if self.odd and len(nodes) > 2 and c.coin(0.05):  # out of topological order, acyclic
            nodes.reverse()
        g = helper.make_graph(nodes, "fuzz", self.inputs, outputs, self.inits)
        opset = c.pick((17, 17, 13))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset),
                                                helper.make_opsetid("com.example", 1),
                                                helper.make_opsetid("custom.ops", 1)])
        m.ir_version = 8
        info = GraphInfo(
            sorted({n.op_type for n in self.nodes}),
            [n.name for n in self.nodes if n.name],
            [v.name for v in (*self.floats, *self.others)] + [i.name for i in self.inits],
        )
        producer = {o: n.op_type for n in self.nodes for o in n.output}
        info.edges = sorted({(producer[i], n.op_type) for n in self.nodes for i in n.input
                             if i in producer})
        return m, info


def gen_graph(c: Chooser, odd: bool = True) -> tuple[Any, GraphInfo]:
    """A random ONNX model (chain or DAG) and what a profile needs to know to hit it. With
    ``odd``, a quarter of the graphs get an edit that breaks what an op expects (see
    ``_GraphGen.damage``) and a few list their nodes out of topological order."""
    return _GraphGen(c, odd).build()


# -- profiles aimed at a graph ------------------------------------------------------------------

_KNOWN_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip", "Sigmoid",
              "Softmax", "BatchNormalization", "LayerNormalization", "InstanceNormalization",
              "Concat", "Split", "Reshape", "Transpose", "Flatten", "Slice", "MaxPool",
              "AveragePool", "GlobalAveragePool", "Resize", "Gather", "Where", "Cast", "Shape",
              "LSTM", "GRU", "Identity", "QuantizeLinear", "DequantizeLinear", "MaskedSoftmax",
              "RMSNormalization", "NoSuchOp")
_PREDICATES = ("depthwise", "conv3d", "dynamic", "grouped", "group > 1", "group == 1",
               "transB == 1", "transB != 0", "axis == -1", "axis >= 1", "alpha < 1",
               "kernel_shape == [3, 3]", 'mode == "nearest"', "hidden_size > 2", "nope",
               "to == 7")
_FLAGS = ("on", "on", "off", "int8", "uint8", "int16", "int4", "int32", "uint16", "float16",
          "float8", "symmetric", "asymmetric", "per_channel", "per_channel", "per_tensor",
          "strict", "narrow", "unsigned", "pow2", "signed", "quantized", "narrow_range",
          "unsigned_symmetric", "strict_symmetric")
_VALUES: dict[str, tuple[str, ...]] = {
    "bits": ("2", "4", "8", "8", "16", "32", "1", "64", "like output", "like input"),
    "min_bits": ("8", "16", "4", "like output"),
    "axis": ("0", "1", "-1", "2", "3", "7", "-9", "like output"),
    "block_size": ("16", "32", "64", "1", "0", "-4", "like input"),
    "scale_type": ("float", "power_of_two", "like output"),
    "rounding": ("half_even", "half_up", "floor", "ceil", "std_round", "like input"),
    "calibration": ("minmax", "percentile(percentile=99.99)", "entropy", "mse",
                    "tf_enhanced", "ifmr(max_percentile=0.999999, search_step=0.01)",
                    "like output"),
    "range": ("[0, 1]", "[-1, 1]", "[0.0, null]", "[null, 6]", "[null, null]",
              "[-1e30, inf]", "[0, 0]", "[0, 1e-30]", "like output", "like input"),
    "encodings": ("[[-1, 1]]", "[[-1, 1], [-2, 2]]", "[[0, 1], [0, 2], [0, 3], [0, 4]]",
                  "[[-1e30, inf]]", "like output"),
    "dtype": ("int", "float", "like output"),
    "symmetric": ("true", "false", "like output", "like input"),
    "signed": ("true", "false", "like input"),
    "per_channel": ("on", "off", "like output"),
    "quantized": ("on", "off", "like output", "like input"),
    "narrow_range": ("true", "like output"),
    "unsigned_symmetric": ("true", "false"),
    "strict_symmetric": ("true", "false"),
}
_SLOTS = ("tensor", "output", "output", "input", "input", "param", "weight", "weight", "bias",
          "constant", "graph_input", "running_mean", "running_var", "weight_r")


def gen_compile_qspec(c: Chooser, info: GraphInfo, base: str | None = None) -> str:
    """A valid .qspec (nearly: a few settings the compiler must reject) whose rules name the
    op types, node names and tensor names of a generated graph, so they select something."""
    ops = info.op_types or ["Conv"]

    def op_type() -> str:
        return c.pick(ops) if c.coin(0.85) else c.pick(_KNOWN_OPS)

    def op_types() -> str:
        return " | ".join(dict.fromkeys(op_type() for _ in range(c.int(1, 3))))

    def item() -> str:
        if c.coin(0.45):
            return c.pick(_FLAGS)
        key = c.pick(tuple(_VALUES))
        return f"{key}: {c.pick(_VALUES[key])}"

    def items(lo: int = 1, hi: int = 3) -> str:
        return "  ".join(item() for _ in range(c.int(lo, hi)))

    def body(slots: Sequence[str] = _SLOTS) -> str:
        parts = []
        for _ in range(c.int(1, 3)):
            if c.coin(0.75):
                slot = c.pick(slots)
                idx = f" {c.int(0, 2)}" if slot in ("input", "output") and c.coin(0.2) else ""
                parts.append(f"{slot}{idx} {{ {items()} }}")
            else:
                parts.append(item())
        return "{ " + "  ".join(parts) + " }"

    def name_glob() -> str:
        names = info.node_names or ["x"]
        n = c.pick(names)
        return c.pick((n, n, n[:2] + "*", "*" + n[-2:], "layer.*", "*", n.replace("1", "?"),
                       "[" + n, "nomatch"))

    def tensor_name() -> str:
        names = info.tensors or ["x"]
        n = c.pick(names)
        return c.pick((n, n, n, n[:1] + "*", "*:0", "w*", "nomatch"))

    def modifiers() -> str:
        return ("final " if c.coin(0.12) else "") + (
            f'group "{c.pick(("g", "h"))}" ' if c.coin(0.1) else "")

    def chain() -> str:
        if info.edges and c.coin(0.8):
            a, b = c.pick(info.edges)
            seq = [a, b]
            nxt = [e[1] for e in info.edges if e[0] == b]
            if nxt and c.coin(0.4):
                seq.append(c.pick(nxt))
            return " -> ".join(seq if c.coin(0.7) else [f"{s} | {op_type()}" for s in seq])
        return " -> ".join(op_types() for _ in range(c.int(2, 3)))

    def statement() -> str:
        kind = c.int(0, 19)
        if kind <= 2:
            return f"{modifiers()}defaults {body()}"
        if kind <= 7:
            pred = ""
            if c.coin(0.25):
                pred = " (" + ", ".join(c.pick(_PREDICATES) for _ in range(c.int(1, 2))) + ")"
            return f"{modifiers()}op {op_types()}{pred} {body()}"
        if kind == 8:
            names = ", ".join(f'"{name_glob()}"' for _ in range(c.int(1, 2)))
            return f"{modifiers()}layer {names} {body()}"
        if kind == 9:
            names = ", ".join(f'"{tensor_name()}"' for _ in range(c.int(1, 2)))
            return f"{modifiers()}tensor {names} {{ {items()} }}"
        if kind == 10:
            if c.coin(0.5):  # `model input` has the slots tensor and constant only
                return f"{modifiers()}model input {body(('tensor', 'constant'))}"
            return f"{modifiers()}model output {body(('tensor',))}"
        if kind in (11, 12):
            return f"fuse {chain()}"
        if kind in (13, 14):
            mode = c.pick(("output_to_input", "output_to_input", "inputs_to_output", "states"))
            through = f" through {op_types()}" if c.coin(0.3) else ""
            return f"tie {mode}: {op_types()}{through}"
        if kind == 15:
            names = [tensor_name() for _ in range(c.int(2, 3))]
            return "share " + ", ".join(f'"{n}"' for n in names)
        if kind == 16:
            opts = {"fusion": ("aimet1", "aimet2"), "conflicts": ("error", "later_wins"),
                    "per_channel_fallback": ("error", "per_tensor"),
                    "model_output": ("terminal", "graph")}
            chosen = [c.pick(tuple(opts)) for _ in range(c.int(1, 3))]
            return "options { " + "  ".join(f"{k}: {c.pick(opts[k])}" for k in chosen) + " }"
        if kind == 17:
            names = ("matmul_add", "layer_norm", "rms_norm", "masked_softmax")
            return "passes " + ", ".join(dict.fromkeys(c.pick(names)
                                                       for _ in range(c.int(1, 4))))
        if kind == 18:
            hook = c.pick(("aimet.exception_rules", "aimet.param_symmetry_to_inputs",
                           "aimet.model_input_required"))
            meta = ""
            if c.coin(0.5):
                meta = "\nmeta { aimet.hw_version: " + c.pick(("V66", "V73", "V79")) + " }"
            if c.coin(0.3):
                meta += '\nmeta { aimet.weight_symmetry: [["", true], ["Conv", false]] }'
            return f'post "{hook}"{meta}'
        return c.pick(("calibrate { method: percentile(percentile=99.9)  batches: 2 }",
                       "transform { fold_batchnorm: on  cle: off }", "meta { note: 1 }"))

    head = ""
    if base is not None or c.coin(0.4):
        head = 'profile "fuzz"' + (f' extends "{base}"' if base else "") + "\n"
    return head + "\n".join(statement() for _ in range(c.int(1, 9))) + "\n"


# -- (model, profile) cases ---------------------------------------------------------------------

CASE_FORMAT = "quantspec-fuzz-case/1"


def pack_case(model: bytes, profile_file: str, profile: bytes, label: str = "",
              options: dict[str, Any] | None = None) -> bytes:
    """One file per (model, profile) pair: a JSON header line, the profile, the model."""
    header = {"format": CASE_FORMAT, "profile": profile_file, "profile_bytes": len(profile),
              "label": label, "options": options or {}}
    return json.dumps(header, sort_keys=True).encode() + b"\n" + profile + model


def unpack_case(data: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """(header, profile bytes, model bytes); ValueError when ``data`` is not a case."""
    head, sep, rest = data.partition(b"\n")
    header = json.loads(head.decode("utf-8")) if sep else None
    if not isinstance(header, dict) or header.get("format") != CASE_FORMAT:
        raise ValueError("not a quantspec fuzz case")
    n = int(header["profile_bytes"])
    return header, rest[:n], rest[n:]


def write_case(data: bytes, directory: Path) -> tuple[Path, Path, list[str]]:
    """Unpack a case into files: (profile path, model path, CLI options of the profile)."""
    header, profile, model = unpack_case(data)
    directory.mkdir(parents=True, exist_ok=True)
    ppath = directory / os.path.basename(str(header["profile"]) or "profile.qspec")
    mpath = directory / "model.onnx"
    ppath.write_bytes(profile)
    mpath.write_bytes(model)
    flags = {"param_bw": "--param-bw", "act_bw": "--act-bw", "version": "--aimet-version"}
    args = [x for k, v in sorted(header.get("options", {}).items()) if k in flags
            for x in (flags[k], str(v))]
    return ppath, mpath, args


_PROFILE_POOL: list[tuple[str, str, bytes]] = []


def profile_pool() -> list[tuple[str, str, bytes]]:
    """Every profile that loads, as (label, file name, bytes): the stdlib profiles, the
    fixtures under tests/fixtures and, when ../shared is present, the AIMET / Vitis / AMCT
    corpus and its encodings. Built once per process, in a stable order."""
    if _PROFILE_POOL:
        return _PROFILE_POOL
    from quantspec.lang.load import loads, stdlib_names

    out: list[tuple[str, str, bytes]] = [(f"stdlib:{n}", "fuzz.qspec", f'extends "{n}"\n'.encode())
                                         for n in stdlib_names()]
    files = _files(FIXTURES, "**/*.qspec", "vitis/*.json", "amct/*.cfg", "encodings/*",
                   "lint/*.json", "lint/*.cfg")
    files += _files(CORPUS / "aimet" / "configs", "*.json", "tests/*.json")
    files += _files(CORPUS / "aimet" / "conformance" / "configs", "*.json")
    files += _files(CORPUS / "aimet" / "encodings", "*")
    files += _files(CORPUS / "aimet" / "conformance" / "encodings", "*.encodings")
    files += _files(CORPUS / "vitis", "**/*.json")
    files += _files(CORPUS / "amct", "**/*.cfg")
    for p in files:
        rel = p.relative_to(FIXTURES if p.is_relative_to(FIXTURES) else SHARED)
        out.append((f"{'fixture' if p.is_relative_to(FIXTURES) else 'corpus'}:{rel}", p.name,
                    p.read_bytes()))
    for label, name, data in out:
        try:
            loads(data.decode("utf-8-sig"), name)
        except (QuantspecError, UnicodeDecodeError):
            continue  # the invalid fixtures and corpus files: the front ends' business
        _PROFILE_POOL.append((label, name, data))
    return _PROFILE_POOL


def gen_case_profile(c: Chooser, info: GraphInfo) -> tuple[str, bytes, str, dict[str, Any]]:
    """(file name, bytes, label, reader options) of a profile for a generated graph."""
    from quantspec.lang.load import stdlib_names

    r = c.int(0, 99)
    if r < 45:
        return "fuzz.qspec", gen_compile_qspec(c, info).encode(), "generated", {}
    if r < 60:
        base = c.pick(stdlib_names())
        return ("fuzz.qspec", gen_compile_qspec(c, info, base).encode(),
                f"generated+{base}", {})
    pool = profile_pool()
    kind = "stdlib:" if r < 75 else "fixture:" if r < 87 else "corpus:"
    pool = [p for p in pool if p[0].startswith(kind)] or pool
    label, name, data = c.pick(pool)
    options: dict[str, Any] = {}
    if name.endswith(".json") and c.coin(0.3):  # AIMET reader options, as the CLI passes them
        options = {"param_bw": c.pick((4, 8, 16)), "act_bw": c.pick((8, 16)),
                   "version": c.pick(("1", "2"))}
    return name, data, label, options


def gen_case(c: Chooser) -> bytes:
    """A generated model and a profile (generated for it, or from the pool), packed."""
    model, info = gen_graph(c)
    name, profile, label, options = gen_case_profile(c, info)
    return pack_case(model.SerializeToString(), name, profile, label, options)


class PlanSchemaError(AssertionError):
    """A compiled plan that does not validate against schemas/plan.json."""


class PlanInvariantError(AssertionError):
    """A plan that breaks what the schema cannot say (sharing, provenance, summary)."""


class PlanNondeterministic(AssertionError):
    """Compiling the same profile and graph twice gave different text."""


class GraphChanged(AssertionError):
    """Compiling changed the caller's graph."""


_VALIDATORS: list[Any] = []  # (whole plan, one tensor entry)
_VALID_TENSORS: set[str] = set()  # masked tensor entries already validated


def plan_validators() -> tuple[Any, Any]:
    if not _VALIDATORS:
        from importlib import resources

        import jsonschema

        schema = json.loads(resources.files("quantspec.schemas").joinpath("plan.json")
                            .read_text("utf-8"))
        tensor = {"$ref": "#/$defs/tensor", "$defs": schema["$defs"]}
        _VALIDATORS.extend((jsonschema.Draft202012Validator(schema),
                            jsonschema.Draft202012Validator(tensor)))
    return _VALIDATORS[0], _VALIDATORS[1]


def _masked(t: dict[str, Any]) -> dict[str, Any]:
    """A tensor entry with its free-form names and dimensions replaced by placeholders of the
    same JSON type: valid exactly when the entry is (the schema only asks these for strings,
    string lists and integer / string / null dimensions), and equal for most entries of a plan,
    so each distinct entry is validated once (validating every entry took 70% of the run)."""
    m = dict(t)
    if isinstance(m.get("name"), str):
        m["name"] = "n"
    if isinstance(m.get("producer"), str):
        m["producer"] = "p"
    cons = m.get("consumers")
    if isinstance(cons, list) and all(isinstance(x, str) for x in cons):
        m["consumers"] = ["c"] if cons else []
    shared = m.get("shared_with")
    if isinstance(shared, list) and all(isinstance(x, str) for x in shared):
        m["shared_with"] = ["s"] if shared else []
    shape = m.get("shape")
    if isinstance(shape, list):
        m["shape"] = [1 if type(d) is int else "d" if isinstance(d, str) else d for d in shape]
    whys = m.get("why")
    if isinstance(whys, dict):  # rule / selector / note: non-empty strings; shadowed: of them
        m["why"] = {f: {k: _mask_text(v) for k, v in w.items()} if isinstance(w, dict) else w
                    for f, w in whys.items()}
    return m


def _mask_text(v: Any) -> Any:
    if isinstance(v, str):
        return "x" if v else v
    if isinstance(v, list) and all(isinstance(x, str) and x for x in v):
        return ["x"] if v else v
    return v


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Where ``doc`` breaks schemas/plan.json (each distinct tensor entry checked once)."""
    whole, one = plan_validators()
    tensors = doc.get("tensors")
    if not isinstance(tensors, list):
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                for e in whole.iter_errors(doc)]
    out = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
           for e in whole.iter_errors({**doc, "tensors": []})]
    for i, t in enumerate(tensors):
        key = json.dumps(_masked(t), sort_keys=True) if isinstance(t, dict) else repr(t)
        if key in _VALID_TENSORS:
            continue
        errs = [f"tensors/{i}/{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                for e in one.iter_errors(t)]
        if errs:
            out += errs
        elif len(_VALID_TENSORS) < 200_000:
            _VALID_TENSORS.add(key)
    return out


def graph_snapshot(g: Any) -> tuple[Any, ...]:
    """Everything compiling may not change: nodes in order, tensors and their classification."""
    nodes = tuple((n.index, n.name, n.op_type, tuple(n.inputs), tuple(n.outputs))
                  for n in g.nodes)
    tensors = tuple((k, t.kind, t.role, t.producer, tuple(t.consumers), tuple(t.param_of),
                     t.transposed_param) for k, t in g.tensors.items())
    return nodes, tensors, tuple(g.inputs), tuple(g.outputs), len(g.fused)


# derivations a `why` may name instead of a rule of the profile (docs/plan.md)
DERIVATIONS = frozenset({"<graph>", "<per_channel_fallback>", "<aimet B.8>", "<rule>", "<tie>"})


def rule_names(prof: Any) -> set[str]:
    """What a plan's ``why`` may name for this profile: its rules, patterns and ties (their
    ``file:line:col``, or ``<origin>`` when they have no position) and the derivations."""
    out = set(DERIVATIONS)
    for r in (*prof.rules, *prof.patterns, *prof.ties):
        out.add(str(r.span) if r.span is not None else f"<{r.origin or 'rule'}>")
        if r.origin:
            out.add(f"<{r.origin}>")
    return out


def check_plan(prof: Any, doc: dict[str, Any]) -> None:
    """The plan properties the schema cannot express; raises PlanSchemaError /
    PlanInvariantError naming the first problem."""
    errors = schema_errors(doc)
    if errors:
        raise PlanSchemaError(errors[0])
    tensors = doc["tensors"]
    by_name = {t["name"]: t for t in tensors}
    if len(by_name) != len(tensors):
        raise PlanInvariantError("tensor names repeat")
    names = rule_names(prof)
    for t in tensors:
        for other in t["shared_with"]:
            if other not in by_name:
                raise PlanInvariantError(f"{t['name']!r} shares with {other!r}, not in the plan")
            if other == t["name"] or t["name"] not in by_name[other]["shared_with"]:
                raise PlanInvariantError(f"{t['name']!r} shares with {other!r}, not the other "
                                         "way round")
        if t["per_channel"] and t["quantized"] and t["axis"] is None:
            raise PlanInvariantError(f"{t['name']!r}: quantized per channel without an axis")
        if t["per_channel"] and t["quantized"]:
            for other in t["shared_with"]:
                if by_name[other]["axis"] != t["axis"]:  # E207 refuses such a group
                    raise PlanInvariantError(f"{t['name']!r} and {other!r} share a per-channel "
                                             "encoding with different axes")
        if t.get("not_quantizable") and t["quantized"]:
            raise PlanInvariantError(f"{t['name']!r}: quantized but not quantizable")
        for f, why in t["why"].items():
            for rule in (why["rule"], *why.get("shadowed", ())):
                if rule not in names:
                    raise PlanInvariantError(f"{t['name']!r}: why.{f} names {rule!r}, which is "
                                             "no rule of the profile")
    q = [t for t in tensors if t["quantized"]]
    groups = {tuple(sorted([t["name"], *t["shared_with"]])) for t in q if t["shared_with"]}
    want = {"tensors": len(tensors), "quantized": len(q),
            "per_channel": sum(t["per_channel"] for t in q), "shared_groups": len(groups)}
    if doc["summary"] != want:
        raise PlanInvariantError(f"summary {doc['summary']} != {want}")


_CASE_CACHE: dict[bytes, Any] = {}  # sha1 -> loaded profile / graph (the long run reuses them)
_CASE_CACHE_SIZE = 512


def _cached(key: bytes, build: Callable[[], Any]) -> Any:
    if key not in _CASE_CACHE:
        if len(_CASE_CACHE) >= _CASE_CACHE_SIZE:
            del _CASE_CACHE[next(iter(_CASE_CACHE))]
        _CASE_CACHE[key] = build()  # a QuantspecError is not cached: it is raised again
    return _CASE_CACHE[key]


def load_case(data: bytes, cache: bool = True) -> tuple[Any, Any]:
    """(profile, graph) of a case, read the way ``quantspec compile`` reads its files."""
    import hashlib

    from quantspec.graph import Graph
    from quantspec.lang.load import loads

    header, profile, model = unpack_case(data)
    name = os.path.basename(str(header["profile"])) or "profile.qspec"
    options = {k: v for k, v in header.get("options", {}).items()
               if k in ("param_bw", "act_bw", "version")}

    def read_profile() -> Any:
        from quantspec.fileio import decode

        return loads(decode(profile, name), name, **options)

    def read_graph() -> Any:
        path = _onnx_dir() / "case.onnx"
        path.write_bytes(model)
        return Graph.load(path)

    if not cache:
        return read_profile(), read_graph()
    pkey = hashlib.sha1(json.dumps([name, options]).encode() + b"\0" + profile).digest()
    gkey = b"g" + hashlib.sha1(model).digest()
    return _cached(pkey, read_profile), _cached(gkey, read_graph)


def read_compile(data: bytes, cache: bool = True) -> Any:
    """The compile front end: load the pair, compile, check the plan's properties, explain
    one tensor; a QuantspecError is rendered as the CLI would print it, then re-raised."""
    import zlib

    from quantspec.commands.common import render
    from quantspec.compiler import compile_profile
    from quantspec.explain import explain

    try:
        prof, graph = load_case(data, cache)
        before = graph_snapshot(graph)
        try:
            plan = compile_profile(prof, graph, "case.onnx")
        finally:
            if graph_snapshot(graph) != before:
                _CASE_CACHE.clear()
                raise GraphChanged("compiling changed the graph")
    except QuantspecError as exc:
        for d in exc.diagnostics:
            render(d)
        raise
    text = plan.dumps()
    again = compile_profile(prof, graph, "case.onnx").dumps()
    if again != text:
        raise PlanNondeterministic(_first_difference(text, again))
    if graph_snapshot(graph) != before:
        _CASE_CACHE.clear()
        raise GraphChanged("compiling changed the graph")
    check_plan(prof, json.loads(text))
    if plan.entries:
        entry = plan.entries[zlib.crc32(data) % len(plan.entries)]
        shown = explain(entry)
        if entry.name not in shown:
            raise PlanInvariantError(f"explain of {entry.name!r} does not name it")
    return plan


def compile_outcomes(n: int, tag: str = "xproc") -> list[str]:
    """For ``n`` generated pairs: the SHA-1 of the plan text, or the error code (compared
    across processes with different hash seeds by the tests)."""
    import hashlib

    out = []
    for i in range(n):
        data = gen_case(RngChooser(random.Random(f"{tag}:{i}")))
        try:
            out.append(hashlib.sha1(read_compile(data, cache=False).dumps().encode()).hexdigest())
        except QuantspecError as exc:
            out.append(exc.code)
    return out


def _first_difference(a: str, b: str) -> str:
    for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False)):
        if x != y:
            return f"line {i + 1}: {x[:200]!r} != {y[:200]!r}"
    return "different lengths"


# -- the compile front end ----------------------------------------------------------------------


def _case_mutator(name: str, part: str, op: Callable[[random.Random, bytes, str], bytes]
                  ) -> Mutator:
    """A mutator of one part of a case (the model or the profile); the header stays valid."""

    def mutate(rng: random.Random, data: bytes) -> bytes:
        header, profile, model = unpack_case(data)
        pname = str(header["profile"])
        if part == "model":
            model = op(rng, model, pname)
        else:
            profile = op(rng, profile, pname)
        return pack_case(model, pname, profile, str(header.get("label", "")) + "*",
                         header.get("options"))

    mutate.__name__ = name
    return mutate


def case_mutators() -> tuple[Mutator, ...]:
    """Damage the model (protobuf-level edits: deleted nodes, rewired inputs, other op types,
    element types, shapes, attributes), mutate the profile with its dialect's mutators, or
    swap in another profile of the pool."""
    fes = frontends()
    by_suffix = {".qspec": fes["qspec"], ".json": fes["aimet"], ".cfg": fes["amct"]}
    model_ops = (onnx_delete, onnx_rewire, onnx_duplicate_node, onnx_op_type, onnx_dtype,
                 onnx_shape, onnx_attribute, onnx_external, onnx_header)
    out: list[Mutator] = []
    for f in model_ops:
        m = _onnx_mutate(f)
        out.append(_case_mutator("case_" + f.__name__, "model",
                                 lambda rng, b, _n, m=m: m(rng, b)))

    def profile_op(rng: random.Random, data: bytes, pname: str) -> bytes:
        fe = by_suffix.get(os.path.splitext(pname)[1], fes["encodings"])
        return rng.choice(fe.mutators)(rng, data)

    def swap_op(rng: random.Random, data: bytes, pname: str) -> bytes:
        same = [d for _, n, d in profile_pool() if os.path.splitext(n)[1] ==
                os.path.splitext(pname)[1]]
        return rng.choice(same) if same else data

    out.append(_case_mutator("case_profile", "profile", profile_op))
    out.append(_case_mutator("case_profile", "profile", profile_op))
    out.append(_case_mutator("case_swap_profile", "profile", swap_op))
    return tuple(out)


def compile_seeds(n: int = 48) -> dict[str, bytes]:
    """Generated cases from fixed seeds: what the long run mutates."""
    return {f"seed-{i:02d}": gen_case(RngChooser(random.Random(f"compile-seed:{i}")))
            for i in range(n)}


def compile_frontend() -> FrontEnd:
    return FrontEnd("compile", ".qscase", read_compile, lambda: [], case_mutators(), gen_case,
                    compile_seeds, generate_share=0.7)


def all_frontends() -> dict[str, FrontEnd]:
    """The reading front ends and the compile stage (tools/fuzz.py)."""
    return {**frontends(), "compile": compile_frontend()}


def clear_caches() -> None:
    """Forget loaded profiles, graphs and validated plan entries (to time one input alone)."""
    _CASE_CACHE.clear()
    _VALID_TENSORS.clear()
