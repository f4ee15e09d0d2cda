"""``extends``: order, repeated and diamond bases, and the cost of long chains."""
from __future__ import annotations

from pathlib import Path

import pytest
from models import conv_relu_add

import quantspec
from quantspec import load
from quantspec.errors import QuantspecError


def _write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)


def _bits(prof_path: Path, tensor: str) -> int:
    plan = quantspec.compile(str(prof_path), conv_relu_add())
    entry = plan.entry(tensor)
    assert entry is not None
    return int(entry.get("bits"))


BASE = 'profile "d"\ndefaults { output { on  int8 } }\nop Relu { output { int8 } }\n'


def test_later_base_wins_over_earlier(tmp_path: Path) -> None:
    _write(tmp_path, {
        "d.qspec": BASE,
        "b.qspec": 'profile "b"\nop Relu { output { int16 } }\n',
        "a.qspec": 'profile "a" extends "./d.qspec", "./b.qspec"\n',
    })
    assert _bits(tmp_path / "a.qspec", "r1") == 16


def test_repeated_base_is_merged_once(tmp_path: Path) -> None:
    _write(tmp_path, {
        "d.qspec": BASE,
        "once.qspec": 'profile "once" extends "./d.qspec"\n',
        "twice.qspec": 'profile "twice" extends "./d.qspec", "./d.qspec"\n',
    })
    once, twice = load(str(tmp_path / "once.qspec")), load(str(tmp_path / "twice.qspec"))
    assert len(twice.rules) == len(once.rules) == len(load(str(tmp_path / "d.qspec")).rules)


def test_diamond_base_does_not_undo_a_sibling(tmp_path: Path) -> None:
    # b changes what d says; c also extends d. Merging d again after b (a second copy of d's
    # rules, later in order) would reset Relu to 8 bits: d is merged once, first.
    _write(tmp_path, {
        "d.qspec": BASE,
        "b.qspec": 'profile "b" extends "./d.qspec"\nop Relu { output { int16 } }\n',
        "c.qspec": 'profile "c" extends "./d.qspec"\nop Conv { weight { int8 } }\n',
        "a.qspec": 'profile "a" extends "./b.qspec", "./c.qspec"\n',
    })
    assert _bits(tmp_path / "a.qspec", "r1") == 16
    rules = load(str(tmp_path / "a.qspec")).rules
    assert sum(1 for r in rules if r.span and r.span.file.endswith("d.qspec")) == 2


def test_repeated_stdlib_base_is_merged_once() -> None:
    from quantspec import loads

    once = loads('profile "p" extends "aimet/default"\n', "p.qspec")
    twice = loads('profile "p" extends "aimet/default", "aimet/default"\n', "p.qspec")
    assert len(twice.rules) == len(once.rules)


def test_chain_extending_each_base_twice_stays_linear(tmp_path: Path) -> None:
    # Without merging each base once this chain holds 2**20 copies of d's rules.
    files = {"f0.qspec": BASE}
    for i in range(1, 21):
        files[f"f{i}.qspec"] = (f'profile "f{i}" extends "./f{i - 1}.qspec", '
                                f'"./f{i - 1}.qspec"\nop Add {{ output {{ int8 }} }}\n')
    _write(tmp_path, files)
    prof = load(str(tmp_path / "f20.qspec"))
    assert len(prof.rules) == len(load(str(tmp_path / "f0.qspec")).rules) + 20


def test_cycle_is_still_an_error(tmp_path: Path) -> None:
    _write(tmp_path, {
        "a.qspec": 'profile "a" extends "./b.qspec"\n',
        "b.qspec": 'profile "b" extends "./a.qspec"\n',
    })
    with pytest.raises(QuantspecError) as err:
        load(str(tmp_path / "a.qspec"))
    assert err.value.diagnostics[0].code == "E105"
