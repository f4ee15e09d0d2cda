"""The AIMET conformance corpus: every (model, config, bit widths) pair compiles to the plan
aimet-onnx 2.42.0 produced, or is rejected where AIMET raised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compare import compare
from qs_paths import SHARED

from quantspec.compiler import compile_profile
from quantspec.dialects import aimet
from quantspec.errors import QuantspecError
from quantspec.graph import Graph

ROOT = SHARED / "corpus" / "aimet" / "conformance"
PLANS = sorted((ROOT / "plans").glob("*.json")) if ROOT.exists() else []
_graphs: dict[str, Graph] = {}


def _run(plan_file: Path) -> list[str]:
    gold = json.loads(plan_file.read_text())
    cfg = ROOT / "configs" / gold["config"]
    try:
        prof = aimet.read(cfg.read_text(), str(cfg), param_bw=gold["param_bw"],
                          act_bw=gold["act_bw"])
        if gold["model"] not in _graphs:
            _graphs[gold["model"]] = Graph.load(ROOT / "models" / gold["model"])
        ours = compile_profile(prof, _graphs[gold["model"]]).to_json()
    except QuantspecError as exc:
        if gold["outcome"] == "error":
            return []
        return [f"unexpected error: {exc}"]
    if gold["outcome"] == "error":
        return [f"AIMET raises {gold['error']['type']}: {gold['error']['message']}; we did not"]
    return compare(gold, ours)


@pytest.mark.corpus
@pytest.mark.skipif(not PLANS, reason="../shared/corpus/aimet/conformance not present")
def test_every_pair_matches_aimet() -> None:
    failures = {p.name: m for p in PLANS if (m := _run(p))}
    rate = 1 - len(failures) / len(PLANS)
    print(f"AIMET conformance: {len(PLANS) - len(failures)}/{len(PLANS)} pairs ({rate:.1%})")
    assert not failures, "\n".join(f"{k}: {v[:3]}" for k, v in list(failures.items())[:10])


@pytest.mark.corpus
@pytest.mark.skipif(not ROOT.exists(), reason="../shared not present")
@pytest.mark.parametrize("cfg", sorted((ROOT / "configs").glob("*.json")) if ROOT.exists()
                         else [], ids=lambda p: p.stem)
def test_read_write_read_is_identity(cfg: Path) -> None:
    try:
        prof = aimet.read(cfg.read_text(), str(cfg))
    except QuantspecError:
        assert "invalid" in cfg.stem
        return
    again = aimet.read(aimet.write(prof), "rt.json")
    assert [r for r in again.rules if not r.origin] == [r for r in prof.rules if not r.origin]
    assert again.patterns == prof.patterns
    assert again.passes == prof.passes or [n for n, _ in again.passes] == \
        [n for n, _ in prof.passes]
