"""Long fuzz run over every front end: mutated corpus files and generated inputs.

    python tools/fuzz.py --per-frontend 100000 --jobs 2 --report benchmarks/FUZZ.md
    python tools/fuzz.py --replay fuzz-out/aimet-crash-1a2b3c.json --frontend aimet
    python tools/fuzz.py --unpack fuzz-out/compile-crash-1a2b3c.qscase --out case/

Each input must either read or raise ``QuantspecError``, within ``--limit`` seconds. The
``compile`` front end reads a generated (model, profile) pair and compiles it; its plan must also
validate against the plan schema, be deterministic and keep its invariants (a violation counts
as uncaught and is saved like a crash). The report
says, per front end, how many inputs were tried, what they ended as, the uncaught exceptions
(each with a saved reproducer) and the slowest input (saved, and re-timed at the end so a busy
machine does not inflate it). Mutators and generators live in tests/reliability/fuzz_support.py,
shared with the CI-sized run in the test suite.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import platform
import random
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "reliability")]

import fuzz_support as fs  # noqa: E402

CHUNK = 2500  # inputs per task: small enough to balance two workers, big enough to amortize


class _Hang(BaseException):
    """Raised by the alarm when one input runs past --hang seconds."""


@dataclass
class Stats:
    inputs: int = 0
    generated: int = 0
    ok: int = 0
    errors: int = 0
    crashes: int = 0
    hangs: int = 0
    slow: int = 0  # over --limit
    seconds: float = 0.0
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    mutators: collections.Counter[str] = field(default_factory=collections.Counter)
    crash_kinds: dict[str, list[Any]] = field(default_factory=dict)  # signature -> [n, path]
    slowest: float = 0.0  # CPU seconds
    slowest_wall: float = 0.0
    slowest_data: bytes = b""
    slowest_how: str = ""

    def merge(self, o: Stats) -> None:
        for name in ("inputs", "generated", "ok", "errors", "crashes", "hangs", "slow",
                     "seconds"):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        self.codes.update(o.codes)
        self.mutators.update(o.mutators)
        for sig, (n, path) in o.crash_kinds.items():
            if sig in self.crash_kinds:
                self.crash_kinds[sig][0] += n
            else:
                self.crash_kinds[sig] = [n, path]
        self.slowest_wall = max(self.slowest_wall, o.slowest_wall)
        if o.slowest > self.slowest:
            self.slowest, self.slowest_data, self.slowest_how = (o.slowest, o.slowest_data,
                                                                 o.slowest_how)


def _save(out: Path, fe: fs.FrontEnd, label: str, data: bytes, note: str = "") -> str:
    digest = hashlib.sha1(data).hexdigest()[:12]
    path = out / f"{fe.name}-{label}-{digest}{fe.suffix}"
    path.write_bytes(data)
    if note:
        path.with_name(path.name + ".txt").write_text(note, "utf-8")
    return str(path)


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


def run_chunk(name: str, chunk: int, count: int, seed: int, out_dir: str, limit: float,
              hang: float) -> Stats:
    warnings.simplefilter("ignore")  # onnx warns about odd external-data keys, per input
    fe = fs.all_frontends()[name]
    out = Path(out_dir)
    seeds = [data for _, data in fe.seeds()]
    rng = random.Random(f"{seed}:{name}:{chunk}")
    chooser = fs.RngChooser(rng)
    stats = Stats()
    current = out / f"current-{name}-{chunk}{fe.suffix}"
    signal.signal(signal.SIGALRM, _alarm)
    for _ in range(count):
        if fe.generate is not None and (not seeds or rng.random() < fe.generate_share):
            data, how = fe.generate(chooser), ["generate"]
            stats.generated += 1
        else:
            data, how = fs.mutate(fe, rng, rng.choice(seeds))
        stats.mutators.update(how)
        current.write_bytes(data)  # left behind if the process dies (a reproducer)
        signal.setitimer(signal.ITIMER_REAL, hang)
        try:
            result = fs.run_one(fe, data)
        except _Hang:
            result = fs.Outcome("hang", hang, wall=hang)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        stats.inputs += 1
        stats.seconds += result.seconds
        stats.slowest_wall = max(stats.slowest_wall, result.wall)
        if result.seconds > stats.slowest:
            stats.slowest, stats.slowest_data, stats.slowest_how = result.seconds, data, str(how)
        if result.seconds > limit:
            stats.slow += 1
            if stats.slow <= 5:
                _save(out, fe, "slow", data, f"{result.seconds:.3f} s CPU, {result.wall:.3f} s "
                      f"wall\nmutations: {how}\n")
        if result.status == "ok":
            stats.ok += 1
        elif result.status == "error":
            stats.errors += 1
            stats.codes[result.code] += 1
        elif result.status == "hang":
            stats.hangs += 1
            _save(out, fe, "hang", data, f"over {hang} s\nmutations: {how}\n")
        else:
            stats.crashes += 1
            sig = fs.crash_signature(result)
            if sig in stats.crash_kinds:
                stats.crash_kinds[sig][0] += 1
            else:
                path = _save(out, fe, "crash", data, f"mutations: {how}\n{result.detail}")
                stats.crash_kinds[sig] = [1, path]
    current.unlink(missing_ok=True)
    return stats


def retime(name: str, data: bytes, runs: int = 3) -> float:
    fe = fs.all_frontends()[name]
    times = []
    for _ in range(runs):
        fs.clear_caches()  # the compile front end caches loaded profiles and graphs
        times.append(fs.run_one(fe, data).wall)
    return min(times)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=False).stdout.strip()
    except OSError:
        return "?"


def report(results: dict[str, Stats], retimed: dict[str, float], saved: dict[str, str],
           args: argparse.Namespace, wall: float, command: str) -> str:
    lines = [
        "## Fuzzing",
        "",
        f"Command: `{command}`",
        "",
        f"Commit {_git_commit()}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.jobs} worker(s), seed {args.seed}, "
        f"wall time {wall / 60:.1f} min.",
        "",
        "| front end | inputs | generated | read ok | QuantspecError | uncaught | hangs "
        f"| > {args.limit:g} s CPU | slowest CPU (s) | slowest re-timed (s) | slowest wall (s) "
        "| inputs/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in results.items():
        rate = s.inputs / s.seconds if s.seconds else 0.0
        lines.append(
            f"| {name} | {s.inputs} | {s.generated} | {s.ok} | {s.errors} | {s.crashes} | "
            f"{s.hangs} | {s.slow} | {s.slowest:.3f} | {retimed.get(name, 0.0):.3f} | "
            f"{s.slowest_wall:.3f} | {rate:.0f} |")
    lines += ["", "Most frequent error codes per front end (the input's first problem):", ""]
    for name, s in results.items():
        top = ", ".join(f"{c} {n}" for c, n in s.codes.most_common(8))
        lines.append(f"- {name}: {top}")
    lines += ["", "Slowest inputs (saved):", ""]
    for name, s in results.items():
        lines.append(f"- {name}: `{saved.get(name, '')}` ({len(s.slowest_data)} bytes, "
                     f"made by {s.slowest_how})")
    crashes = [(name, sig, n, path) for name, s in results.items()
               for sig, (n, path) in s.crash_kinds.items()]
    lines += ["", f"Uncaught exceptions: {len(crashes)} distinct."]
    for name, sig, n, path in crashes:
        lines.append(f"- {name}: {sig} ({n} inputs), reproducer `{path}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-frontend", type=int, default=1000, help="inputs per front end")
    p.add_argument("--frontends", default="qspec,aimet,vitis,encodings,amct,onnx,compile")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--limit", type=float, default=1.0,
                   help="CPU seconds an input may take (slower ones are counted and saved)")
    p.add_argument("--hang", type=float, default=30.0, help="abandon an input after this")
    p.add_argument("--out", default="fuzz-out", help="directory for reproducers")
    p.add_argument("--report", help="also write the Markdown report here")
    p.add_argument("--replay", help="run one saved input and print the outcome")
    p.add_argument("--frontend", help="front end of --replay")
    p.add_argument("--unpack", help="write a saved compile case's profile and model to --out")
    args = p.parse_args(argv)

    if args.unpack:
        profile, model, opts = fs.write_case(Path(args.unpack).read_bytes(), Path(args.out))
        print(" ".join(["quantspec", "compile", str(profile), "--model", str(model), *opts]))
        return 0
    if args.replay:
        fe = fs.all_frontends()[args.frontend or "qspec"]
        data = Path(args.replay).read_bytes()
        fs.run_one(fe, data)  # warm up (the .qspec grammar is built on first use)
        fs.clear_caches()
        result = fs.run_one(fe, data)
        print(f"{result.status} {result.code} {result.seconds:.3f}s\n{result.detail}")
        return 1 if result.status == "crash" else 0

    names = [n.strip() for n in args.frontends.split(",") if n.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python tools/fuzz.py " + " ".join(argv if argv is not None else sys.argv[1:])
    tasks = [(n, i, min(CHUNK, args.per_frontend - i * CHUNK))
             for n in names for i in range((args.per_frontend + CHUNK - 1) // CHUNK)]
    results = {n: Stats() for n in names}
    t0 = time.time()
    done = 0
    broken = False
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_chunk, n, i, c, args.seed, str(out), args.limit, args.hang):
                   (n, i) for n, i, c in tasks}
        try:
            for fut in as_completed(futures):
                name, _ = futures[fut]
                results[name].merge(fut.result())
                done += 1
                s = results[name]
                print(f"[{time.time() - t0:7.0f}s] {done}/{len(tasks)} {name}: {s.inputs} "
                      f"inputs, {s.crashes} uncaught, {s.hangs} hangs, slowest "
                      f"{s.slowest:.3f}s", file=sys.stderr, flush=True)
        except BrokenProcessPool:
            broken = True
            print("a worker died (native crash?): see fuzz-out/current-* for the input",
                  file=sys.stderr)
    fes = fs.all_frontends()
    saved = {n: _save(out, fes[n], "slowest", s.slowest_data)
             for n, s in results.items() if s.inputs}
    retimed = {n: retime(n, s.slowest_data) for n, s in results.items() if s.inputs}
    text = report(results, retimed, saved, args, time.time() - t0, command)
    if broken:
        text += "\nA worker process died; its last inputs are the current-* files.\n"
    print(text)
    if args.report:
        Path(args.report).write_text(text, "utf-8")
    bad = broken or any(s.crashes or s.hangs for s in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
