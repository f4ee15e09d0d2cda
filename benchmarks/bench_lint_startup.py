"""Cold start of ``quantspec lint ONE_FILE``: wall time of a fresh process per dialect.

Each case is a new interpreter (nothing cached in memory; the OS file cache is warm after the
first round, as it is for a pre-commit hook), timed round-robin with a ``python -c pass`` baseline
in the same run. Target: <= 0.3 s wall (issue 7). The .qspec cases use Lark's parser tables
cached in the user's cache directory (lang/parse.py); one case builds them in the process, as the
first run after an install or a grammar change does. Prints a Markdown table for RESULTS.md.

    python benchmarks/bench_lint_startup.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TARGET_S = 0.3

CASES = {
    ".qspec": FIXTURES / "lint" / "L005_equal_precedence_conflict.qspec",
    "AIMET JSON": FIXTURES / "lint" / "L002_ignored_key_aimet.json",
    "Vitis JSON": FIXTURES / "vitis" / "dpu_minimal.json",
    "AMCT .cfg": FIXTURES / "amct" / "common_types_layers.cfg",
    "encodings JSON": FIXTURES / "encodings" / "small_v1.0.0.encodings",
}


Cmd = tuple[list[str], dict[str, str] | None]


def _time(cmd: Cmd) -> tuple[float, float]:
    """(wall s, CPU s of the child): CPU time shows what a loaded machine adds to the wall."""
    argv, env = cmd
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    # Bytecode as an installed package has it (pip writes .pyc files), kept out of the source
    # tree; one row shows a process that compiles every module from source instead
    # (PYTHONDONTWRITEBYTECODE=1 and no cache, as in some CI images).
    pyc_dir = tempfile.mkdtemp(prefix="qs-bench-pyc-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pyc_dir
    no_grammar_cache = {**env, "QUANTSPEC_CACHE_DIR": ""}  # build Lark's tables every time
    no_pyc = {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"}
    no_pyc["PYTHONDONTWRITEBYTECODE"] = "1"
    qspec = str(CASES[".qspec"])
    cmds: dict[str, Cmd] = {"python -c pass (baseline)": ([py, "-c", "pass"], env)}
    for name, path in CASES.items():
        cmds[f"python -m quantspec lint ({name})"] = (
            [py, "-m", "quantspec", "lint", str(path)], env)
    cmds["python -m quantspec lint (.qspec, no grammar cache)"] = (
        [py, "-m", "quantspec", "lint", qspec], no_grammar_cache)
    cmds["python -m quantspec lint (.qspec, no bytecode cache)"] = (
        [py, "-m", "quantspec", "lint", qspec], no_pyc)
    script = Path(sysconfig.get_path("scripts")) / "quantspec"
    if script.exists():  # the console script pip installs (what a pre-commit hook runs)
        cmds["quantspec lint (.qspec, console script)"] = ([str(script), "lint", qspec], env)
    for cmd in cmds.values():  # warm the OS file cache and write the caches
        _time(cmd)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for _ in range(args.repeat):
        for name, cmd in cmds.items():
            times[name].append(_time(cmd))
    base = statistics.median(w for w, _ in times["python -c pass (baseline)"])
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the end, {args.repeat} runs each, round-robin\n")
    print("| command | best wall s | median wall s | median / baseline | median CPU s | target |")
    print("|---|---:|---:|---:|---:|---|")
    for name, ts in times.items():
        walls = [w for w, _ in ts]
        med = statistics.median(walls)
        cpu = statistics.median(c for _, c in ts)
        verdict = "" if "baseline" in name else (
            f"<= {TARGET_S} s {'ok' if med <= TARGET_S else 'MISSED'}")
        print(f"| {name} | {min(walls):.3f} | {med:.3f} | {med / base:.1f}x | {cpu:.3f} | "
              f"{verdict} |")


if __name__ == "__main__":
    main()
