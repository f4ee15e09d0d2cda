"""``quantspec transform``."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import onnx
import pytest
from transform_models import Builder, assert_equivalent, ops, randx

from quantspec.cli import main
from quantspec.commands.transform import load_npz
from quantspec.errors import QuantspecError

PROFILE = 'profile "t"\ndefaults { weight { on int8 symmetric per_channel } }\n' \
          "transform { fold_batchnorm: on  cle: on  bias_correction: on }\n"


@pytest.fixture
def files(tmp_path):
    b = Builder(seed=41)
    x = b.node("Relu", [b.bn(b.conv("x", "conv1", 3, 4), "bn1", 4)], "r1")
    y = b.conv(x, "conv2", 4, 2)
    model = b.model({"x": ["n", 3, 5, 5]}, {y: None})
    paths = {"model": tmp_path / "m.onnx", "profile": tmp_path / "p.qspec",
             "out": tmp_path / "out.onnx", "report": tmp_path / "r.json",
             "data": tmp_path / "d.npz"}
    onnx.save(model, paths["model"])
    paths["profile"].write_text(PROFILE)
    np.savez(paths["data"], x=np.random.default_rng(0).uniform(0, 1, (6, 3, 5, 5)))
    return {k: str(v) for k, v in paths.items()}, model


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_runs_the_profiles_transforms(files):
    p, model = files
    code, _, err = _run("transform", p["profile"], "--model", p["model"], "-o", p["out"],
                        "--data", p["data"], "--report", p["report"])
    assert code == 0, err
    new = onnx.load(p["out"])
    assert ops(new) == ["Conv", "Relu", "Conv"]
    report = json.loads(open(p["report"]).read())
    assert report["ran"] == ["fold_batchnorm", "cle", "bias_correction"]
    assert report["summary"]["corrected"] == 2
    assert "wrote" in err and "equalized   conv1 -> conv2" in err


def test_only_overrides_the_profile(files):
    p, model = files
    code, _, err = _run("transform", p["profile"], "--model", p["model"], "-o", p["out"],
                        "--only", "fold")
    assert code == 0, err
    new = onnx.load(p["out"])
    assert ops(new) == ["Conv", "Relu", "Conv"]
    assert_equivalent(model, new, {"x": randx(2, 3, 5, 5)})


def test_bias_correction_without_data_warns(files):
    p, _ = files
    code, _, err = _run("transform", p["profile"], "--model", p["model"], "-o", p["out"])
    assert code == 0 and "W620" in err


def test_refuses_to_overwrite_the_model(files):
    p, _ = files
    before = open(p["model"], "rb").read()
    code, _, err = _run("transform", p["profile"], "--model", p["model"], "-o", p["model"])
    assert code == 1 and "E605" in err
    assert open(p["model"], "rb").read() == before


def test_bad_only_name(files):
    p, _ = files
    code, _, err = _run("transform", p["profile"], "--model", p["model"], "-o", p["out"],
                        "--only", "fold,eqalize")
    assert code == 1 and "E607" in err


def test_bad_data_files(files, tmp_path):
    p, _ = files
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.array([{"a": 1}], dtype=object))  # needs pickle to load
    code, _, err = _run("transform", p["profile"], "--model", p["model"], "-o", p["out"],
                        "--data", str(bad))
    assert code == 1 and "bad.npz" in err and "pickle" in err
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, y=np.zeros((2, 3, 5, 5), np.float32))
    code, _, err = _run("transform", p["profile"], "--model", p["model"], "-o", p["out"],
                        "--data", str(wrong))
    assert code == 1 and "'x'" in err
    assert not os.path.exists(p["out"])  # nothing written on error


def test_load_npz_without_the_data_module(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.ones((2, 3)), y=np.zeros(4))
    assert {k: v.shape for k, v in load_npz(str(good)).items()} == {"x": (2, 3), "y": (4,)}
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.array([{"a": 1}], dtype=object))
    one = tmp_path / "one.npy"
    np.save(one, np.ones(3))
    for path, message in ((bad, "allow_pickle"), (one, "single .npy array"),
                          (tmp_path / "none.npz", "not found")):
        with pytest.raises(QuantspecError, match=message) as exc:
            load_npz(str(path))
        assert exc.value.code == "E604"
