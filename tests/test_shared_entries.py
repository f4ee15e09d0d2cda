"""Plan entries resolved alike share one read-only values dict and one why dict
(``plan.Shared``); ``Entry.own()`` gives an entry writable copies, and the plan text follows
each entry's own dicts."""
from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from test_plans import MODELS
from test_shared_channels import PROFILE, _model

from quantspec.compiler import compile_profile
from quantspec.compiler.plan import Entry, Plan, Shared
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import load, stdlib_names
from quantspec.lang.parse import parse


def _plan() -> Plan:
    return compile_profile(parse(PROFILE), _model())


def _entry(plan: Plan, name: str) -> Entry:
    e = plan.entry(name)
    assert e is not None
    return e


def test_entries_resolved_alike_share_their_dicts() -> None:
    plan = _plan()
    w1, w2, w3 = (_entry(plan, n) for n in ("w1", "w2", "w3"))
    # one signature, one channel axis (0, from Conv): one dict; the MatMul weight's axis is 1
    assert w1.values is w2.values and w1.why is w2.why
    assert type(w1.values) is Shared and type(w1.why) is Shared
    assert (w1.get("axis"), w3.get("axis")) == (0, 1) and w3.values is not w1.values
    assert w3.why["axis"].rule == w1.why["axis"].rule == "<graph>"
    c1, c2 = _entry(plan, "c1"), _entry(plan, "c2")
    assert c1.values is c2.values


WRITES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "setitem": lambda d: d.__setitem__("bits", 4),
    "delitem": lambda d: d.__delitem__("quantized"),
    "pop": lambda d: d.pop("quantized"),
    "popitem": lambda d: d.popitem(),
    "setdefault": lambda d: d.setdefault("bits", 4),
    "update": lambda d: d.update(bits=4),
    "clear": lambda d: d.clear(),
    "ior": lambda d: d.__ior__({"bits": 4}),
}


@pytest.mark.parametrize("write", WRITES)
def test_shared_dicts_refuse_writes(write: str) -> None:
    plan = _plan()
    w1, w2 = _entry(plan, "w1"), _entry(plan, "w2")
    before = dict(w2.values)
    with pytest.raises(TypeError, match=r"Entry\.own\(\)"):
        WRITES[write](w1.values)
    with pytest.raises(TypeError, match=r"Entry\.own\(\)"):
        WRITES[write](w1.why)
    assert w2.values == before


def test_own_gives_writable_copies_and_the_text_follows() -> None:
    plan = _plan()
    w1, w2 = _entry(plan, "w1"), _entry(plan, "w2")
    values, why = w1.own()
    assert type(values) is dict and type(why) is dict
    assert w1.values is values and w1.own() == (values, why)  # owned once
    values["bits"] = 4
    assert (w1.get("bits"), w2.get("bits")) == (4, 8)
    lines = {json.loads(ln.rstrip(","))["name"]: json.loads(ln.rstrip(","))
             for ln in plan.dumps().splitlines() if ln.startswith('  {"name": ')}
    assert (lines["w1"]["bits"], lines["w2"]["bits"]) == (4, 8)
    assert json.loads(plan.dumps()) == plan.to_json()


def test_copies_and_pickles_keep_the_values() -> None:
    plan = _plan()
    for other in (copy.deepcopy(plan), copy.copy(plan), pickle.loads(pickle.dumps(plan))):
        assert other.to_json() == plan.to_json() and other.dumps() == plan.dumps()
        w1 = _entry(other, "w1")
        assert type(w1.values) is Shared
    again = copy.deepcopy(plan)
    _entry(again, "w1").own()[0]["bits"] = 4
    assert _entry(plan, "w1").get("bits") == 8


@pytest.mark.parametrize("name", stdlib_names())
def test_each_tensor_line_is_its_entry(name: str) -> None:
    """The plan text finds shared dicts' text by identity: each tensor line must still be
    exactly json.dumps of its own entry, after ties, references and axes changed some."""
    prof = load(name)
    compared = 0
    for make in MODELS.values():
        try:
            plan = compile_profile(prof, Graph.from_model(make()), "m")
        except QuantspecError:  # a profile that does not fit the model: other tests cover it
            continue
        lines = [ln.rstrip(",")[2:] for ln in plan.dumps().splitlines()
                 if ln.startswith('  {"name": ')]
        assert lines == [json.dumps(e.to_json()) for e in plan.entries]
        compared += len(lines)
    assert compared > 0
