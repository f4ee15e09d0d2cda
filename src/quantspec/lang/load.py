"""Load a profile from a file in any dialect and resolve its ``extends`` chain.

``extends "aimet/default"`` names a stdlib profile (package data); ``extends "./base.qspec"``
a file relative to the extending file. Relative paths may not leave the directory tree of the
file that started the load unless ``allow_outside=True`` (an ``extends`` must not read
arbitrary files). Cycles are an error that names the chain.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from .. import dialects, ir
from ..errors import QuantspecError, did_you_mean
from ..fileio import read_text
from ..source import Span

MAX_EXTENDS_DEPTH = 32
_STDLIB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


def stdlib_names() -> list[str]:
    root = resources.files("quantspec.stdlib_profiles")
    out: list[str] = []

    def walk(d: Any, prefix: str) -> None:
        for entry in sorted(d.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".qspec"):
                out.append(prefix + entry.name[: -len(".qspec")])

    walk(root, "")
    return out


def stdlib_text(name: str) -> str | None:
    # a stdlib name is words joined by "/": "ort/../../x" would read any .qspec file (E104)
    if not _STDLIB_NAME.fullmatch(name):
        return None
    parts = name.split("/")
    node: Any = resources.files("quantspec.stdlib_profiles")
    for part in parts[:-1]:
        node = node.joinpath(part)
    node = node.joinpath(parts[-1] + ".qspec")
    try:
        return node.read_text("utf-8")  # type: ignore[no-any-return]
    except (FileNotFoundError, OSError, NotADirectoryError):
        return None


def read_profile(text: str, file: str, dialect: str | None = None, **options: Any) -> ir.Profile:
    """Parse ``text`` with its dialect (detected when not given); no extends resolution."""
    name = dialect or dialects.detect(text, file)
    mod = dialects.get(name)
    return mod.read(text, file, **options)  # type: ignore[no-any-return]


def profile_source(path: str) -> tuple[str, str]:
    """(text, file name) of a profile argument: a file, or a stdlib profile name such as
    ``qnn/htp-v73`` when no such file exists (a file of that name wins)."""
    if not os.path.exists(path):
        text = stdlib_text(path)
        if text is not None:
            return text, f"std/{path}.qspec"
        try:
            return read_text(path), path
        except QuantspecError as exc:
            near = did_you_mean(path, stdlib_names()) if "/" in path and "." not in \
                os.path.basename(path) else ""
            if not near:
                raise
            d = exc.diagnostic
            raise QuantspecError(d.code, d.message, d.span,
                                 hint=f"no such file, nor stdlib profile; {near}") from None
    return read_text(path), path


def load(path: str, dialect: str | None = None, allow_outside: bool = False,
         **options: Any) -> ir.Profile:
    """Load ``path`` (any dialect, or a stdlib profile name) and merge everything it
    extends."""
    if not os.path.exists(path):  # a stdlib name, or an error with a did-you-mean
        key = f"std:{path}"
        text, file = profile_source(path)
        prof = read_profile(text, file, dialect or "qspec", **options)
        return resolve(prof, Path.cwd(), allow_outside, (key,), options, {key})
    root = Path(path).resolve().parent
    return _load(path, dialect, root, allow_outside, (), options)


def _load(path: str, dialect: str | None, root: Path, allow_outside: bool,
          chain: tuple[str, ...], options: dict[str, Any], seen: set[str] | None = None,
          ) -> ir.Profile:
    text = read_text(path)
    prof = read_profile(text, path, dialect, **options)
    return resolve(prof, root, allow_outside, (*chain, os.path.realpath(path)), options, seen)


def loads(text: str, file: str = "<string>", dialect: str | None = None,
          **options: Any) -> ir.Profile:
    prof = read_profile(text, file, dialect, **options)
    root = Path(file).resolve().parent if os.path.exists(file) else Path.cwd()
    return resolve(prof, root, False, (file,), options)


def resolve(prof: ir.Profile, root: Path, allow_outside: bool, chain: tuple[str, ...],
            options: dict[str, Any], seen: set[str] | None = None) -> ir.Profile:
    """``prof`` with its bases merged first, in order, so ``prof`` wins ties.

    A base reached twice (``extends "a", "a"``, or a diamond: two bases that both extend a
    third) is merged once, at its first position, like a class in a method resolution order:
    a second copy of its rules would override what a later base changed, and a chain of files
    each extending the previous one twice would grow its rules exponentially. ``seen`` holds
    the bases already merged during one load.
    """
    if not prof.extends:
        return prof
    if seen is None:
        seen = set()
    if len(chain) > MAX_EXTENDS_DEPTH:
        raise QuantspecError("E107", f"extends chain deeper than {MAX_EXTENDS_DEPTH}",
                             prof.extends[0][1], hint="flatten the chain: a profile may extend "
                             "several bases at once")
    merged: ir.Profile | None = None
    for target, span in prof.extends:
        base = _load_target(target, span, prof.source, root, allow_outside, chain, options,
                            seen)
        if base is not None:
            merged = base if merged is None else ir.merge(merged, base)
    child = prof.replace(extends=())
    if merged is None:
        return child
    out = ir.merge(merged, child)
    return out.replace(dialect=prof.dialect, source=prof.source, meta={**merged.meta,
                                                                      **prof.meta})


def _load_target(target: str, span: Span | None, source: str, root: Path, allow_outside: bool,
                 chain: tuple[str, ...], options: dict[str, Any], seen: set[str],
                 ) -> ir.Profile | None:
    """The resolved base ``target`` names, or None when this load has merged it already."""
    is_path = target.startswith((".", "/")) or target.endswith((".qspec", ".json", ".cfg"))
    if not is_path:
        key = f"std:{target}"
        if key in chain:
            raise _cycle(chain, key, span)
        text = stdlib_text(target)
        if text is None:
            raise QuantspecError("E104", f"no stdlib profile '{target}'", span,
                                 hint=did_you_mean(target, stdlib_names())
                                 or "`quantspec profiles` lists them")
        if key in seen:
            return None
        seen.add(key)
        prof = read_profile(text, f"std/{target}.qspec", "qspec")
        return resolve(prof, root, allow_outside, (*chain, key), options, seen)
    base_dir = Path(source).resolve().parent if source and os.path.exists(source) else root
    full = (base_dir / target).resolve()
    if not allow_outside and not _inside(full, root):
        raise QuantspecError("E106", f"extends '{target}' leaves the profile's directory tree",
                             span, hint="move the base profile under the same directory, or "
                             "pass --allow-outside")
    if os.path.realpath(full) in chain:
        raise _cycle(chain, os.path.realpath(full), span)
    if not full.exists():
        raise QuantspecError("E104", f"extends '{target}': file not found ({full})", span)
    key = os.path.realpath(full)
    if key in seen:
        return None
    seen.add(key)
    return _load(str(full), None, root, allow_outside, chain, options, seen)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _cycle(chain: tuple[str, ...], again: str, span: Span | None) -> QuantspecError:
    names = [os.path.basename(c) if not c.startswith("std:") else c[4:] for c in chain]
    names.append(os.path.basename(again) if not again.startswith("std:") else again[4:])
    return QuantspecError("E105", "extends cycle: " + " -> ".join(names), span,
                          hint="a profile cannot extend itself, directly or through others")
