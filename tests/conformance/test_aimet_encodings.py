"""AIMET calibrated corpus: ``calibrate`` reproduces every encoding aimet-onnx 2.42.0 computed.

For each calibrated pair in ``../shared/corpus/aimet/conformance/encodings`` the config is compiled
against the model, calibrated on the pair's exact inputs (one forward pass per sample, as AIMET's
``compute_encodings`` was called), and every enabled quantizer's ``scale``, ``offset``, ``min``,
``max``, bit width and channel count is compared with the golden values **for equality of the
float64 numbers**: no tolerance. That is possible because the activation forward pass runs in the
same onnxruntime (1.32, CPU) with the same float operations as AIMET's simulation graph (no graph
optimizations, no weight pre-packing, weights quantize-dequantized first), and every encoding
formula is AIMET's (research aimet.md C). The exported ``.encodings`` file must equal AIMET's byte
for byte once the ``producer`` field is set to AIMET's.

File names: ``__w4a16`` = ``--param-bw 4 --act-bw 16``; ``__tf_enhanced`` = quant_scheme.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qs_paths import SHARED

from quantspec.compiler import compile_profile
from quantspec.dialects import aimet
from quantspec.graph import Graph
from quantspec.onnx_io import load_model
from quantspec.runtime.calibrate import (
    aimet_quantizer_args,
    calibrate,
    semantics_for_profile,
)
from quantspec.runtime.data import open_data
from quantspec.runtime.execute import input_specs

ROOT = SHARED / "corpus" / "aimet" / "conformance"
PAIRS = sorted((ROOT / "encodings").glob("*.quantizers.json")) if ROOT.exists() else []
FIELDS = ("scale", "offset", "min", "max")


def _run(gold_path: Path, semantics: str | None = None) -> tuple[dict[str, Any], Any, Any]:
    gold = json.loads(gold_path.read_text())
    cfg = ROOT / "configs" / gold["config"]
    prof = aimet.read(cfg.read_text(), str(cfg), param_bw=gold["param_bw"],
                      act_bw=gold["act_bw"])
    model = load_model(ROOT / "models" / gold["model"])
    plan = compile_profile(prof, Graph.from_model(model), gold["model"])
    data = open_data(ROOT / "encodings" / gold["calibration"]["inputs_file"],
                     input_specs(model))
    result = calibrate(plan, model, data, semantics=semantics or semantics_for_profile(prof),
                       quant_scheme=gold["quant_scheme"])
    return gold, prof, result


def _mismatches(gold: dict[str, Any], result: Any) -> tuple[int, list[str]]:
    bad = []
    for name, want in gold["quantizers"].items():
        enc = result.encodings.get(name)
        if want is None:
            if enc is not None:
                bad.append(f"{name}: AIMET has no encoding, we have one")
            continue
        if enc is None:
            bad.append(f"{name}: no encoding")
            continue
        if enc.bits != want["bw"] or enc.channels != want["n"]:
            bad.append(f"{name}: bw/n {enc.bits}/{enc.channels} != {want['bw']}/{want['n']}")
            continue
        for f in FIELDS:
            ours = getattr(enc, f)
            theirs = np.array(want[f], dtype=np.float64)
            if not np.array_equal(ours, theirs):
                i = int(np.flatnonzero(ours != theirs)[0])
                bad.append(f"{name}.{f}[{i}]: {ours[i]!r} != {theirs[i]!r}")
                break
    extra = sorted(set(result.encodings) - set(gold["quantizers"]))
    bad += [f"{name}: not a quantizer in AIMET" for name in extra]
    return len(gold["quantizers"]), bad


@pytest.mark.corpus
@pytest.mark.skipif(not PAIRS, reason="../shared/corpus/aimet/conformance not present")
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name.split(".")[0])
def test_calibrated_pair_is_bit_exact(pair: Path) -> None:
    gold, prof, result = _run(pair)
    total, bad = _mismatches(gold, result)
    print(f"{pair.name.split('.')[0]}: {total - len(bad)}/{total} quantizers exact "
          f"({result.batches} batches, {result.backend})")
    assert not bad, "\n".join(bad[:10])
    # The exported file, through the encodings writer, is AIMET's own text.
    text = result.encodings_text(
        "1.0.0", quantizer_args=aimet_quantizer_args(prof, gold["quant_scheme"]),
        producer=json.loads((ROOT / "encodings" / gold["exported_file"]).read_text())[
            "producer"])
    assert text == (ROOT / "encodings" / gold["exported_file"]).read_text()


@pytest.mark.corpus
@pytest.mark.skipif(not PAIRS, reason="../shared/corpus/aimet/conformance not present")
def test_aimet_behaviours_are_what_makes_it_exact() -> None:
    """Without AIMET semantics (float forward pass, float64 weight scales) the same pair fails."""
    pair = next(p for p in PAIRS if p.name.startswith("p01_"))
    gold, _, result = _run(pair, semantics="generic")
    total, bad = _mismatches(gold, result)
    assert any(b.startswith("conv_w_5.scale") for b in bad)
    assert any(b.startswith("relu_4_out.") for b in bad)
