"""The one IR every dialect reads into and writes from.

A :class:`Profile` is an ordered list of :class:`Rule` (selector + settings + span), fusion
:class:`Pattern` s, :class:`Tie` s (shared encodings), graph passes, post hooks and global
calibration / transform options. The compiler resolves it against a graph with one cascade
(``docs/cascade.md``): a rule with higher ``(priority, level, order)`` wins a field.

Nothing in here knows a vendor: dialects express their quirks with these pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .source import Span

# ---------------------------------------------------------------------------------------------
# Settings: the per-tensor fields a rule may set. Order is the canonical print order.
# ---------------------------------------------------------------------------------------------

FIELDS: tuple[str, ...] = (
    "quantized",  # bool
    "dtype",  # "int" | "float"
    "bits",  # int
    "min_bits",  # int: raise bits to at least this (applied after the cascade)
    "symmetric",  # bool
    "strict_symmetric",  # bool: symmetric grid without the most negative code
    "unsigned_symmetric",  # bool: symmetric quantizer with min >= 0 uses the unsigned grid
    "signed",  # bool: signed integer grid (int8) vs unsigned (uint8) for the exported dtype
    "narrow_range",  # bool: drop the most negative code of a signed grid (int8 -> [-127, 127])
    "per_channel",  # bool
    "axis",  # int: per-channel axis override
    "block_size",  # int: blockwise quantization
    "scale_type",  # "float" | "power_of_two"
    "rounding",  # ROUNDING_MODES
    "calibration",  # Calibration
    "fixed_range",  # (min, max | None)
    "encodings",  # tuple of (min, max) per channel: a fixed per-channel encoding
)

BOOL_FIELDS = frozenset(
    {"quantized", "symmetric", "strict_symmetric", "unsigned_symmetric", "signed",
     "narrow_range", "per_channel"}
)
INT_FIELDS = frozenset({"bits", "min_bits", "axis", "block_size"})
DTYPES = ("int", "float")
SCALE_TYPES = ("float", "power_of_two")
ROUNDING_MODES = ("half_even", "half_up", "half_down", "half_away", "std_round", "floor", "ceil")
CALIBRATION_METHODS = (
    "minmax", "tf_enhanced", "percentile", "entropy", "mse", "diffs", "ifmr", "hfmg",
    "moving_average", "input_x_weight",
)
COMBINE_METHODS = ("max", "mean", "median", "modal", "min")

# Slots say which tensors of a matched op (or of the whole graph, in `defaults`) a block sets.
GENERIC_SLOTS = ("tensor", "output", "input", "param")
KIND_SLOTS = ("weight", "bias", "constant", "graph_input")
KNOWN_PARAM_ROLES = ("weight", "bias", "weight_r", "running_mean", "running_var")

# Specificity levels of the cascade, low to high (docs/cascade.md).
LEVEL_DEFAULTS = 0
LEVEL_ROLE = 1
LEVEL_OP = 2
LEVEL_OP_ROLE = 3
LEVEL_PATTERN = 4
LEVEL_MODEL_IO = 5
LEVEL_LAYER = 6
LEVEL_LAYER_ROLE = 7
LEVEL_TENSOR = 8

LEVEL_NAMES = {
    LEVEL_DEFAULTS: "defaults",
    LEVEL_ROLE: "role-wide",
    LEVEL_OP: "op type",
    LEVEL_OP_ROLE: "op type + role",
    LEVEL_PATTERN: "fused pattern",
    LEVEL_MODEL_IO: "model input/output",
    LEVEL_LAYER: "layer name",
    LEVEL_LAYER_ROLE: "layer name + role",
    LEVEL_TENSOR: "tensor name",
}


@dataclass(frozen=True)
class Calibration:
    """A calibration method and its parameters, e.g. ``percentile(99.99)``."""

    method: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str, default: Any = None) -> Any:
        for k, v in self.params:
            if k == name:
                return v
        return default

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "params": {k: _jsonable(v) for k, v in self.params}}


@dataclass(frozen=True)
class Ref:
    """A value taken from another tensor of the same op after the cascade (``like output``)."""

    slot: str

    def __str__(self) -> str:
        return f"like {self.slot}"


@dataclass(frozen=True)
class Setting:
    value: Any
    span: Span | None = None

    def __eq__(self, other: object) -> bool:  # spans do not make settings different
        return isinstance(other, Setting) and self.value == other.value

    def __hash__(self) -> int:
        return hash(repr(self.value))


# ---------------------------------------------------------------------------------------------
# Selectors and rules
# ---------------------------------------------------------------------------------------------

SCOPES = ("defaults", "op", "model_input", "model_output", "layer", "tensor")


@dataclass(frozen=True)
class Predicate:
    """An attribute test on a matched op: ``depthwise``, ``dynamic``, ``group > 1``."""

    name: str
    op: str = ""  # "", "==", "!=", ">", ">=", "<", "<="
    value: Any = None

    def __str__(self) -> str:
        if not self.op:
            return self.name
        return f"{self.name} {self.op} {_fmt_scalar(self.value)}"


@dataclass(frozen=True)
class Selector:
    scope: str  # one of SCOPES
    op_types: tuple[str, ...] = ()  # scope "op"
    names: tuple[str, ...] = ()  # scope "layer" (globs) / "tensor" (names or globs)
    slot: str = "tensor"  # GENERIC_SLOTS, KIND_SLOTS or a param role name
    index: int | None = None  # slot "input"/"output" with an index
    where: tuple[Predicate, ...] = ()

    @property
    def specific_slot(self) -> bool:
        return self.slot not in GENERIC_SLOTS or self.index is not None

    @property
    def level(self) -> int:
        if self.scope == "defaults":
            return LEVEL_ROLE if self.specific_slot else LEVEL_DEFAULTS
        if self.scope == "op":
            return LEVEL_OP_ROLE if self.specific_slot else LEVEL_OP
        if self.scope in ("model_input", "model_output"):
            return LEVEL_MODEL_IO
        if self.scope == "layer":
            return LEVEL_LAYER_ROLE if self.specific_slot else LEVEL_LAYER
        return LEVEL_TENSOR

    def describe(self) -> str:
        slot = self.slot + (f" {self.index}" if self.index is not None else "")
        if self.scope == "defaults":
            return f"defaults {slot}"
        if self.scope == "op":
            pred = f" ({', '.join(map(str, self.where))})" if self.where else ""
            return f"op {' | '.join(self.op_types)}{pred} {slot}"
        if self.scope in ("model_input", "model_output"):
            return self.scope.replace("_", " ") + ("" if self.slot == "tensor" else f" {slot}")
        what = ", ".join(f'"{n}"' for n in self.names)
        return f"{self.scope} {what}" + ("" if self.slot == "tensor" else f" {slot}")


@dataclass(frozen=True)
class Rule:
    selector: Selector
    settings: Mapping[str, Setting]
    span: Span | None = None
    final: bool = False  # a `final` rule beats every non-final rule (priority 1)
    group: str = ""  # conflict group: rules of one group that disagree on a tensor are an error
    origin: str = ""  # "" = written by the user; else who derived it (e.g. "aimet")
    note: str = ""  # why a derived rule exists (shown by explain)
    stmt: Span | None = None  # the whole statement (for the formatter); not part of equality

    @property
    def priority(self) -> int:
        return 1 if self.final else 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rule):
            return NotImplemented
        return (
            self.selector == other.selector
            and dict(self.settings) == dict(other.settings)
            and self.final == other.final
            and self.group == other.group
            and self.origin == other.origin
        )

    def __hash__(self) -> int:
        return hash((self.selector, self.final, self.group, self.origin))


@dataclass(frozen=True)
class Pattern:
    """A fusion pattern (supergroup): a linear chain of op types; no quantizer between them."""

    ops: tuple[tuple[str, ...], ...]  # each element: alternative op types
    span: Span | None = None
    origin: str = ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and (self.ops, self.origin) == (other.ops, other.origin)

    def __hash__(self) -> int:
        return hash(self.ops)

    def describe(self) -> str:
        return " -> ".join(" | ".join(alts) for alts in self.ops)


TIE_MODES = ("output_to_input", "inputs_to_output", "states")


@dataclass(frozen=True)
class Tie:
    """Shared encodings.

    ``output_to_input``: the op's output reuses its (first) input's encoding (Relu, AveragePool).
    ``inputs_to_output``: every activation input reuses the output's encoding (Concat).
    ``states``: recurrent ops: input/output/state tensors share one encoding (GRU, LSTM).
    ``tensors`` (mode ""): an explicit group of tensor names (AMCT joint_quant).
    """

    mode: str
    op_types: tuple[str, ...] = ()
    through: tuple[str, ...] = ()  # op types whose output passes the encoding through
    tensors: tuple[str, ...] = ()
    span: Span | None = None
    origin: str = ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tie) and (
            self.mode, self.op_types, self.through, self.tensors, self.origin
        ) == (other.mode, other.op_types, other.through, other.tensors, other.origin)

    def __hash__(self) -> int:
        return hash((self.mode, self.op_types, self.tensors))


@dataclass(frozen=True)
class Options:
    """Compiler options a profile sets (``options { ... }``)."""

    values: Mapping[str, Setting] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        s = self.values.get(name)
        return default if s is None else s.value


OPTION_DEFAULTS: dict[str, Any] = {
    # aimet2: longest pattern first, non-final ops must not branch, matches disjoint, no
    # depthwise/3-D first op (aimet.md B.3). aimet1: every chain matches, overlaps allowed.
    "fusion": "aimet2",
    # error: rules of one conflict group that disagree are an error; later_wins: silent.
    "conflicts": "later_wins",
    # error: per_channel on a tensor without a channel axis is an error; per_tensor: fall back.
    "per_channel_fallback": "error",
    # terminal: `model output` selects outputs of ops none of whose outputs feed another op
    # (aimet.md B.2 step 6); graph: it selects every graph output.
    "model_output": "terminal",
}
OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "fusion": ("aimet2", "aimet1"),
    "conflicts": ("error", "later_wins"),
    "per_channel_fallback": ("error", "per_tensor"),
    "model_output": ("terminal", "graph"),
}

GRAPH_PASSES = ("matmul_add", "layer_norm", "rms_norm", "masked_softmax")
TRANSFORMS = ("fold_batchnorm", "cle", "bias_correction", "relu6_to_relu", "adaround")


@dataclass(frozen=True)
class Profile:
    """A resolved-or-not set of rules. ``extends`` names what this profile builds on."""

    name: str = ""
    source: str = ""  # the file it came from
    dialect: str = "qspec"
    extends: tuple[tuple[str, Span | None], ...] = ()
    rules: tuple[Rule, ...] = ()
    patterns: tuple[Pattern, ...] = ()
    ties: tuple[Tie, ...] = ()
    passes: tuple[tuple[str, Span | None], ...] = ()
    post: tuple[tuple[str, Span | None], ...] = ()
    options: Options = field(default_factory=Options)
    calibrate: Mapping[str, Setting] = field(default_factory=dict)
    transforms: Mapping[str, Setting] = field(default_factory=dict)
    meta: Mapping[str, Setting] = field(default_factory=dict)  # vendor data kept for round trips
    span: Span | None = None  # the header, when there is one; not part of equality

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.name)

    def key(self) -> tuple[Any, ...]:
        """Everything that carries meaning (spans excluded)."""
        return (
            self.name,
            tuple(e for e, _ in self.extends),
            self.rules,
            self.patterns,
            self.ties,
            tuple(p for p, _ in self.passes),
            tuple(p for p, _ in self.post),
            tuple(sorted((k, repr(v.value)) for k, v in self.options.values.items())),
            tuple(sorted((k, repr(v.value)) for k, v in self.calibrate.items())),
            tuple(sorted((k, repr(v.value)) for k, v in self.transforms.items())),
            tuple(sorted((k, repr(v.value)) for k, v in self.meta.items())),
        )

    def meta_value(self, key: str, default: Any = None) -> Any:
        s = self.meta.get(key)
        return default if s is None else s.value

    def replace(self, **changes: Any) -> Profile:
        return replace(self, **changes)

    def user_rules(self) -> Iterator[Rule]:
        return (r for r in self.rules if not r.origin)


def value_of(settings: Mapping[str, Setting], name: str) -> Any:
    """The value of setting ``name``, or None when it is not set."""
    s = settings.get(name)
    return None if s is None else s.value


def merge(base: Profile, child: Profile) -> Profile:
    """``child extends base``: base's rules come first, so the child wins ties by order."""
    return Profile(
        name=child.name or base.name,
        source=child.source,
        dialect=child.dialect,
        extends=(),
        rules=base.rules + child.rules,
        patterns=base.patterns + tuple(p for p in child.patterns if p not in base.patterns),
        ties=base.ties + tuple(t for t in child.ties if t not in base.ties),
        passes=_merge_names(base.passes, child.passes),
        post=_merge_names(base.post, child.post),
        options=Options({**base.options.values, **child.options.values}),
        calibrate={**base.calibrate, **child.calibrate},
        transforms={**base.transforms, **child.transforms},
        meta={**base.meta, **child.meta},
    )


def _merge_names(
    a: Iterable[tuple[str, Span | None]], b: Iterable[tuple[str, Span | None]]
) -> tuple[tuple[str, Span | None], ...]:
    out = list(a)
    seen = {n for n, _ in out}
    out += [(n, s) for n, s in b if n not in seen]
    return tuple(out)


def _fmt_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return repr(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v
