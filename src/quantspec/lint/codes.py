"""The lint finding codes: one stable code per kind of problem, documented in docs/lint.md.

Errors the readers and the compiler raise keep their own codes (``E0xx`` syntax, ``E1xx`` dialect
input, ``E2xx`` compile, ...) and the warnings the readers report keep theirs (``W1xx``); lint
adds the ``L0xx`` codes below. ``L001``-``L019`` need only the file, ``L020``-``L039`` need
``--model``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    name: str  # short kebab-case name (SARIF rule name)
    summary: str  # one line: what the finding says
    severity: str  # default level: "error" | "warning" | "info"
    needs_model: bool = False


CODES: dict[str, Code] = {c.code: c for c in (
    Code("L001", "unknown-op-type", "op type that is not an ONNX (or onnxruntime contrib) op type",
         "warning"),
    Code("L002", "ignored-key", "key the vendor tool silently ignores", "warning"),
    Code("L003", "duplicate-key", "key given twice; only the last value counts", "warning"),
    Code("L004", "value-out-of-range", "value outside the range the setting accepts", "error"),
    Code("L005", "equal-precedence-conflict",
         "rules at equal precedence set different values for the same tensors", "warning"),
    Code("L006", "odd-name-pattern", "layer or tensor name pattern that is probably a mistake",
         "warning"),
    Code("L007", "empty-rule", "rule that sets nothing", "warning"),
    Code("L020", "matches-nothing", "rule or name that selects nothing in the model", "warning",
         True),
    Code("L021", "fully-shadowed",
         "rule whose every setting is overridden on every tensor it selects", "warning", True),
    Code("L022", "pattern-never-matches", "fusion pattern (supergroup) that never matches",
         "warning", True),
)}

# The readers' and the compiler's codes that lint passes through, for SARIF rule descriptions.
PASSTHROUGH_SUMMARY = {
    "E0": "syntax error in a .qspec file",
    "E1": "invalid dialect input",
    "E2": "the profile cannot be compiled against the model",
    "E3": "the ONNX model cannot be read",
    "E5": "input/output error",
    "W1": "the vendor tool ignores or reinterprets this value",
}


def summary(code: str) -> str:
    if code in CODES:
        return CODES[code].summary
    return PASSTHROUGH_SUMMARY.get(code[:2], "quantspec diagnostic")
