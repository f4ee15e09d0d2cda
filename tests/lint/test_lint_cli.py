"""``quantspec lint`` on the command line: exit codes, text, JSON and SARIF output, start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from lint_support import LINT_FIXTURES, run_cli
from qs_paths import FIXTURES

CLEAN = 'profile "ok"\ndefaults { output { int8 } weight { int8 symmetric per_channel } }\n'

# What GitHub code scanning needs of a SARIF 2.1.0 upload (its "SARIF support" page): a version,
# runs with tool.driver.name, results with ruleId, a level, message.text and physical locations
# with an artifact uri and a 1-based region.
_LOCATION = {
    "type": "object",
    "required": ["physicalLocation"],
    "properties": {"physicalLocation": {
        "type": "object",
        "required": ["artifactLocation", "region"],
        "properties": {
            "artifactLocation": {"type": "object", "required": ["uri"],
                                 "properties": {"uri": {"type": "string", "minLength": 1}}},
            "region": {"type": "object", "required": ["startLine", "startColumn"],
                       "properties": {"startLine": {"type": "integer", "minimum": 1},
                                      "startColumn": {"type": "integer", "minimum": 1},
                                      "endLine": {"type": "integer", "minimum": 1},
                                      "endColumn": {"type": "integer", "minimum": 1}}},
        },
    }},
}
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs", "$schema"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name", "rules"],
                    "properties": {"rules": {"type": "array", "items": {
                        "type": "object", "required": ["id", "shortDescription"],
                        "properties": {"shortDescription": {
                            "type": "object", "required": ["text"]}}}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object",
                    "required": ["ruleId", "level", "message", "locations"],
                    "properties": {
                        "ruleId": {"type": "string"},
                        "ruleIndex": {"type": "integer", "minimum": 0},
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "message": {"type": "object", "required": ["text"]},
                        "locations": {"type": "array", "minItems": 1, "items": _LOCATION},
                        "relatedLocations": {"type": "array", "items": _LOCATION},
                    }}},
            }}},
    },
}


def test_exit_codes(tmp_path: Path) -> None:
    ok = tmp_path / "ok.qspec"
    ok.write_text(CLEAN)
    assert run_cli("lint", str(ok)) == (0, "", "")
    rc, out, err = run_cli("lint", str(LINT_FIXTURES / "L007_empty_rule.qspec"))
    assert rc == 1 and "L007" in out and err == "1 finding (0 errors) in 1 file\n"
    assert run_cli("lint", str(tmp_path / "nope.qspec"))[0] == 2
    assert run_cli("lint", str(ok), "--from", "nonsense")[0] == 2
    assert run_cli("lint", str(ok), "--model", str(tmp_path / "nope.onnx"))[0] == 2
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"not a model")
    rc, _, err = run_cli("lint", str(ok), "--model", str(bad_model))
    assert rc == 2 and "E3" in err
    assert run_cli("lint")[0] == 2  # argparse: FILES is required


def test_text_output_has_caret_and_hint() -> None:
    path = str(LINT_FIXTURES / "L001_unknown_op_type.qspec")
    rc, out, _ = run_cli("lint", path)
    assert rc == 1
    assert out == (f"{path}:3:11: L001 'Gelu2' is not an ONNX op type; this op rule never "
                   "matches it\n"
                   "  op Conv | Gelu2 { output { int8 } }\n"
                   "            ^\n"
                   "  hint: did you mean 'Gelu'?\n")


def test_json_output(tmp_path: Path) -> None:
    path = str(LINT_FIXTURES / "L005_equal_precedence_conflict.qspec")
    rc, out, _ = run_cli("lint", "--format", "json", path)
    assert rc == 1
    (d,) = json.loads(out)
    assert (d["code"], d["severity"], d["file"], d["line"], d["col"]) == (
        "L005", "warning", path, 4, 20)
    assert d["related"] == [{"where": f"{path}:3:27", "note": "also set by"}]
    ok = tmp_path / "ok.qspec"
    ok.write_text(CLEAN)
    assert run_cli("lint", "--format", "json", str(ok)) == (0, "[]\n", "")


def test_sarif_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES.parent.parent)  # repository root: URIs are relative to it
    files = [str(LINT_FIXTURES.relative_to(Path.cwd()) / n) for n in (
        "L005_equal_precedence_conflict.qspec", "L004_value_out_of_range.qspec",
        "L003_duplicate_key_vitis.json")]
    rc, out, _ = run_cli("lint", "--format", "sarif", *files)
    assert rc == 1
    doc = json.loads(out)
    jsonschema.validate(doc, SARIF_SUBSET)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["L003", "L004", "L004", "L005"]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    l004 = results[1]
    assert l004["level"] == "error"
    loc = l004["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "tests/fixtures/lint/L004_value_out_of_range.qspec",
                                       "uriBaseId": "SRCROOT"}
    assert (loc["region"]["startLine"], loc["region"]["startColumn"]) == (3, 27)
    (rel,) = results[3]["relatedLocations"]
    assert rel["physicalLocation"]["region"]["startLine"] == 3
    assert rel["message"]["text"] == "also set by"


def test_ignore_and_skip_unknown(tmp_path: Path) -> None:
    pkg = tmp_path / "package.json"
    pkg.write_text('{"name": "x"}\n')
    path = str(LINT_FIXTURES / "L001_unknown_op_type.qspec")
    assert run_cli("lint", "--ignore", "L001", path)[0] == 0
    assert run_cli("lint", str(pkg))[0] == 1
    assert run_cli("lint", "--skip-unknown", str(pkg)) == (0, "", "")


def test_from_overrides_detection(tmp_path: Path) -> None:
    f = tmp_path / "cfg.txt"
    f.write_text((LINT_FIXTURES / "L003_duplicate_field_amct.cfg").read_text())
    rc, out, _ = run_cli("lint", "--from", "amct", "--format", "json", str(f))
    assert rc == 1 and [d["code"] for d in json.loads(out)] == ["L003"]


def test_model_findings_on_the_cli(model_path: Path) -> None:
    path = str(LINT_FIXTURES / "L020_matches_nothing.qspec")
    assert run_cli("lint", path)[0] == 0
    rc, out, _ = run_cli("lint", path, "--model", str(model_path))
    assert rc == 1 and "L020 layer 'convv2' matches no node of the model" in out


HEAVY = ("numpy", "onnx", "onnxruntime")
STARTUP = """
import io, sys
from quantspec.cli import main
rc = main(["lint", *sys.argv[1:]], io.StringIO(), io.StringIO())
print(rc, sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("fixture, unneeded", [
    ("lint/L001_unknown_op_type.qspec", ("jsonschema", "google.protobuf")),
    ("lint/L001_unknown_op_type_aimet.json", ("lark",)),
    ("vitis/dpu_minimal.json", ("lark",)),
    ("amct/common_types_layers.cfg", ("lark", "jsonschema")),
    ("encodings/small_v1.0.0.encodings", ("lark",)),
])
def test_lint_imports_no_heavy_modules(fixture: str, unneeded: tuple[str, ...]) -> None:
    """A fresh interpreter linting one file of each dialect never imports numpy/onnx/ort, nor
    the parsers and validators of other dialects."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    code = STARTUP.format(heavy=(*HEAVY, *unneeded))
    res = subprocess.run([sys.executable, "-c", code, str(FIXTURES / fixture)],
                         capture_output=True, text=True, env=env, timeout=120, check=True)
    rc, loaded = res.stdout.split(" ", 1)
    assert rc in ("0", "1")
    assert loaded.strip() == "[]", f"lint imported {loaded.strip()}"


def test_lint_with_a_model_may_import_onnx(model_path: Path) -> None:
    code = STARTUP.format(heavy=HEAVY)
    res = subprocess.run([sys.executable, "-c", code, str(LINT_FIXTURES /
                                                          "L020_matches_nothing.qspec"),
                          "--model", str(model_path)], capture_output=True, text=True,
                         timeout=120, check=True)
    assert res.stdout.startswith("1 ") and "onnx" in res.stdout  # the check above can fail


def test_grammar_tables_are_cached(tmp_path: Path) -> None:
    """lang/parse.py keeps Lark's tables in QUANTSPEC_CACHE_DIR; a cached run parses the same."""
    path = str(LINT_FIXTURES / "L005_equal_precedence_conflict.qspec")

    def lint_in(cache: str) -> str:
        env = {**os.environ, "QUANTSPEC_CACHE_DIR": cache}
        res = subprocess.run([sys.executable, "-m", "quantspec", "lint", "--format", "json",
                              path], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 1, res.stderr
        return res.stdout

    cache = tmp_path / "cache"
    first = lint_in(str(cache))
    assert [p.name for p in cache.iterdir()] == ["qspec-grammar.lark-cache"]
    assert lint_in(str(cache)) == first  # read from the cache
    assert lint_in("") == first  # caching off
