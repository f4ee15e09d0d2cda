from __future__ import annotations

import pytest
from qs_paths import FIXTURES

from quantspec import ir
from quantspec.errors import QuantspecError
from quantspec.lang.format import format_profile, format_text
from quantspec.lang.parse import parse


def test_identity_fixture_prints_back_unchanged() -> None:
    text = (FIXTURES / "identity.qspec").read_text()
    assert format_text(text, "identity.qspec") == text


def test_parse_format_parse_is_identity() -> None:
    text = (FIXTURES / "identity.qspec").read_text()
    p = parse(text, "identity.qspec")
    assert parse(format_profile(p)) == p
    assert parse(format_text(text)) == p


def test_identity_covers_every_construct() -> None:
    p = parse((FIXTURES / "identity.qspec").read_text())
    scopes = {r.selector.scope for r in p.rules}
    assert scopes == set(ir.SCOPES)
    assert any(r.final for r in p.rules)
    assert any(r.group for r in p.rules)
    assert {t.mode for t in p.ties} == {"", *ir.TIE_MODES}
    set_fields = {f for r in p.rules for f in r.settings}
    assert set(ir.FIELDS) <= set_fields
    assert p.passes and p.post and p.calibrate and p.transforms and p.meta and p.patterns
    assert p.extends and p.options.values


def test_fmt_keeps_comments_and_is_idempotent() -> None:
    src = "# head\nop Conv{weight{int8 symmetric}} # trailing\n\n# lone\ndefaults{output{on}}\n"
    once = format_text(src)
    assert "# head" in once and "# trailing" in once and "# lone" in once
    assert format_text(once) == once
    assert parse(once) == parse(src)


def test_flags_and_keys_mean_the_same() -> None:
    a = parse('tensor "t" { int8 symmetric per_channel off }')
    b = parse('tensor "t" { dtype: int bits: 8 symmetric: true per_channel: on quantized: off }')
    assert a == b


def test_min_max_fold_into_fixed_range() -> None:
    p = parse('op Relu { output { min: 0 } }')
    assert p.rules[0].settings["fixed_range"].value == (0.0, None)


@pytest.mark.parametrize(
    "text, code, line, col, hint",
    [
        ("op Conv { weight { int8 symetric } }", "E006", 1, 25, "did you mean 'symmetric'?"),
        ("op Conv { wieght { int8 } }", "E004", 1, 11, "did you mean 'weight'?"),
        ("op Conv { output { bitz: 8 } }", "E003", 1, 20, "did you mean 'bits'?"),
        ("op Conv { output { bits: 99 } }", "E005", 1, 26, ""),
        ("op Conv { output { int8 }", "E001", 1, 25, "a '{' block is not closed"),
        ("op Conv { output { range: [2, 1] } }", "E005", 1, 27, ""),
        ("options { fusion: aimet3 }", "E007", 1, 19, ""),
        ("opp Conv { }", "E001", 1, 1, "did you mean 'op'?"),
        ("op Conv { output { calibration: percentil(99) } }", "E005", 1, 33,
         "did you mean 'percentile'?"),
        ('tensor "x" { output { on } }', "E004", 1, 14, ""),
        ("tie outputs_to_input: Relu", "E009", 1, 5, "did you mean 'output_to_input'?"),
        ("op Conv { output { int8 } } $", "E002", 1, 29, ""),
    ],
)
def test_errors_have_code_position_and_hint(text: str, code: str, line: int, col: int,
                                            hint: str) -> None:
    with pytest.raises(QuantspecError) as exc:
        parse(text, "bad.qspec")
    d = exc.value.diagnostic
    assert (d.code, d.span.line, d.span.col) == (code, line, col), d.render(text)
    if hint:
        assert d.hint == hint


def test_error_renders_with_caret() -> None:
    text = "op Conv {\n  weight { int8 symetric }\n}\n"
    with pytest.raises(QuantspecError) as exc:
        parse(text, "bad.qspec")
    assert exc.value.diagnostic.render(text) == (
        "bad.qspec:2:17: E006 unknown word 'symetric' in a settings block\n"
        "    weight { int8 symetric }\n"
        "                  ^\n"
        "  hint: did you mean 'symmetric'?"
    )


def test_group_disagreement_is_an_error_not_later_wins() -> None:
    from models import conv_relu_add

    from quantspec.compiler import compile_profile
    from quantspec.graph import Graph

    graph = Graph.from_model(conv_relu_add())
    same = 'op Conv { output { off } }\nop Relu { input { on } }\n'
    plan = compile_profile(parse(same), graph)
    assert plan.entry("c1").get("quantized") is True  # later wins
    grouped = ('group "sec" op Conv { output { off } }\n'
               'group "sec" op Relu { input { on } }\n')
    with pytest.raises(QuantspecError) as exc:
        compile_profile(parse(grouped, "g.qspec"), graph)
    assert exc.value.diagnostic.code == "E201"
    assert format_text(grouped) == grouped
    assert parse(format_profile(parse(grouped))) == parse(grouped)
