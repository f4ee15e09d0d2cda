"""Checks on a vendor file's own text that its reader accepts silently (L001, L002, L003).

The readers follow the vendor tools, which ignore some mistakes without a word: AIMET matches
op-type keys that are not ONNX op types against nothing and drops unknown parameter types
(aimet.md A.2); Python's ``json`` and protobuf's ``text_format.Merge`` keep the last of two equal
keys. Lint points at each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import ir
from ..errors import Diagnostic, QuantspecError, did_you_mean
from ..jsonpos import Positions, json_path, loads
from ..source import Span
from . import optypes


def aimet(text: str, file: str) -> Iterator[Diagnostic]:
    try:
        cfg, pos = loads(text, file)
    except QuantspecError:
        return  # the reader reports the syntax error
    yield from json_duplicates(pos)
    if not isinstance(cfg, dict):
        return
    yield from _aimet_op_types(cfg, pos)
    yield from _aimet_params(cfg, pos)
    passes = cfg.get("supergroup_pass_list")
    if isinstance(passes, list):
        from ..dialects.aimet import PASS_NAMES

        for i, name in enumerate(passes):
            if isinstance(name, str) and name not in PASS_NAMES:
                yield Diagnostic(
                    "L002", f"supergroup_pass_list '{name}' is not a graph pass AIMET registers; "
                    "it is ignored", pos.value_span(("supergroup_pass_list", i)), (),
                    did_you_mean(name, PASS_NAMES) or f"passes: {', '.join(PASS_NAMES)}",
                    "warning")
    op_type = cfg.get("op_type")
    if isinstance(op_type, dict):
        for t, oc in op_type.items():
            ec = oc.get("encoding_constraints") if isinstance(oc, dict) else None
            if not isinstance(ec, dict):
                continue
            for k in ec:
                if k not in ("min", "max"):
                    # aimet.md A.2: the schema has no additionalProperties here
                    yield Diagnostic(
                        "L002", f"encoding_constraints key '{k}' is ignored (only min and max "
                        "are read)", pos.get(("op_type", t, "encoding_constraints", k)), (),
                        did_you_mean(k, ("min", "max")), "warning")


def _aimet_op_types(cfg: dict[str, Any], pos: Positions) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    op_type = cfg.get("op_type")
    places: list[tuple[str, Span]] = []
    if isinstance(op_type, dict):
        # 'defaults' is AIMET's default kernel list, not an op type (aimet.md A.2)
        places += [(t, pos.get(("op_type", t))) for t in op_type if t != "defaults"]
    groups = cfg.get("supergroups")
    if isinstance(groups, list):
        for i, sg in enumerate(groups):
            ops = sg.get("op_list") if isinstance(sg, dict) else None
            if isinstance(ops, list):
                places += [(t, pos.value_span(("supergroups", i, "op_list", j)))
                           for j, t in enumerate(ops) if isinstance(t, str)]
    for t, span in places:
        if t in seen or optypes.is_known(t):
            continue
        seen.add(t)
        # aimet.md A.2: unknown types (QNN names such as Conv2d, LayerNorm, GELU) never match
        yield Diagnostic("L001", f"'{t}' is not an ONNX op type; aimet-onnx matches it against "
                         "nothing", span, (), optypes.suggest(t)
                         or "aimet-onnx op types are ONNX op types", "warning")


def _aimet_params(cfg: dict[str, Any], pos: Positions) -> Iterator[Diagnostic]:
    places: list[tuple[tuple[Any, ...], str]] = []
    params = cfg.get("params")
    if isinstance(params, dict):
        places += [(("params", k), k) for k in params]
    op_type = cfg.get("op_type")
    if isinstance(op_type, dict):
        for t, oc in op_type.items():
            ps = oc.get("params") if isinstance(oc, dict) else None
            if isinstance(ps, dict):
                places += [(("op_type", t, "params", k), k) for k in ps]
    for path, key in places:
        if key in ir.KNOWN_PARAM_ROLES:
            continue
        # aimet.md A.2: aimet-onnx knows weight, bias, weight_r, running_mean, running_var
        yield Diagnostic("L002", f"parameter type '{key}' is not one aimet-onnx knows; "
                         f"{json_path(path)} is ignored", pos.get(path), (),
                         did_you_mean(key, ir.KNOWN_PARAM_ROLES)
                         or f"parameter types: {', '.join(ir.KNOWN_PARAM_ROLES)}", "warning")


def json_duplicates(pos: Positions) -> Iterator[Diagnostic]:
    for path, first, again in pos.duplicates:
        yield Diagnostic("L003", f"key '{path[-1]}' appears twice in {json_path(path[:-1])}; "
                         "only this last value is read", again, ((first, "first at"),),
                         "remove one of them", "warning")


def json_file(text: str, file: str) -> Iterator[Diagnostic]:
    """Duplicate keys of any JSON dialect whose reader keeps the last value."""
    try:
        _, pos = loads(text, file)
    except QuantspecError:
        return
    yield from json_duplicates(pos)


def amct(text: str, file: str) -> Iterator[Diagnostic]:
    """Singular fields given twice: ``text_format.Merge`` keeps the last (vitis_amct.md 2.1)."""
    from ..dialects import amct as mod

    dupes: list[tuple[tuple[Any, ...], bool, Span, Span]] = []

    class _Recorder(mod._Locator):  # the reader's position scanner, noting repeats
        def _value(self, fd: Any, path: Any, counts: dict[str, int], key_off: int) -> None:
            fpath = (*path, fd.name)
            before = None if mod._repeated(fd) else self.locs.get(fpath)
            super()._value(fd, path, counts, key_off)
            if before is not None:
                dupes.append((fpath, fd.message_type is not None, before.key,
                              self.locs[fpath].key))

    _Recorder(text, file)
    for path, block, first, again in dupes:
        # Merge keeps the last scalar and merges a repeated block into the first one
        what = ("block '{}' appears twice; AMCT merges the two field by field" if block
                else "field '{}' is set twice; AMCT keeps only this last value")
        yield Diagnostic("L003", what.format(path[-1]), again, ((first, "first at"),),
                         "remove one of them", "warning")
