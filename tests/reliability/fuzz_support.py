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
