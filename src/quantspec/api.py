"""The Python API in a few calls: load a profile, compile it, translate it.

>>> import quantspec
>>> prof = quantspec.loads('defaults { output { on int8 } weight { on int8 symmetric } }')
>>> text, warnings = quantspec.translate(prof, "aimet")
>>> text.lstrip().startswith("{"), [w.code for w in warnings]  # bits; AIMET's own rules
(True, ['W502', 'W502', 'W503'])

Everything here is a thin layer over :mod:`quantspec.lang.load`, :mod:`quantspec.compiler`,
:mod:`quantspec.dialects` and :mod:`quantspec.graph`; the runtime (calibration, simulation,
export) is :mod:`quantspec.runtime`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import Diagnostic, Report

if TYPE_CHECKING:
    import onnx

    from .compiler.plan import Plan
    from .ir import Profile

__all__ = ["compile", "load", "loads", "translate"]


def load(path: str | os.PathLike[str], dialect: str | None = None, *,
         allow_outside: bool = False, **options: Any) -> Profile:
    """Read a profile file in any dialect (detected unless ``dialect`` is given) and merge
    everything it ``extends``. AIMET options: ``param_bw``, ``act_bw``, ``version``."""
    from .lang.load import load as _load

    return _load(os.fspath(path), dialect, allow_outside, **options)


def loads(text: str, file: str = "<string>", dialect: str | None = None,
          **options: Any) -> Profile:
    """Like :func:`load`, from a string (``file`` names it in error positions)."""
    from .lang.load import loads as _loads

    return _loads(text, file, dialect, **options)


def compile(profile: Profile | str | os.PathLike[str],  # noqa: A001 - the verb users expect
            model: onnx.ModelProto | str | os.PathLike[str], **options: Any) -> Plan:
    """Resolve ``profile`` (a Profile or a path) against ``model`` (a path or ModelProto) into
    a :class:`~quantspec.compiler.plan.Plan`."""
    from .compiler import compile_profile
    from .graph import Graph

    prof = profile if not isinstance(profile, (str, os.PathLike)) else load(profile, **options)
    if isinstance(model, (str, os.PathLike)):
        return compile_profile(prof, Graph.load(model), os.path.basename(os.fspath(model)))
    return compile_profile(prof, Graph.from_model(model), model.graph.name or "<model>")


def translate(profile: Profile, to: str) -> tuple[str, list[Diagnostic]]:
    """Write ``profile`` in dialect ``to``; returns the text and what the target cannot hold
    (one warning per dropped or approximated item, with its source position)."""
    from . import dialects

    report = Report()
    text = dialects.get(to).write(profile, report)
    return text, list(report.diagnostics)
