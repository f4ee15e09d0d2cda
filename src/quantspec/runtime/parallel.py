"""Chunking and threading for the element-wise kernels.

The kernels run a handful of numpy ufuncs per chunk of ``CHUNK`` elements so that each chunk stays
in cache between ufuncs: the array is then read and written once from memory, like
``np.copyto``. numpy releases the GIL inside ufunc loops, so chunks of one call can run on
several threads; :func:`set_num_threads` (or ``QUANTSPEC_NUM_THREADS``) bounds that, ``1``
disables it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from . import errors

# 1 MiB of float32 per chunk. Smaller chunks stay in L2 but then numpy's per-call overhead (and,
# with several threads, the GIL hand-offs between ufunc calls) dominates; measured best on a
# 2-core AVX2 machine with a 32 MiB L3 (benchmarks/RESULTS.md).
CHUNK = 1 << 18
PARALLEL_MIN = 1 << 20  # below ~4 MiB thread hand-off costs more than it saves

T = TypeVar("T")
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_threads: int | None = None


def _default_threads() -> int:
    env = os.environ.get("QUANTSPEC_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


def get_num_threads() -> int:
    """Number of threads a large kernel call may use."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_num_threads(n: int) -> None:
    """Bound the threads used by kernels on large arrays (``1`` = single-threaded)."""
    global _threads, _pool
    if not isinstance(n, int) or n < 1:
        raise errors.bad_parameter("threads", n, "an integer >= 1")
    with _lock:
        _threads = n
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


def _get_pool(n: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="quantspec-kernel")
        return _pool


def run_tasks(fn: Callable[[T], None], tasks: Sequence[T], total_size: int) -> None:
    """Call ``fn(task)`` for every task, on several threads when the work is large.

    Tasks are split into contiguous groups, one per thread, so each thread walks memory in order.
    """
    n = min(get_num_threads(), len(tasks))
    if n <= 1 or total_size < PARALLEL_MIN:
        for t in tasks:
            fn(t)
        return

    def run_group(group: Sequence[T]) -> None:
        for t in group:
            fn(t)

    bounds = [len(tasks) * i // n for i in range(n + 1)]
    groups = [tasks[bounds[i]:bounds[i + 1]] for i in range(n)]
    pool = _get_pool(n)
    futures = [pool.submit(run_group, g) for g in groups[1:]]
    run_group(groups[0])  # the calling thread does a share instead of idling
    for f in futures:
        f.result()
