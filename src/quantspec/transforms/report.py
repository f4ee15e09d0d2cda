"""What the graph transforms did, and what they refused: JSON-able and printable.

Refusals are warnings, never exceptions: a pattern a transform cannot handle (a branched CLE
chain, a batch norm whose parameters are computed at run time, ...) is left as it was and
recorded here with a code, the nodes concerned, a message and a hint.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostic
from ..source import Span

REPORT_FORMAT = "quantspec-transform-report/1"

# -- error codes (E600-E629): bad input that stops the run ---------------------------------------
BAD_SPEC = "E600"  # a transforms value that is neither on/off nor an option mapping
BAD_OPTION = "E601"  # an unknown or ill-typed option of one transform
BAD_MODEL = "E602"  # a model the transforms cannot read (no graph, unsupported initializer type)
BAD_DATA = "E603"  # calibration data missing an input, wrong shape or dtype, no samples
DATA_FILE = "E604"  # a calibration data file that cannot be read
OVERWRITE = "E605"  # the output path is the input model
RUNTIME = "E606"  # onnxruntime could not run the model for the statistics
BAD_ONLY = "E607"  # an unknown name in --only

# -- warning codes (W600-W629): a transform left part of the model alone ------------------------
W_FOLD_REFUSED = "W600"  # BN not foldable: shared tensor, dynamic params, training mode, ...
W_FOLD_PADDING = "W601"  # BN before a padded Conv: folding forward would not be equivalent
W_SKIP_UNKNOWN = "W602"  # a skip-list name that matches no node
W_RELU6_DYNAMIC = "W603"  # a Clip whose bounds are not static: cannot tell whether it is ReLU6
W_CLE_BRANCHED = "W610"  # the tensor between two layers has more than one consumer
W_CLE_OP = "W611"  # an op between two layers that CLE does not handle (ReLU6 without relu6_to_relu)
W_CLE_NO_BN = "W612"  # no batch-norm statistics: high-bias absorption skipped
W_CLE_LAYER = "W613"  # a layer CLE cannot scale (grouped conv, shared weights, graph output)
W_BC_NO_DATA = "W620"  # bias correction asked for without calibration data
W_BC_LAYER = "W621"  # a layer bias correction leaves alone (no bias, weight not quantized)
W_NOT_IMPLEMENTED = "W625"  # a transform the IR can name but this pass does not run


@dataclass
class Refusal:
    transform: str
    code: str
    message: str
    nodes: list[str] = field(default_factory=list)
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"transform": self.transform, "code": self.code,
                             "message": self.message, "nodes": self.nodes}
        if self.hint:
            d["hint"] = self.hint
        return d

    def diagnostic(self, where: str = "<model>") -> Diagnostic:
        path = ", ".join(f"node '{n}'" for n in self.nodes[:3])
        return Diagnostic(self.code, f"{self.transform}: {self.message}", Span(where, path=path),
                          (), self.hint, "warning")


@dataclass
class TransformReport:
    """Everything one :func:`~quantspec.transforms.apply_transforms` run did.

    ``folded``, ``converted``, ``equalized`` and ``corrected`` hold one dict per change (see
    ``docs/transforms.md`` for their keys); ``refused`` the parts left alone and why.
    """

    model: str = ""
    requested: dict[str, Any] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    folded: list[dict[str, Any]] = field(default_factory=list)
    converted: list[dict[str, Any]] = field(default_factory=list)
    equalized: list[dict[str, Any]] = field(default_factory=list)
    corrected: list[dict[str, Any]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def refuse(self, transform: str, code: str, message: str, nodes: list[str] | None = None,
               hint: str = "") -> None:
        self.refused.append(Refusal(transform, code, message, list(nodes or ()), hint))

    def summary(self) -> dict[str, int]:
        return {"folded": len(self.folded), "converted": len(self.converted),
                "equalized": len(self.equalized), "corrected": len(self.corrected),
                "refused": len(self.refused)}

    def diagnostics(self) -> list[Diagnostic]:
        return [r.diagnostic(self.model or "<model>") for r in self.refused]

    def to_json(self) -> dict[str, Any]:
        return _finite({
            "format": REPORT_FORMAT,
            "model": self.model,
            "requested": self.requested,
            "ran": self.ran,
            "summary": self.summary(),
            "folded": self.folded,
            "converted": self.converted,
            "equalized": self.equalized,
            "corrected": self.corrected,
            "refused": [r.to_json() for r in self.refused],
            "notes": self.notes,
        })

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n"

    def render(self, refusals: bool = True) -> str:
        """A short human-readable account, one line per change (and refusal, unless
        ``refusals`` is False: the CLI prints those as warnings of their own)."""
        s = self.summary()
        out = [f"transforms run: {', '.join(self.ran) or 'none'}; "
               + ", ".join(f"{v} {k}" for k, v in s.items())]
        for f in self.folded:
            out.append(f"  folded      {f['batchnorm']} into {f['into']} ({f['position']})")
        for c in self.converted:
            out.append(f"  converted   {c['node']}: {c['from']} -> {c['to']}")
        for e in self.equalized:
            sc = e["scales"]
            line = (f"  equalized   {' -> '.join(e['layers'])}: scales {sc['min']:.3g}.."
                    f"{sc['max']:.3g} (geomean {sc['geomean']:.3g})")
            for a in e.get("absorbed", ()):
                line += f"; absorbed {a['channels']} bias channel(s) {a['from']} -> {a['into']}"
            out.append(line)
        for c in self.corrected:
            out.append(f"  corrected   {c['layer']}: bias shift norm {c['shift_norm']:.3g} "
                       f"(max {c['shift_max']:.3g}, {c['weight_encoding']})")
        for r in self.refused if refusals else ():
            where = f" [{', '.join(r.nodes)}]" if r.nodes else ""
            out.append(f"  {r.code} {r.transform}{where}: {r.message}")
            if r.hint:
                out.append(f"        hint: {r.hint}")
        out.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(out)


def _finite(v: Any) -> Any:
    """JSON without NaN/inf: those become strings (the report must load anywhere)."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
