""".qspec text -> :class:`quantspec.ir.Profile`, with a span on every rule and setting.

Lark builds a tree with positions (``propagate_positions``); a separate pass walks it (Lark
documents that ``meta`` is not available to a transformer passed to ``Lark(...)``). Lark errors
become ``QuantspecError`` E001/E002 with the expected tokens named the way a user writes them.
"""

from __future__ import annotations

import functools
import math
import re
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .. import ir
from ..errors import QuantspecError, did_you_mean
from ..source import Span
from . import settings as S

MAX_PATTERN_LENGTH = 32
# Input limits (docs/reliability.md). Lark's LALR parser reads ~60k tokens/s, so the token
# limit keeps every accepted file under about a second; the others bound memory and recursion.
MAX_QSPEC_BYTES = 1 << 20
MAX_TOKENS = 20_000
MAX_STATEMENTS = 2_000
MAX_LIST_DEPTH = 8
MAX_WORD_CHARS = 4096  # a name or a "string"
MAX_NUMBER_CHARS = 64
_SCAN = re.compile(r'(?P<ws>\s+|#[^\n]*)|(?P<word>"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_.]*)'
                   r"|(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)|.", re.S)
SLOT_NAMES = (*ir.GENERIC_SLOTS, *ir.KIND_SLOTS, *ir.KNOWN_PARAM_ROLES)
KEYWORDS = ("profile", "extends", "options", "defaults", "op", "fuse", "model", "layer", "tensor",
            "share", "tie", "calibrate", "transform", "passes", "post", "meta", "final", "group")

_TERMINAL_NAMES = {
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "LPAR": "'('",
    "RPAR": "')'", "COLON": "':'", "COMMA": "','", "VBAR": "'|'", "STRING": "a \"string\"",
    "NAME": "a name", "SIGNED_NUMBER": "a number", "INT": "an index", "CMP": "a comparison",
    "EQUAL": "'='", "__ANON_0": "'->'", "$END": "end of file",
}


@functools.lru_cache(maxsize=1)
def grammar() -> Lark:
    text = resources.files("quantspec.grammar").joinpath("quantspec.lark").read_text("utf-8")
    return Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=False,
                cache=_grammar_cache())


def _grammar_cache() -> str | bool:
    """A file for Lark's compiled parser tables, so a new process skips building them (the
    largest part of ``quantspec lint``'s start-up, benchmarks/RESULTS.md). Lark reuses it only
    when the SHA-256 of the grammar, the options, Lark's and Python's versions match, and
    rebuilds otherwise. In $QUANTSPEC_CACHE_DIR, else $XDG_CACHE_HOME/quantspec or
    ~/.cache/quantspec (not a shared temp directory: the file is a pickle);
    QUANTSPEC_CACHE_DIR="" turns it off."""
    import os

    d = os.environ.get("QUANTSPEC_CACHE_DIR")
    if d is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "quantspec")
    if not d:
        return False
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
    except OSError:
        return False
    return os.path.join(d, "qspec-grammar.lark-cache")


def parse(text: str, file: str = "<string>") -> ir.Profile:
    """Parse .qspec ``text``; ``extends`` are recorded, not resolved (see :mod:`.load`)."""
    check_limits(text, file)
    try:
        tree = grammar().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    if len(tree.children) > MAX_STATEMENTS:
        extra = tree.children[MAX_STATEMENTS]
        span = Span(file, getattr(extra.meta, "line", 0), getattr(extra.meta, "column", 0))
        raise QuantspecError("E012", f"more than {MAX_STATEMENTS} statements", span,
                             hint="split the profile into files joined with extends")
    return _Builder(file).build(tree)


def check_limits(text: str, file: str) -> None:
    """E010 size, E011 token count, E014 word length, E015 number length; before Lark runs."""
    if len(text) > MAX_QSPEC_BYTES or len(text.encode("utf-8")) > MAX_QSPEC_BYTES:
        raise QuantspecError("E010", f"a .qspec file is at most {MAX_QSPEC_BYTES} bytes; this "
                             f"one is {len(text.encode('utf-8'))}", Span(file, 1, 1),
                             hint="large per-tensor encodings belong in an encodings file")
    count = 0
    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            continue
        count += 1
        size = m.end() - m.start()
        problem = ""
        if count > MAX_TOKENS:
            code, problem = "E011", f"more than {MAX_TOKENS} tokens"
            hint = "split the profile into files joined with extends"
        elif kind == "word" and size > MAX_WORD_CHARS:
            code, problem = "E014", f"a name or string of {size} characters (the limit is " \
                f"{MAX_WORD_CHARS})"
            hint = "use a pattern such as \"encoder.*\" instead of a long name"
        elif kind == "num" and size > MAX_NUMBER_CHARS:
            code, problem = "E015", f"a number of {size} characters (the limit is " \
                f"{MAX_NUMBER_CHARS})"
            hint = "write large or precise values with an exponent, e.g. 1.5e-12"
        if problem:
            line = text.count("\n", 0, m.start()) + 1
            col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            raise QuantspecError(code, problem, Span(file, line, col), hint=hint)


def _syntax_error(exc: UnexpectedInput, text: str, file: str) -> QuantspecError:
    line, col = getattr(exc, "line", 0) or 0, getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedEOF) or line < 1:
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
    span = Span(file, line, col)
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        return QuantspecError("E002", f"unexpected character {ch!r}", span,
                              hint="names are letters, digits, '_' and '.'; strings use \"")
    expected = sorted(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or [])
    names = sorted({_TERMINAL_NAMES.get(t, f"'{t.lower()}'" if t.isupper() and len(t) < 12
                                        else t) for t in expected})
    got = "end of file"
    hint = ""
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        got = f"'{exc.token}'"
        if exc.token.type == "NAME" and str(exc.token) not in KEYWORDS:
            hint = did_you_mean(str(exc.token), KEYWORDS)
    if "'}'" in names and got == "end of file":
        hint = "a '{' block is not closed"
    msg = f"unexpected {got}"
    if names and len(names) <= 8:
        msg += f", expected {' or '.join(names)}"
    return QuantspecError("E001", msg, span, hint=hint)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.rules: list[ir.Rule] = []
        self.patterns: list[ir.Pattern] = []
        self.ties: list[ir.Tie] = []
        self.extends: list[tuple[str, Span | None]] = []
        self.passes: list[tuple[str, Span | None]] = []
        self.post: list[tuple[str, Span | None]] = []
        self.options: dict[str, ir.Setting] = {}
        self.calibrate: dict[str, ir.Setting] = {}
        self.transforms: dict[str, ir.Setting] = {}
        self.meta: dict[str, ir.Setting] = {}
        self.name = ""
        self.header: Span | None = None
        self.group = ""

    # -- helpers ---------------------------------------------------------------------------
    def span(self, node: Tree | Token) -> Span:
        if isinstance(node, Token):
            return Span(self.file, node.line or 0, node.column or 0,
                        node.end_line or 0, node.end_column or 0)
        m = node.meta
        if getattr(m, "empty", True):
            return Span(self.file)
        return Span(self.file, m.line, m.column, m.end_line, m.end_column)

    def build(self, tree: Tree) -> ir.Profile:
        for child in tree.children:
            getattr(self, f"do_{child.data}")(child)
        return ir.Profile(
            name=self.name, source=self.file, dialect="qspec", extends=tuple(self.extends),
            rules=tuple(self.rules), patterns=tuple(self.patterns), ties=tuple(self.ties),
            passes=tuple(self.passes), post=tuple(self.post),
            options=ir.Options(self.options), calibrate=self.calibrate,
            transforms=self.transforms, meta=self.meta, span=self.header,
        )

    # -- statements ------------------------------------------------------------------------
    def do_header(self, t: Tree) -> None:
        self.name = _unquote(t.children[0])
        self.header = self.span(t)
        for c in t.children[1:]:
            self.do_extends_stmt(c)

    def do_extends_stmt(self, t: Tree) -> None:
        for tok in t.children:
            self.extends.append((_unquote(tok), self.span(tok)))

    do_extends_clause = do_extends_stmt

    def do_options_block(self, t: Tree) -> None:
        for key, setting in self.items(t.children):
            if key not in ir.OPTION_DEFAULTS:
                raise QuantspecError("E007", f"unknown option '{key}'", setting.span,
                                     hint=did_you_mean(key, ir.OPTION_DEFAULTS)
                                     or f"options: {', '.join(ir.OPTION_DEFAULTS)}")
            choices = ir.OPTION_CHOICES[key]
            if setting.value not in choices:
                raise QuantspecError("E007", f"option '{key}' cannot be {setting.value!r}",
                                     setting.span, hint=f"one of: {', '.join(choices)}")
            self.options[key] = setting

    def do_calibrate_block(self, t: Tree) -> None:
        for key, setting in self.items(t.children):
            if key in ("method", "calibration"):
                setting = ir.Setting(S.calibration(setting.value, setting.span), setting.span)
                key = "method"
            self.calibrate[key] = setting

    def do_transform_block(self, t: Tree) -> None:
        for key, setting in self.items(t.children):
            if key not in ir.TRANSFORMS:
                raise QuantspecError("E007", f"unknown transform '{key}'", setting.span,
                                     hint=did_you_mean(key, ir.TRANSFORMS)
                                     or f"transforms: {', '.join(ir.TRANSFORMS)}")
            v = setting.value
            if v in ("on", "off", "true", "false"):
                v = v in ("on", "true")
            self.transforms[key] = ir.Setting(v, setting.span)

    def do_meta_block(self, t: Tree) -> None:
        for key, setting in self.items(t.children):
            self.meta[key] = setting

    def items(self, children: list[Any]) -> list[tuple[str, ir.Setting]]:
        out = []
        for item in children:
            if item.data == "flag":
                tok = item.children[0]
                out.append((str(tok), ir.Setting(True, self.span(tok))))
            else:
                key, val = item.children
                out.append((str(key), ir.Setting(self.value(val), self.span(val))))
        return out

    def do_defaults_rule(self, t: Tree) -> None:
        final, rest = self.mods(t.children)
        self.body(rest[-1], ir.Selector("defaults"), final, self.span(t))

    def do_op_rule(self, t: Tree) -> None:
        final, rest = self.mods(t.children)
        types = self.op_types(rest[0])
        where: tuple[ir.Predicate, ...] = ()
        if len(rest) == 3:
            where = tuple(self.predicate(p) for p in rest[1].children)
        self.body(rest[-1], ir.Selector("op", op_types=types, where=where), final, self.span(t))

    def do_model_rule(self, t: Tree) -> None:
        final, rest = self.mods(t.children)
        which = str(rest[0])
        if which not in ("input", "output"):
            raise QuantspecError("E001", f"expected 'model input' or 'model output', got "
                                 f"'model {which}'", self.span(rest[0]))
        self.body(rest[-1], ir.Selector(f"model_{which}"), final, self.span(t))

    def do_layer_rule(self, t: Tree) -> None:
        final, rest = self.mods(t.children)
        names = tuple(_unquote(s) for s in rest[:-1])
        self.body(rest[-1], ir.Selector("layer", names=names), final, self.span(t))

    def do_tensor_rule(self, t: Tree) -> None:
        final, rest = self.mods(t.children)
        names = tuple(_unquote(s) for s in rest[:-1])
        body = rest[-1]
        for c in body.children:
            if c.data == "slot_block":
                raise QuantspecError("E004", "a tensor rule sets the tensor itself; it has no "
                                     "slot blocks", self.span(c),
                                     hint="write the settings directly: tensor \"x\" { int8 }")
        self.body(body, ir.Selector("tensor", names=names), final, self.span(t))

    def do_fuse_stmt(self, t: Tree) -> None:
        chain = tuple(self.op_types(c) for c in t.children)
        if len(chain) > MAX_PATTERN_LENGTH:
            raise QuantspecError("E008", f"fusion pattern of {len(chain)} ops is longer than "
                                 f"{MAX_PATTERN_LENGTH}", self.span(t),
                                 hint="a fusion pattern is a short chain such as Conv -> Relu")
        self.patterns.append(ir.Pattern(chain, self.span(t)))

    def do_share_stmt(self, t: Tree) -> None:
        names = tuple(_unquote(s) for s in t.children)
        self.ties.append(ir.Tie("", tensors=names, span=self.span(t)))

    def do_tie_stmt(self, t: Tree) -> None:
        mode = str(t.children[0])
        if mode not in ir.TIE_MODES:
            raise QuantspecError("E009", f"unknown tie mode '{mode}'", self.span(t.children[0]),
                                 hint=did_you_mean(mode, ir.TIE_MODES)
                                 or f"modes: {', '.join(ir.TIE_MODES)}")
        types = self.op_types(t.children[1])
        through: tuple[str, ...] = ()
        if len(t.children) > 2:
            through = self.op_types(t.children[2].children[0])
        self.ties.append(ir.Tie(mode, op_types=types, through=through, span=self.span(t)))

    def do_passes_stmt(self, t: Tree) -> None:
        for tok in t.children:
            name = str(tok)
            if name not in ir.GRAPH_PASSES:
                raise QuantspecError("E009", f"unknown graph pass '{name}'", self.span(tok),
                                     hint=did_you_mean(name, ir.GRAPH_PASSES)
                                     or f"passes: {', '.join(ir.GRAPH_PASSES)}")
            self.passes.append((name, self.span(tok)))

    def do_post_stmt(self, t: Tree) -> None:
        for tok in t.children:
            self.post.append((_unquote(tok), self.span(tok)))

    # -- pieces ----------------------------------------------------------------------------
    def op_types(self, t: Tree) -> tuple[str, ...]:
        return tuple(str(tok) for tok in t.children)

    def predicate(self, t: Tree) -> ir.Predicate:
        name = str(t.children[0])
        if len(t.children) == 1:
            return ir.Predicate(name)
        return ir.Predicate(name, str(t.children[1]), self.value(t.children[2]))

    def mods(self, children: list[Any]) -> tuple[bool, list[Any]]:
        """Strip ``final`` / ``group "name"``; the group applies to the rules ``body`` adds."""
        final, rest = _final(children)
        self.group = ""
        if rest and isinstance(rest[0], Tree) and rest[0].data == "group_mod":
            self.group = _unquote(rest[0].children[0])
            if not self.group:
                raise QuantspecError("E005", "a group needs a name", self.span(rest[0]),
                                     hint='group "op_type" op Conv { ... }')
            rest = rest[1:]
        return final, rest

    def body(self, body: Tree, base: ir.Selector, final: bool, stmt_span: Span) -> None:
        group = self.group
        direct: dict[str, ir.Setting] = {}
        blocks: list[tuple[ir.Selector, dict[str, ir.Setting], Span]] = []
        for c in body.children:
            if c.data == "slot_block":
                sel, settings = self.slot_block(c, base)
                blocks.append((sel, settings, self.span(c)))
            else:
                direct.update(self.item(c))
        if direct:
            self.rules.append(ir.Rule(base, S.finish(direct, stmt_span), stmt_span, final,
                                      group, stmt=stmt_span))
        for sel, settings, span in blocks:
            self.rules.append(ir.Rule(sel, S.finish(settings, span), span, final, group,
                                      stmt=stmt_span))
        if not direct and not blocks:
            # an empty block still says something to explain/lint; keep it as a no-op rule
            self.rules.append(ir.Rule(base, {}, stmt_span, final, group, stmt=stmt_span))

    def slot_block(self, t: Tree, base: ir.Selector) -> tuple[ir.Selector, dict[str, ir.Setting]]:
        name_tok = t.children[0]
        slot = str(name_tok)
        rest = t.children[1:]
        index = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "INT":
            index = int(rest[0])
            rest = rest[1:]
            if slot not in ("input", "output"):
                raise QuantspecError("E004", f"only 'input' and 'output' take an index, not "
                                     f"'{slot}'", self.span(name_tok))
        if slot not in SLOT_NAMES:
            raise QuantspecError("E004", f"unknown slot '{slot}'", self.span(name_tok),
                                 hint=did_you_mean(slot, SLOT_NAMES)
                                 or f"slots: {', '.join(SLOT_NAMES)}")
        if base.scope == "model_input" and slot not in ("tensor", "constant"):
            raise QuantspecError("E004", f"'model input' has no slot '{slot}'",
                                 self.span(name_tok), hint="use `constant { ... }` or settings")
        settings: dict[str, ir.Setting] = {}
        for item in rest:
            settings.update(self.item(item))
        sel = ir.Selector(base.scope, base.op_types, base.names, slot, index, base.where)
        return sel, settings

    def item(self, item: Tree) -> dict[str, ir.Setting]:
        if item.data == "flag":
            tok = item.children[0]
            return S.flag(str(tok), self.span(tok))
        key, val = item.children
        return S.setting(str(key), self.value(val), self.span(key), self.span(val))

    def value(self, t: Any, depth: int = 0) -> Any:
        if isinstance(t, Token):
            return str(t)
        kind = t.data
        if kind == "number":
            s = str(t.children[0])
            if any(c in s for c in ".eE"):
                num = float(s)
                if math.isinf(num):  # 1e999: the language spells infinity `inf`
                    raise QuantspecError("E015", f"number {s} is out of range", self.span(t),
                                         hint="write inf or -inf for an open range end")
                return num
            return int(s)
        if kind == "string":
            return _unquote(t.children[0])
        if kind == "name":
            word = str(t.children[0])
            return {"true": True, "false": False, "null": None}.get(word, word)
        if kind == "list":
            if depth >= MAX_LIST_DEPTH:
                raise QuantspecError("E013", f"lists nested deeper than {MAX_LIST_DEPTH}",
                                     self.span(t), hint="a range is [min, max]; encodings are "
                                     "[[min, max], ...]")
            return tuple(self.value(c, depth + 1) for c in t.children)
        if kind == "ref":
            return ir.Ref(str(t.children[0]))
        if kind == "call":
            method = str(t.children[0])
            params: list[tuple[str, Any]] = []
            positional = 0
            for arg in t.children[1:]:
                if isinstance(arg, Tree) and arg.data == "kwarg":
                    if str(arg.children[0]).startswith("_"):  # "_0", "_1" name positionals
                        raise QuantspecError("E005", f"parameter name '{arg.children[0]}' "
                                             "cannot start with '_'", self.span(arg),
                                             hint="e.g. percentile(percentile=99.99)")
                    params.append((str(arg.children[0]), self.value(arg.children[1],
                                                                    depth + 1)))
                else:
                    params.append((f"_{positional}", self.value(arg, depth + 1)))
                    positional += 1
            return ir.Calibration(method, tuple(_name_positional(method, params)))
        raise AssertionError(kind)


def _name_positional(method: str, params: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    # percentile(99.99) is the one positional form people write; name it for the IR
    names = {"percentile": ("percentile",)}.get(method, ())
    out = []
    for k, v in params:
        if k.startswith("_") and int(k[1:]) < len(names):
            k = names[int(k[1:])]
        out.append((k, v))
    return out


def _final(children: list[Any]) -> tuple[bool, list[Any]]:
    if children and isinstance(children[0], Token) and children[0].type == "FINAL":
        return True, children[1:]
    return False, children


def _unquote(tok: Any) -> str:
    s = str(tok)
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        body = s[1:-1]
        return body.replace('\\"', '"').replace("\\\\", "\\")
    return s
