"""Every lint code: its fixture yields exactly the expected findings at the expected positions,
and docs/lint.md documents it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lint_support import LINT_FIXTURES
from qs_paths import REPO

from quantspec.lint import CODES, lint_files

# fixture -> (needs the model, [(code, line, col, severity), ...] for the codes it is about)
EXPECTED: dict[str, tuple[bool, list[tuple[str, int, int, str]]]] = {
    "L001_unknown_op_type.qspec": (False, [("L001", 3, 11, "warning")]),
    "L001_unknown_op_type_aimet.json": (False, [("L001", 5, 5, "warning"),
                                                ("L001", 7, 40, "warning")]),
    "L002_ignored_key_aimet.json": (False, [("L002", 3, 14, "warning"),
                                            ("L002", 6, 28, "warning")]),
    "L003_duplicate_key_vitis.json": (False, [("L003", 6, 5, "warning")]),
    "L003_duplicate_field_amct.cfg": (False, [("L003", 3, 1, "warning")]),
    "L004_value_out_of_range.qspec": (False, [("L004", 3, 27, "error"),
                                              ("L004", 4, 36, "error")]),
    "L005_equal_precedence_conflict.qspec": (False, [("L005", 4, 20, "warning")]),
    "L006_odd_name_pattern.qspec": (False, [("L006", 3, 7, "warning")]),
    "L007_empty_rule.qspec": (False, [("L007", 3, 1, "warning")]),
    "L020_matches_nothing.qspec": (True, [("L020", 3, 16, "warning")]),
    "L021_fully_shadowed.qspec": (True, [("L021", 3, 11, "warning")]),
    "L022_pattern_never_matches.qspec": (True, [("L022", 4, 1, "warning")]),
    "W141_reader_warning_vitis.json": (False, [("W141", 9, 6, "warning")]),
}


def _about(name: str) -> str:
    return name.split("_", 1)[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_findings(name: str, model_path: Path) -> None:
    needs_model, want = EXPECTED[name]
    path = str(LINT_FIXTURES / name)
    diags = lint_files([path], str(model_path) if needs_model else None)
    code = _about(name)
    got = [(d.code, d.span.line, d.span.col, d.severity) for d in diags
           if d.code == code and d.span is not None]
    assert got == want
    assert all(d.span is not None and d.span.file == path for d in diags)


def test_every_code_has_a_fixture_and_docs() -> None:
    fixtures = {p.name for p in LINT_FIXTURES.iterdir()}
    assert fixtures == set(EXPECTED), "every fixture is checked, every check has a fixture"
    covered = {_about(n) for n in EXPECTED}
    assert set(CODES) <= covered
    docs = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (L\d{3}) ", docs, re.M))
    assert headings == set(CODES)
    for code, c in CODES.items():
        section = docs.split(f"### {code} ", 1)[1].split("\n### ", 1)[0]
        assert c.name in section.splitlines()[0]
        for part in ("**Why**", "**Fix**"):
            assert part in section, f"{code} docs lack {part}"


def test_model_codes_are_silent_without_a_model() -> None:
    for name, (needs_model, _) in EXPECTED.items():
        if needs_model:
            diags = lint_files([str(LINT_FIXTURES / name)])
            assert not [d for d in diags if CODES.get(d.code, None) and
                        CODES[d.code].needs_model], name


def test_related_positions_of_a_conflict() -> None:
    path = str(LINT_FIXTURES / "L005_equal_precedence_conflict.qspec")
    (d,) = [d for d in lint_files([path]) if d.code == "L005"]
    assert [(s.line, s.col, note) for s, note in d.related] == [(3, 27, "also set by")]
    assert "'bits' (8 here, 16 there)" in d.message
