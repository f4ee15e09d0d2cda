"""A progress bar for long runs: tqdm when it is installed (extra ``progress``), else nothing.

>>> list(progress(range(3), total=3, enabled=False))
[0, 1, 2]
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")


def tqdm_available() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "",
             enabled: bool = True, unit: str = "batch",
             stream: IO[str] | None = None) -> Iterator[T]:
    """Iterate ``items``, drawing a tqdm bar on ``stream`` (stderr) when enabled and available.

    Without tqdm the items are passed through silently: a bar is a convenience, never a
    requirement.
    """
    if not enabled:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield from items
        return
    bar: Any = tqdm(items, total=total, desc=desc or None, unit=unit,
                    file=stream or sys.stderr, leave=False, dynamic_ncols=True)
    try:
        yield from bar
    finally:
        bar.close()
