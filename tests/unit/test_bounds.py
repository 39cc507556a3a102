"""The parsers' own bounds (issue 18): nesting depth, alias expansion, `${...}` nesting, located errors."""

from __future__ import annotations

import pytest
import yaml

from stackctl.compose import yaml as bounded
from stackctl.compose.interpolation import MAX_NESTING, interpolate, references
from stackctl.errors import ComposeFileError
from stackctl.secrets.template import parse_template


def bomb(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, levels):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        text += f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
    return text


@pytest.mark.parametrize("load", [bounded.load, bounded.safe_load])
def test_nesting_beyond_the_bound_is_a_located_yaml_error(load: object) -> None:
    assert callable(load)
    ok = "a: " + "[" * 150 + "]" * 150
    load(ok)
    with pytest.raises(yaml.MarkedYAMLError, match="nested more than 200 levels") as err:
        load("a: " + "[" * 3000 + "]" * 3000)
    assert err.value.problem_mark is not None and err.value.problem_mark.line == 0


def test_an_alias_bomb_and_a_recursive_alias_are_refused() -> None:
    with pytest.raises(yaml.MarkedYAMLError, match="alias bomb"):
        bounded.load(bomb())
    with pytest.raises(yaml.MarkedYAMLError, match="recursive alias"):
        bounded.load("a: &a [*a]")
    assert bounded.load(bomb(3))["c"][0][0][0] == "lol"  # ~900 nodes: fine


DEEP_BLOCK = "x:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(250))


@pytest.mark.parametrize("text", [bomb(), "a: &a [*a]", DEEP_BLOCK])
def test_bounds_problem_before_compose(text: str) -> None:
    problem = bounded.bounds_problem(text)
    assert problem is not None and problem[1] >= 1


def test_bounds_problem_leaves_other_yaml_errors_to_compose() -> None:
    assert bounded.bounds_problem("a: [") is None
    assert bounded.bounds_problem("services:\n  a:\n    image: x\n") is None


def test_json_depth() -> None:
    assert bounded.json_too_deep("[" * 201 + "]" * 201)
    assert not bounded.json_too_deep('{"a": "' + "[" * 500 + '"}')  # brackets in strings do not count


def test_interpolation_nesting_is_bounded() -> None:
    deep = "${B:-" * 990 + "x" + "}" * 990
    with pytest.raises(ComposeFileError, match="nested more than") as err:
        interpolate(deep, lambda name: None, file="compose.yaml", field="services.a.image")
    assert str(err.value).startswith("compose.yaml: services.a.image: ")
    with pytest.raises(ComposeFileError, match="nested more than"):
        references(deep)
    ok = "${B:-" * MAX_NESTING + "x" + "}" * MAX_NESTING
    assert interpolate(ok, lambda name: None) == "x"


def test_an_export_line_alone_defines_nothing() -> None:
    template = parse_template("export \n# @secret hex:16\nTOKEN=\n", display=".env.example")
    assert [k.name for k in template.keys] == ["TOKEN"]
