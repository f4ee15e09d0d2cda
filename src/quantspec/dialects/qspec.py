"""The quantspec language itself, as a dialect (read = parse, write = canonical format)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import ir
from ..errors import Report
from ..lang.format import format_profile
from ..lang.parse import parse

NAME = "qspec"
SUFFIXES = (".qspec",)


def detect(text: str) -> bool:
    stripped = text.lstrip()
    return not stripped.startswith(("{", "["))


def read(text: str, file: str = "<qspec>", **_: Any) -> ir.Profile:
    return parse(text, file)


def write(profile: ir.Profile, report: Report | None = None, **_: Any) -> str:
    """Every IR construct has a .qspec form; derived rules are written with a comment.

    Profiles read from another dialect often state one selector several times in a row (a
    vendor's built-in table, then the file's overrides); those print as one block.
    """
    return format_profile(dataclasses.replace(profile, rules=compact_rules(profile)))


def compact_rules(profile: ir.Profile) -> list[ir.Rule]:
    """Sort rules by level and merge runs of one selector into one rule, later settings winning.

    The merged rule keeps the first origin (origins are comments in .qspec text anyway). Safe
    because the cascade resolves equal-precedence rules in order (later wins); it is not
    done where that order would instead be an error: rules in one conflict group, or any
    overlap under ``options { conflicts: error }``.
    """
    strict = (ir.value_of(profile.options.values, "conflicts")
              or ir.OPTION_DEFAULTS["conflicts"]) == "error"
    out: list[ir.Rule] = []
    # The cascade orders rules by (final, level, position): moving a rule past rules of
    # another level changes nothing, so a stable sort by level brings same-selector rules
    # together and prints the file from general to specific.
    for r in sorted(profile.rules, key=lambda r: r.selector.level):
        prev = out[-1] if out else None
        if (prev is not None and prev.selector == r.selector and prev.final == r.final
                and prev.group == r.group
                and ((not r.group and not strict) or not set(prev.settings) & set(r.settings))):
            notes = [n for n in (prev.note, r.note) if n]
            out[-1] = dataclasses.replace(
                prev, settings={**prev.settings, **r.settings}, origin=prev.origin or r.origin,
                note="; ".join(dict.fromkeys(notes)), stmt=None)
        else:
            out.append(r)
    return out
