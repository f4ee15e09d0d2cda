from __future__ import annotations

import doctest

from models import conv_relu_add
from qs_paths import REPO

import quantspec
import quantspec.api


def test_api_doctests() -> None:
    result = doctest.testmod(quantspec.api)
    assert result.attempted and not result.failed


def test_compile_from_paths_and_objects(tmp_path) -> None:
    import onnx

    model = conv_relu_add()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    cfg = REPO / "examples" / "quickstart" / "htp_like.json"
    a = quantspec.compile(cfg, path)
    b = quantspec.compile(quantspec.load(cfg), model)
    assert a.summary() == b.summary() and a.summary()["quantized"] > 0
    assert [e.to_json()["bits"] for e in a.entries] == [e.to_json()["bits"] for e in b.entries]


def test_translate_reports_losses() -> None:
    prof = quantspec.loads('layer "conv1" { output { int16 } }', "p.qspec")
    text, warnings = quantspec.translate(prof, "aimet")
    assert text.lstrip().startswith("{")
    assert warnings and warnings[0].span is not None and warnings[0].span.line == 1


def test_unknown_attribute() -> None:
    import pytest

    with pytest.raises(AttributeError):
        quantspec.no_such_thing  # noqa: B018
