"""Layer / tensor name patterns that are valid but probably not what their author meant.

Names in ``layer`` and ``tensor`` rules are ``fnmatch`` globs (``*``, ``?``, ``[...]``) matched
against the whole name (compiler/select.py). The checks follow ``fnmatch.translate``: an
unclosed ``[`` is a literal bracket, an empty range such as ``[z-a]`` matches nothing.
"""

from __future__ import annotations

import re

GLOB_CHARS = "*?["

# Regex constructs that mean nothing special in a glob (or mean something else).
_REGEX_HINTS = (
    (re.compile(r"\\[.dDwWsS\\]"), "a backslash escape"),
    (re.compile(r"\.\+"), "'.+'"),
    (re.compile(r"\([^)]*\|[^)]*\)"), "an alternation '(a|b)'"),
    (re.compile(r"\{\d+(,\d*)?\}"), "a repetition '{n}'"),
)


_ESCAPED = re.compile(r"\[([*?[])\]")


def is_glob(name: str) -> bool:
    return any(c in name for c in GLOB_CHARS)


def literal(pattern: str) -> str | None:
    """The one name a pattern matches when its glob characters are all escaped (``[[]``, as
    readers of vendor files write exact names), else None."""
    if is_glob(_ESCAPED.sub("", pattern)):
        return None
    return _ESCAPED.sub(r"\1", pattern)


def problems(pattern: str) -> list[tuple[str, str]]:
    """``(message, hint)`` for each oddity of ``pattern`` (empty when it looks fine)."""
    out: list[tuple[str, str]] = []
    if pattern == "":
        return [("an empty name matches nothing", "remove it or write the node's name")]
    if pattern != pattern.strip():
        out.append(("leading or trailing whitespace, which node and tensor names never have",
                    f"write '{pattern.strip()}'"))
    regex = _regex_features(pattern)
    if regex:
        out.append((f"looks like a regular expression ({regex}); names are globs matched "
                    "against the whole name", _glob_hint(pattern)))
    out += _bracket_problems(pattern)
    if "**" in pattern:
        out.append(("'**' is the same as '*' (a glob '*' already crosses '/' and '.')",
                    "write a single '*'"))
    return out


def _regex_features(pattern: str) -> str:
    feats = []
    if pattern.startswith("^"):
        feats.append("a leading '^'")
    if pattern.endswith("$"):
        feats.append("a trailing '$'")
    for rx, what in _REGEX_HINTS:
        if rx.search(pattern):
            feats.append(what)
    return ", ".join(feats)


def _glob_hint(pattern: str) -> str:
    """A glob for the simple regexes people write (``^encoder\\..*$`` -> ``encoder.*``)."""
    g = pattern.removeprefix("^").removesuffix("$")
    g = g.replace(".*", "*").replace(".+", "?*").replace("\\.", ".")
    if any(c in g for c in "\\(){}|+"):
        return "use '*' for any run of characters and '?' for one character"
    return f"write '{g}'"


def _bracket_problems(pattern: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "[":
            i += 1
            continue
        # the same scan as fnmatch.translate: '!' negates, a first ']' is literal
        j = i + 1
        if j < n and pattern[j] == "!":
            j += 1
        if j < n and pattern[j] == "]":
            j += 1
        while j < n and pattern[j] != "]":
            j += 1
        if j >= n:
            out.append((f"the '[' at position {i + 1} is never closed, so it matches a literal "
                        "'['", "write '[[]' for a literal '[', or close the class"))
            return out
        body = pattern[i + 1 : j].removeprefix("!")
        for m in re.finditer(r"(.)-(.)", body):
            if m.group(1) > m.group(2):
                out.append((f"the character range '{m.group()}' is empty, so the pattern "
                            "matches nothing", f"write '{m.group(2)}-{m.group(1)}'"))
        i = j + 1
    return out
