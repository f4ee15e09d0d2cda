"""Reading what a profile or plan asks for, the run order and the report."""

from __future__ import annotations

import json

import pytest
from transform_models import Builder, ops

from quantspec import ir
from quantspec.compiler import compile_profile
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.lang.load import loads, read_profile
from quantspec.transforms import apply_transforms, normalize, restrict


def _model():
    b = Builder(seed=31)
    x = b.bn(b.conv("x", "conv1", 3, 4), "bn1", 4)
    x = b.node("Clip", [x, b.param("lo", 0.0), b.param("hi", 6.0)], "act", "relu6")
    y = b.bn(b.conv(x, "conv2", 4, 4), "bn2", 4)
    return b.model({"x": ["n", 3, 5, 5]}, {y: None})


def test_qspec_transform_block():
    prof = loads('profile "t"\ntransform { fold_batchnorm: on  cle: on  relu6_to_relu: on\n'
                 '  bias_correction: off }\n')
    req = normalize(prof)
    assert {k: v.enabled for k, v in req.items()} == {
        "fold_batchnorm": True, "cle": True, "relu6_to_relu": True, "bias_correction": False}
    out, report = apply_transforms(_model(), prof)
    assert report.ran == ["fold_batchnorm", "relu6_to_relu", "cle"]  # the fixed order
    assert ops(out) == ["Conv", "Relu", "Conv"]
    assert len(report.folded) == 2 and len(report.converted) == 1 and len(report.equalized) == 1


def test_vitis_switches():
    # include_cle / include_bias_corr default to true in vai_q_pytorch (vitis_amct.md 1.2)
    text = json.dumps({"target_device": "CPU", "convert_relu6_to_relu": True})
    prof = read_profile(text, "cfg.json", "vitis")
    out, report = apply_transforms(_model(), prof)
    assert report.ran == ["fold_batchnorm", "relu6_to_relu", "cle"]
    assert [r.code for r in report.refused] == ["W620"]  # bias correction: no data


def test_amct_skip_fusion_layers():
    text = 'do_fusion: true\nskip_fusion_layers: "conv2"\n'
    prof = read_profile(text, "q.cfg", "amct")
    out, report = apply_transforms(_model(), prof)
    assert [f["batchnorm"] for f in report.folded] == ["bn1"]
    assert ops(out).count("BatchNormalization") == 1


def test_plan_transforms_are_json_plain():
    prof = loads('profile "t"\ntransform { fold_batchnorm: [[enabled, true], '
                 '[skip, ["conv1"]]] }\n')
    plan = compile_profile(prof, Graph.from_model(_model()), "m")
    assert plan.transforms == {"fold_batchnorm": [["enabled", True], ["skip", ["conv1"]]]}
    _, report = apply_transforms(_model(), plan.transforms)
    assert [f["batchnorm"] for f in report.folded] == ["bn2"]
    _, again = apply_transforms(_model(), None, plan=json.loads(plan.dumps()))
    assert again.folded == report.folded


def test_names_and_aliases():
    assert set(normalize(["fold", "cle"])) == {"fold_batchnorm", "cle"}
    req = restrict(normalize({"fold_batchnorm": {"skip": ["conv1"]}}), ["fold", " relu6 "])
    assert req["fold_batchnorm"].skip == ("conv1",) and req["relu6_to_relu"].enabled


@pytest.mark.parametrize("spec,code,message", [
    ({"fold_bn": True}, "E600", "unknown transform 'fold_bn'"),
    ({"cle": 3}, "E600", "cannot read 3"),
    ({"cle": {"skip": ["a"], "alpha": 1}}, "E601", "has no option 'alpha'"),
    ({"cle": {"high_bias_absorption": "maybe"}}, "E601", "must be true or false"),
    ({"fold_batchnorm": {"skip": 3}}, "E601", "skip must be a list"),
    ("cle", "E600", "cannot read transforms"),
])
def test_bad_specs(spec, code, message):
    with pytest.raises(QuantspecError, match=message) as exc:
        normalize(spec)
    assert exc.value.code == code


def test_spans_point_into_the_profile():
    prof = ir.Profile(transforms={"cle": ir.Setting(7, ir.Span("p.qspec", 3, 9))})
    with pytest.raises(QuantspecError) as exc:
        normalize(prof)
    assert str(exc.value.span) == "p.qspec:3:9"


def test_unknown_only_name():
    with pytest.raises(QuantspecError, match="'flod'") as exc:
        restrict({}, ["flod"])
    assert exc.value.code == "E607" and "fold" in exc.value.diagnostic.hint


def test_adaround_is_reported_not_run():
    out, report = apply_transforms(_model(), {"adaround": True})
    assert [r.code for r in report.refused] == ["W625"] and ops(out) == ops(_model())


def test_report_is_json_and_printable():
    _, report = apply_transforms(_model(), {"fold_batchnorm": True, "cle": True})
    doc = json.loads(report.dumps())
    assert doc["format"] == "quantspec-transform-report/1"
    assert doc["summary"] == {"folded": 2, "converted": 0, "equalized": 0, "corrected": 0,
                              "refused": 1}
    assert doc["refused"][0]["code"] == "W611"
    text = report.render()
    assert "folded      bn1 into conv1 (preceding)" in text and "W611 cle" in text
    assert [d.code for d in report.diagnostics()] == ["W611"]
