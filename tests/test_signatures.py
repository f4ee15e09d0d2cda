"""Cascade signatures: the numpy bitmask path (large graphs) gives the groups the list path
gives, and whole plans do not depend on which path ran."""
from __future__ import annotations

import random

import pytest
from models import conv_relu_add
from reliability import fuzz_support as fs
from test_plans import MODELS

from quantspec.compiler import compile_profile
from quantspec.compiler import resolve as r
from quantspec.graph import Graph
from quantspec.lang.load import load, stdlib_names


def _as_sigs(cands: list[str], group_of: list[int], group_sigs: list[tuple[int, ...]]
             ) -> dict[str, tuple[int, ...]]:
    return {name: group_sigs[gid] for name, gid in zip(cands, group_of, strict=True)}


def _both(sels: list[list[str]], row_obj: list[int], cands: list[str],
          monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, tuple[int, ...]], ...]:
    monkeypatch.setattr(r, "VECTOR_PAIRS", 0)
    masked = _as_sigs(cands, *r._signatures(sels, row_obj, cands))
    monkeypatch.setattr(r, "VECTOR_PAIRS", 10**12)
    listed = _as_sigs(cands, *r._signatures(sels, row_obj, cands))
    return masked, listed


@pytest.mark.parametrize("rows", [1, 5, 63, 64, 65, 130])
def test_masks_give_the_list_signatures(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(rows)
    cands = [f"t{i}" for i in range(300)]
    sels: list[list[str]] = []
    for i in range(rows):
        kind = i % 5
        if kind == 0:
            sels.append(list(cands))  # every candidate
        elif kind == 1:
            sels.append([])
        elif kind == 4 and i > 5:
            sels.append(list(sels[i - 2]))  # a selection made again by a later rule
        else:
            sels.append(rng.sample(cands, rng.randint(1, 120)))  # any order, no repeats
    row_obj = [rng.randrange(max(1, rows // 2)) for _ in range(rows)]  # rules seen twice
    masked, listed = _both(sels, row_obj, cands, monkeypatch)
    assert masked == listed
    assert rows < 3 or len(set(listed.values())) > 1


def test_a_row_naming_a_tensor_twice_keeps_the_repeat(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    cands = ["a", "b", "c"]
    sels = [["a", "b"], ["c", "a", "c"]]  # overlapping pattern matches in one row
    masked, listed = _both(sels, [0, 1], cands, monkeypatch)
    assert masked == listed == {"a": (0, 1), "b": (0,), "c": (1, 1)}


def _plans(monkeypatch: pytest.MonkeyPatch, threshold: int) -> dict[str, str]:
    monkeypatch.setattr(r, "VECTOR_PAIRS", threshold)
    graphs = {name: Graph.from_model(fn()) for name, fn in MODELS.items()}
    graphs["conv_relu_add"] = Graph.from_model(conv_relu_add())
    for i in range(6):
        model, _ = fs.gen_graph(fs.RngChooser(random.Random(8800 + i)), odd=False)
        graphs[f"gen{i}"] = Graph.from_model(model)
    out = {}
    for profile in stdlib_names():
        prof = load(profile)
        for gname, g in graphs.items():
            try:
                out[f"{profile} x {gname}"] = compile_profile(prof, g, "m.onnx").dumps()
            except Exception as exc:  # noqa: BLE001 - the same error either way
                out[f"{profile} x {gname}"] = repr(exc)
    return out


def test_plans_do_not_depend_on_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    masked = _plans(monkeypatch, 0)
    assert masked == _plans(monkeypatch, 10**12)
    assert sum(not v.startswith(("QuantspecError", "<")) for v in masked.values()) > 50
