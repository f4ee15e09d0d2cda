"""The pre-commit hooks (.pre-commit-hooks.yaml), run by the real ``pre-commit`` tool on a
temporary git repository: a clean profile passes, a bad one fails.

No network: hooks run with ``language: system`` (no environment to install), and ``quantspec``
on PATH is a shim for the interpreter running the tests. Deselect with ``-m "not precommit"``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from qs_paths import REPO

pytestmark = [
    pytest.mark.precommit,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("pre_commit") is None,
                       reason="pre-commit is not installed"),
]

MANIFEST = REPO / ".pre-commit-hooks.yaml"
# What `repo: local` hooks mirror of the manifest (test_manifest_matches_the_mirror keeps the
# two in step).
MIRROR: dict[str, dict[str, Any]] = {
    "quantspec-lint": {"entry": "quantspec lint --skip-unknown",
                       "files": r"\.(qspec|json|cfg|prototxt|pbtxt|encodings)$",
                       "types": ["text"]},
    "quantspec-fmt": {"entry": "quantspec fmt --check", "files": r"\.qspec$",
                      "types": ["text"]},
}

GOOD_SOURCE = ('profile "good"\ndefaults { output { int8 } }\n'
               "op Conv { weight { int8 symmetric } }\n")
BAD = 'profile "bad"\nop Conv|Gelu2 {output{int8}}\n'  # L001, and not in canonical form
UNRELATED = '{"name": "not a quantization config"}\n'


def _good() -> str:
    from quantspec.lang.format import format_text

    return format_text(GOOD_SOURCE)  # canonical, whatever the formatter's current layout


def _yaml() -> Any:
    return pytest.importorskip("yaml")


def _git(cwd: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=quantspec tests", "-c", "user.email=tests@localhost",
           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _env(tmp: Path) -> dict[str, str]:
    shim_dir = tmp / "bin"
    shim_dir.mkdir(exist_ok=True)
    shim = shim_dir / "quantspec"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m quantspec "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "GIT_"))}
    env.update(PRE_COMMIT_HOME=str(tmp / "pre-commit-home"), PIP_NO_INDEX="1",
               PATH=f"{shim_dir}{os.pathsep}{env.get('PATH', '')}",
               GIT_CONFIG_NOSYSTEM="1")
    return env


def _project(tmp: Path, config: dict[str, Any], files: dict[str, str]) -> Path:
    proj = tmp / "project"
    proj.mkdir()
    _git(proj, "init", "-q")
    (proj / ".pre-commit-config.yaml").write_text(_yaml().safe_dump(config, sort_keys=False))
    for name, text in files.items():
        (proj / name).write_text(text)
    _git(proj, "add", "-A")
    return proj


def _run(proj: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files",
                           "--color", "never"], cwd=proj, env=env, capture_output=True,
                          text=True, timeout=300)


def _local_config() -> dict[str, Any]:
    hooks = [{"id": hid, "name": hid, "language": "system", **spec}
             for hid, spec in MIRROR.items()]
    return {"repos": [{"repo": "local", "hooks": hooks}]}


def _remote_config(repo: Path, rev: str) -> dict[str, Any]:
    # the manifest's hooks as they are, run without installing an environment
    hooks = [{"id": hid, "language": "system"} for hid in MIRROR]
    return {"repos": [{"repo": str(repo), "rev": rev, "hooks": hooks}]}


def test_manifest_matches_the_mirror() -> None:
    manifest = _yaml().safe_load(MANIFEST.read_text())
    got = {h["id"]: {k: h.get(k) for k in ("entry", "files", "types")} for h in manifest}
    assert got == MIRROR
    assert all(h["language"] == "python" for h in manifest)  # installs quantspec for users


@pytest.mark.parametrize("good", [True, False], ids=["good", "bad"])
def test_local_hooks(tmp_path: Path, good: bool) -> None:
    files = {"profile.qspec": _good() if good else BAD, "package.json": UNRELATED}
    proj = _project(tmp_path, _local_config(), files)
    res = _run(proj, _env(tmp_path))
    _check(res, good)


def _check(res: subprocess.CompletedProcess[str], good: bool) -> None:
    log = res.stdout + res.stderr
    if good:
        assert res.returncode == 0, log
        assert log.count("Passed") == 2, log
    else:
        assert res.returncode == 1, log
        assert log.count("Failed") == 2, log
        assert "L001 'Gelu2' is not an ONNX op type" in log
        assert "not in canonical form" in log
        assert "package.json" not in log  # skipped: no dialect recognises it


def _hooks_repo_at_head() -> tuple[Path, str]:
    try:
        subprocess.run(["git", "cat-file", "-e", "HEAD:.pre-commit-hooks.yaml"], cwd=REPO,
                       check=True, capture_output=True)
    except subprocess.CalledProcessError:
        pytest.skip("HEAD has no .pre-commit-hooks.yaml yet (the local mirror covers it)")
    return REPO, _git(REPO, "rev-parse", "HEAD").strip()


def _hooks_repo_of_worktree(tmp: Path) -> tuple[Path, str]:
    """A throwaway repository holding the working tree's manifest in one commit."""
    repo = tmp / "hooks-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    shutil.copy(MANIFEST, repo / ".pre-commit-hooks.yaml")
    _git(repo, "add", ".pre-commit-hooks.yaml")
    _git(repo, "commit", "-q", "-m", "hooks")
    return repo, _git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("source", ["head", "worktree"])
def test_hooks_from_the_manifest(tmp_path: Path, source: str) -> None:
    repo, rev = _hooks_repo_at_head() if source == "head" else _hooks_repo_of_worktree(tmp_path)
    # both hooks must report Passed (a files pattern matching nothing would report Skipped);
    # the failing side is covered by test_local_hooks
    files = {"profile.qspec": _good(), "package.json": UNRELATED}
    proj = _project(tmp_path, _remote_config(repo, rev), files)
    _check(_run(proj, _env(tmp_path)), True)
