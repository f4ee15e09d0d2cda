"""The examples in the runtime's docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import quantspec.runtime as runtime

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(runtime.__path__, prefix="quantspec.runtime.")
) + ["quantspec.runtime"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_every_public_name_is_documented() -> None:
    for name in runtime.__all__:
        obj = getattr(runtime, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"
