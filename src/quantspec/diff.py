"""What differs between two plans of one model, tensor by tensor, with the rule behind each side.

``diff_plans(plan_a, plan_b)`` compares the resolved fields of every tensor (the values a plan
writes, so a field no rule sets compares as its built-in default). By default it compares what
takes effect: fields of a tensor that neither plan quantizes are not compared, a tensor
quantized on one side only differs in ``quantized`` alone, and ``axis`` is compared only when
both sides are per-channel. ``effective=False`` compares every field as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .compiler.plan import PLAN_FIELDS, Entry, Plan, Why
from .errors import QuantspecError, did_you_mean

# The plan's per-tensor fields plus the shared-encoding group.
DIFF_FIELDS: tuple[str, ...] = (*PLAN_FIELDS, "shared_with")
BUILTIN = "<built-in default>"


@dataclass(frozen=True)
class FieldDiff:
    field: str
    a: Any  # the value as the plan JSON writes it
    b: Any
    why_a: str  # the deciding rule: "file:line:col (selector)", or BUILTIN
    why_b: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "a": self.a, "b": self.b, "why_a": self.why_a,
                "why_b": self.why_b}


@dataclass(frozen=True)
class TensorDiff:
    name: str
    kind: str
    fields: tuple[FieldDiff, ...] = ()
    only_in: str = ""  # "a" or "b": the tensor exists in one plan only (graph passes differ)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"tensor": self.name, "kind": self.kind}
        if self.only_in:
            d["only_in"] = self.only_in
        d["fields"] = [f.to_json() for f in self.fields]
        return d


@dataclass
class Summary:
    tensors: int = 0  # tensors in either plan
    differ: int = 0
    by_field: dict[str, int] = field(default_factory=dict)


def check_fields(fields: Iterable[str]) -> tuple[str, ...]:
    out = []
    for f in fields:
        if f not in DIFF_FIELDS:
            raise QuantspecError("E241", f"unknown plan field '{f}'",
                                 hint=did_you_mean(f, DIFF_FIELDS)
                                 or f"fields: {', '.join(DIFF_FIELDS)}")
        out.append(f)
    return tuple(out)


def diff_plans(plan_a: Plan, plan_b: Plan, fields: Sequence[str] | None = None,
               effective: bool = True) -> list[TensorDiff]:
    """Per tensor, the fields whose values differ between ``plan_a`` and ``plan_b``."""
    if plan_a.model != plan_b.model:
        raise QuantspecError("E240", f"the plans are of different models ('{plan_a.model}' and "
                             f"'{plan_b.model}')", hint="compile both profiles against one model")
    wanted = check_fields(fields) if fields else DIFF_FIELDS
    a = {e.name: e for e in plan_a.entries}
    b = {e.name: e for e in plan_b.entries}
    out: list[TensorDiff] = []
    for name in [*a, *(n for n in b if n not in a)]:
        ea, eb = a.get(name), b.get(name)
        if ea is None or eb is None:
            e = ea or eb
            assert e is not None
            if not e.reason:
                out.append(TensorDiff(name, e.kind, (), "a" if eb is None else "b"))
            continue
        if ea.reason and eb.reason:
            continue
        diffs = _entry_diff(ea, eb, wanted, effective)
        if diffs:
            out.append(TensorDiff(name, ea.kind, tuple(diffs)))
    return out


def summarize(plan_a: Plan, plan_b: Plan, diffs: Sequence[TensorDiff]) -> Summary:
    s = Summary(len({e.name for e in plan_a.entries} | {e.name for e in plan_b.entries}),
                len(diffs))
    for d in diffs:
        for f in d.fields:
            s.by_field[f.field] = s.by_field.get(f.field, 0) + 1
    return s


def _entry_diff(ea: Entry, eb: Entry, wanted: Sequence[str], effective: bool
                ) -> list[FieldDiff]:
    ja, jb = ea.to_json(), eb.to_json()
    names = list(wanted)
    if effective:
        qa, qb = bool(ja["quantized"]), bool(jb["quantized"])
        if not qa and not qb:
            return []
        if qa != qb:
            names = [f for f in names if f == "quantized"]
        elif not (ja["per_channel"] and jb["per_channel"]):
            names = [f for f in names if f != "axis"]
    return [FieldDiff(f, ja[f], jb[f], _why(ea, f), _why(eb, f)) for f in names
            if ja[f] != jb[f]]


def _why(e: Entry, f: str) -> str:
    w = e.why.get(f)
    if w is None and f == "signed":
        w = e.why.get("symmetric")  # signed follows symmetric unless a rule sets it
        if w is not None:
            return _show_why(w) + " (signed follows symmetric)"
    if w is None and f == "shared_with":
        ties = {x.rule: x for x in e.why.values() if x.selector.startswith("tie")}
        return "; ".join(_show_why(x) for x in ties.values()) or ("" if not e.shared_with
                                                                   else "tie")
    return _show_why(w) if w is not None else BUILTIN


def _show_why(w: Why) -> str:
    out = w.rule
    if w.selector:
        out += f" ({w.selector})"
    if w.note:
        out += f" [{w.note}]"
    return out
