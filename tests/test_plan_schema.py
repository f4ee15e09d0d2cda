"""The plan JSON Schema (``quantspec/schemas/plan.json``) describes what ``Plan.to_json()``
emits: plans from many compiles validate, mutated plans do not, and the text is deterministic.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import onnx
import pytest
from qs_paths import FIXTURES, REPO, SHARED
from test_plans import GOLDEN_PAIRS, MODELS, compile_case, graph

from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import load, loads


def _schema() -> dict[str, Any]:
    text = resources.files("quantspec.schemas").joinpath("plan.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


SCHEMA = _schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def errors(plan: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(plan)]


def invariants(plan: dict[str, Any]) -> list[str]:
    """What the schema cannot say: names unique, sharing symmetric, summary consistent."""
    out = []
    tensors = plan["tensors"]
    names = [t["name"] for t in tensors]
    by_name = {t["name"]: t for t in tensors}
    if len(set(names)) != len(names):
        out.append("tensor names repeat")
    for t in tensors:
        for other in t["shared_with"]:
            if other not in by_name or t["name"] not in by_name[other]["shared_with"]:
                out.append(f"{t['name']} shares with {other}, not the other way round")
        if t["per_channel"] and t["quantized"] and t["axis"] is None:
            out.append(f"{t['name']}: quantized per channel without an axis")
        if t.get("not_quantizable") and t["quantized"]:
            out.append(f"{t['name']}: quantized but not quantizable")
    q = [t for t in tensors if t["quantized"]]
    groups = {tuple(sorted([t["name"], *t["shared_with"]])) for t in q if t["shared_with"]}
    want = {"tensors": len(tensors), "quantized": len(q),
            "per_channel": sum(t["per_channel"] for t in q), "shared_groups": len(groups)}
    if plan["summary"] != want:
        out.append(f"summary {plan['summary']} != {want}")
    return out


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["properties"]["format"]["const"] == "quantspec-plan/1"


def test_schema_names_every_field_the_plan_has() -> None:
    """No field of a plan entry goes undescribed (the schema forbids unknown fields too)."""
    plan = compile_case("htp_style", "mixed")
    tensor_props = set(SCHEMA["$defs"]["tensor"]["properties"])
    assert set(plan) == set(SCHEMA["properties"]) == set(SCHEMA["required"])
    assert {k for t in plan["tensors"] for k in t} <= tensor_props
    assert set(SCHEMA["$defs"]["tensor"]["required"]) == tensor_props - {"not_quantizable"}


# ---------------------------------------------------------------------------------------------
# Plans that must validate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "model_name"), GOLDEN_PAIRS,
                         ids=[f"{c}-{m}" for c, m in GOLDEN_PAIRS])
def test_golden_plans_validate(case: str, model_name: str) -> None:
    plan = compile_case(case, model_name)
    assert not errors(plan)
    assert not invariants(plan)


def _fixture_profiles() -> list[Path]:
    out: list[Path] = []  # identity.qspec extends files that are not fixtures: tested below
    for sub, pattern in (("vitis", "*.json"), ("amct", "*.cfg"), ("encodings", "*")):
        out += sorted(p for p in (FIXTURES / sub).glob(pattern) if "__invalid" not in p.name)
    return out


@pytest.mark.parametrize("path", _fixture_profiles(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_profiles_compile_to_valid_plans(path: Path) -> None:
    """Every dialect's fixtures, against every hand-built model."""
    prof = load(str(path))
    compiled = 0
    for name in MODELS:
        try:
            plan = compile_profile(prof, graph(name), name).to_json()
        except QuantspecError:
            continue  # e.g. a per-channel rule on a model without that axis
        compiled += 1
        assert not errors(plan), (name, errors(plan)[:3])
        assert not invariants(plan), (name, invariants(plan)[:3])
    assert compiled


def test_identity_fixture_without_its_bases_validates() -> None:
    """The fixture that uses every construct (its extends removed: they are other files)."""
    text = (FIXTURES / "identity.qspec").read_text().replace(
        'extends "aimet/base-2x", "./base.qspec"', "")
    # and the min-only Relu range, which cannot be shared with a symmetric input (E206)
    text = text.replace("op Relu { output { range: [0.0, null] } }", "")
    prof = loads(text.replace("conflicts: error", "conflicts: later_wins"), "identity.qspec")
    plan = compile_profile(prof, graph("mixed"), "mixed").to_json()
    assert not errors(plan) and not invariants(plan)
    assert plan["calibrate"] and plan["transforms"]


CORPUS_CONFIGS = SHARED / "corpus" / "aimet" / "conformance"


@pytest.mark.corpus
def test_corpus_plans_validate() -> None:
    """The AIMET conformance configs against its models (each config with three models), and
    the Vitis / AMCT corpus files against the hand-built models."""
    if not SHARED.exists():
        pytest.skip("../shared not present")
    models = sorted((CORPUS_CONFIGS / "models").glob("*.onnx"))
    graphs = [Graph.load(m) for m in models]
    checked = 0
    configs = sorted((CORPUS_CONFIGS / "configs").glob("*.json"))
    for i, cfg in enumerate(configs):
        try:
            prof = load(str(cfg))
        except QuantspecError:
            continue  # the invalid configs are rejected; test_aimet_config_tests checks how
        for g in (graphs[i % len(graphs)], graphs[(i + 2) % len(graphs)],
                  graphs[(i + 5) % len(graphs)]):
            try:
                plan = compile_profile(prof, g, Path(g.path).name).to_json()
            except QuantspecError:
                continue  # pairs AIMET rejects
            assert not errors(plan), (cfg.name, g.path, errors(plan)[:3])
            assert not invariants(plan), (cfg.name, g.path, invariants(plan)[:3])
            checked += 1
    others = sorted([*(SHARED / "corpus" / "vitis" / "vai_q_pytorch").glob("*.json"),
                     *(SHARED / "corpus" / "amct" / "cfg_ptq").glob("*/*.cfg")])
    for path in others:
        try:
            prof = load(str(path))
        except QuantspecError:
            continue  # the corpus's known-invalid files
        plan = compile_profile(prof, graph("mixed"), "mixed").to_json()
        assert not errors(plan), (path.name, errors(plan)[:3])
        checked += 1
    assert checked >= 60


# ---------------------------------------------------------------------------------------------
# Plans that must not validate
# ---------------------------------------------------------------------------------------------


def _tensor(plan: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in plan["tensors"] if t["name"] == name)


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "wrong format": lambda p: p.update(format="quantspec-plan/2"),
    "missing tensors": lambda p: p.pop("tensors"),
    "unknown top-level key": lambda p: p.update(extra=1),
    "summary count negative": lambda p: p["summary"].update(quantized=-1),
    "tensor without bits": lambda p: _tensor(p, "w1").pop("bits"),
    "bits as a string": lambda p: _tensor(p, "w1").update(bits="8"),
    "bits out of range": lambda p: _tensor(p, "w1").update(bits=0),
    "dtype not int/float": lambda p: _tensor(p, "w1").update(dtype="uint"),
    "unknown kind": lambda p: _tensor(p, "w1").update(kind="initializer"),
    "unknown rounding": lambda p: _tensor(p, "w1").update(rounding="nearest"),
    "quantized as a string": lambda p: _tensor(p, "w1").update(quantized="true"),
    "fixed range of three": lambda p: _tensor(p, "y").update(fixed_range=[0.0, 0.5, 1.0]),
    "fixed range of strings": lambda p: _tensor(p, "y").update(fixed_range=["0", "1"]),
    "calibration without params": lambda p: _tensor(p, "w1")["calibration"].pop("params"),
    "unknown calibration": lambda p: _tensor(p, "w1")["calibration"].update(method="kl"),
    "axis as a fraction": lambda p: _tensor(p, "w1").update(axis=0.5),
    "why without rule": lambda p: _tensor(p, "w1")["why"]["bits"].pop("rule"),
    "why of an unknown field": lambda p: _tensor(p, "w1")["why"].update(
        colour={"rule": "x.qspec:1:1"}),
    "empty shadowed list": lambda p: _tensor(p, "w1")["why"]["bits"].update(shadowed=[]),
    "shared_with not a list": lambda p: _tensor(p, "w1").update(shared_with="c1"),
    "unknown tensor field": lambda p: _tensor(p, "w1").update(colour="red"),
    "fusion without nodes": lambda p: p["fusions"][0].pop("nodes"),
    "unknown transform": lambda p: p["transforms"].update(prune=True),
}


@pytest.mark.parametrize("what", MUTATIONS)
def test_mutated_plan_fails(what: str) -> None:
    plan = compile_case("htp_style", "mixed")
    assert not errors(plan)
    bad = copy.deepcopy(plan)
    MUTATIONS[what](bad)
    assert errors(bad), f"the schema accepts a plan with {what}"


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


def test_same_inputs_give_byte_identical_text() -> None:
    """Two independent compiles (profile parsed again, graph built again) give the same
    bytes; so does compiling the same objects twice."""
    text = (FIXTURES / "plans" / "htp_style.qspec").read_text()
    a = compile_profile(loads(text, "p.qspec"), Graph.from_model(MODELS["mixed"]()), "m")
    b = compile_profile(loads(text, "p.qspec"), Graph.from_model(MODELS["mixed"]()), "m")
    assert a.dumps() == b.dumps()
    prof, g = loads(text, "p.qspec"), graph("two_heads")
    assert compile_profile(prof, g, "m").dumps() == compile_profile(prof, g, "m").dumps()
    assert json.loads(a.dumps()) == a.to_json()


def test_text_layout() -> None:
    """One space of indentation, one line per tensor entry, a final newline."""
    plan = compile_profile(loads((FIXTURES / "plans" / "fusion_ties.qspec").read_text(),
                                 "p.qspec"), graph("mixed"), "m")
    text = plan.dumps()
    lines = text.splitlines()
    assert text.endswith("}\n") and lines[0] == "{" and lines[1].startswith(' "format"')
    tensor_lines = [ln for ln in lines if ln.startswith('  {"name": ')]
    assert len(tensor_lines) == len(plan.entries)
    fusion_lines = [ln for ln in lines if ln.startswith('  {"pattern": ')]
    assert len(fusion_lines) == len(plan.to_json()["fusions"]) > 0


def test_compile_cli_is_byte_identical_across_processes(tmp_path: Path) -> None:
    """`quantspec compile` in two processes with different hash seeds writes the same bytes
    (no set or dict iteration order leaks into the output)."""
    model = tmp_path / "mixed.onnx"
    onnx.save(MODELS["mixed"](), model)
    profile = tmp_path / "p.qspec"
    profile.write_text((FIXTURES / "plans" / "fusion_ties.qspec").read_text())
    outs = []
    for seed in ("1", "12345"):
        out = tmp_path / f"plan_{seed}.json"
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
        subprocess.run([sys.executable, "-m", "quantspec", "compile", str(profile), "--model",
                        str(model), "-o", str(out)], check=True, env=env, capture_output=True,
                       cwd=tmp_path, timeout=120)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert not errors(json.loads(outs[0]))
