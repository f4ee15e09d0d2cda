"""What a profile or plan asks the transforms to do, normalized to one form.

A transform's value is written in three places, and all are accepted here:

* ``Profile.transforms``: ``{name: Setting(value)}`` (the .qspec ``transform { ... }`` block and
  the Vitis/AMCT readers, ``docs/dialects_vitis_amct.md``);
* ``Plan.transforms``: the same values made JSON-plain (tuples become lists);
* a plain ``{name: value}`` dict written by hand.

A value is ``true``/``false`` (``on``/``off``), or options as a mapping or as the
``[[key, value], ...]`` pairs the .qspec language keeps a mapping in, e.g. AMCT's
``do_fusion: false`` + ``skip_fusion_layers`` read as
``fold_batchnorm: [[enabled, false], [skip, ["conv1"]]]``. Options: ``enabled`` (default true
when options are given) and ``skip`` (layer names or globs) for every transform, plus
``following`` (fold_batchnorm) and ``high_bias_absorption`` (cle).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..errors import QuantspecError, did_you_mean
from ..source import Span
from .report import BAD_ONLY, BAD_OPTION, BAD_SPEC

# The order the transforms run in: folding first (CLE needs the folded layers and records the
# batch-norm statistics for high-bias absorption), ReLU6 -> ReLU before CLE (CLE is ReLU-only,
# spec 004 "Enhanced Quantization Techniques: Limitations"), bias correction last (it measures
# the final weights).
ORDER = ("fold_batchnorm", "relu6_to_relu", "cle", "bias_correction")
NOT_RUN = ("adaround",)  # in ir.TRANSFORMS, not executed by this pass

OPTIONS: dict[str, dict[str, type]] = {
    "fold_batchnorm": {"enabled": bool, "skip": tuple, "following": bool},
    "relu6_to_relu": {"enabled": bool, "skip": tuple},
    "cle": {"enabled": bool, "skip": tuple, "high_bias_absorption": bool},
    "bias_correction": {"enabled": bool, "skip": tuple},
    "adaround": {"enabled": bool},
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "fold_batchnorm": {"following": True},
    "cle": {"high_bias_absorption": True},
}
# Short names for ``quantspec transform --only``.
ALIASES = {"fold": "fold_batchnorm", "bn_fold": "fold_batchnorm", "bn": "fold_batchnorm",
           "relu6": "relu6_to_relu", "bias_corr": "bias_correction", "bc": "bias_correction",
           "equalize": "cle"}

_ON = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


@dataclass(frozen=True)
class TransformOptions:
    """One transform's normalized request."""

    name: str
    enabled: bool
    skip: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    span: Span | None = None

    def get(self, key: str) -> Any:
        return self.values.get(key, DEFAULTS.get(self.name, {}).get(key))

    def skips(self, *names: str) -> bool:
        """Whether any of ``names`` is in the skip list (exact name or glob)."""
        return any(n and (n in self.skip or any(fnmatch.fnmatchcase(n, p) for p in self.skip))
                   for n in names)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"enabled": self.enabled}
        if self.skip:
            d["skip"] = list(self.skip)
        for k in sorted(self.values):
            d[k] = self.get(k)
        return d


def normalize(spec: Any) -> dict[str, TransformOptions]:
    """``{name: TransformOptions}`` for every transform ``spec`` names.

    ``spec`` is a :class:`~quantspec.ir.Profile`, a Plan (anything with ``.transforms``), a
    plan JSON dict (with a ``"transforms"`` key), a mapping ``{name: value or Setting}``, or an
    iterable of names (each enabled with default options).
    """
    if spec is None:
        return {}
    if hasattr(spec, "transforms") and not isinstance(spec, Mapping):
        spec = spec.transforms
    elif isinstance(spec, Mapping) and "format" in spec and "transforms" in spec:
        spec = spec["transforms"]
    if isinstance(spec, str) or not isinstance(spec, (Mapping, Iterable)):
        raise QuantspecError(BAD_SPEC, f"cannot read transforms from a {type(spec).__name__}",
                             hint="pass a Profile, a Plan, a {name: value} dict or names")
    items = spec.items() if isinstance(spec, Mapping) else ((n, True) for n in spec)
    out: dict[str, TransformOptions] = {}
    for name, raw in items:
        if isinstance(raw, TransformOptions):  # already normalized (e.g. by restrict)
            out[raw.name] = raw
            continue
        span = raw.span if isinstance(raw, ir.Setting) else None
        value = raw.value if isinstance(raw, ir.Setting) else raw
        key = ALIASES.get(name, name)
        if key not in OPTIONS:
            raise QuantspecError(BAD_SPEC, f"unknown transform '{name}'", span,
                                 hint=did_you_mean(name, ir.TRANSFORMS)
                                 or f"transforms: {', '.join(ir.TRANSFORMS)}")
        out[key] = _options(key, value, span)
    return out


def restrict(requested: Mapping[str, TransformOptions],
             only: Iterable[str]) -> dict[str, TransformOptions]:
    """Run exactly the transforms in ``only`` (aliases allowed), keeping the options the
    profile gave them (a skip list still applies); all others are off."""
    names: list[str] = []
    for raw in only:
        name = ALIASES.get(raw.strip(), raw.strip())
        if name not in OPTIONS:
            raise QuantspecError(BAD_ONLY, f"unknown transform '{raw}' in --only",
                                 hint=did_you_mean(raw, [*OPTIONS, *ALIASES])
                                 or f"one of: {', '.join([*ORDER, *ALIASES])}")
        names.append(name)
    out: dict[str, TransformOptions] = {}
    for name in names:
        base = requested.get(name) or TransformOptions(name, True)
        out[name] = TransformOptions(name, True, base.skip, base.values, base.span)
    return out


def _options(name: str, value: Any, span: Span | None) -> TransformOptions:
    if value is None:
        return TransformOptions(name, False, span=span)
    if isinstance(value, bool):
        return TransformOptions(name, value, span=span)
    if isinstance(value, str) and value.lower() in _ON:
        return TransformOptions(name, _ON[value.lower()], span=span)
    mapping = _as_mapping(value)
    if mapping is None:
        raise QuantspecError(
            BAD_SPEC, f"transform '{name}': cannot read {value!r}", span,
            hint="write on/off, or options as [[enabled, true], [skip, [\"conv1\"]]]")
    allowed = OPTIONS[name]
    values: dict[str, Any] = {}
    enabled: bool = True
    skip: tuple[str, ...] = ()
    for key, v in mapping.items():
        if key not in allowed:
            raise QuantspecError(BAD_OPTION, f"transform '{name}' has no option '{key}'", span,
                                 hint=did_you_mean(key, allowed)
                                 or f"options: {', '.join(allowed)}")
        if allowed[key] is bool:
            if isinstance(v, str) and v.lower() in _ON:
                v = _ON[v.lower()]
            if not isinstance(v, bool):
                raise QuantspecError(BAD_OPTION, f"transform '{name}': option '{key}' must be "
                                     f"true or false, got {v!r}", span)
        if key == "enabled":
            enabled = v
        elif key == "skip":
            skip = _names(name, v, span)
        else:
            values[key] = v
    return TransformOptions(name, enabled, skip, values, span)


def _as_mapping(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str)
            for p in value):
        return {p[0]: p[1] for p in value}
    return None


def _names(name: str, v: Any, span: Span | None) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise QuantspecError(BAD_OPTION, f"transform '{name}': skip must be a list of layer names, "
                         f"got {v!r}", span)
