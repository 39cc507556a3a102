"""Compose YAML read once per command, by libyaml (issue 15): the same documents and the same errors
as the pure-Python loader, one parse per text however many places read it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackctl.compose import yaml as composeyaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = sorted({*ROOT.glob("tests/golden/*/compose*.y*ml"), *ROOT.glob("examples/**/compose*.y*ml")})


def _python(text: str) -> list[object]:
    return list(yaml.load_all(text, Loader=composeyaml._loader(True)))  # the pure-Python loader: safe


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_same_documents_as_the_pure_python_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert list(composeyaml.documents(text)) == _python(text)


@pytest.mark.parametrize("text", [
    "a: [\n", "a: b: c\n", "services:\n  x:\n\timage: y\n", "a: !reset [1, 2]\nb: !override {c: 1}\n",
    "a: &x 1\nb: *y\n", "--- 1\n--- 2\n", "a: 1\na: 2\n", "? [1, 2]\n: x\n", "a: 2024-01-01\nb: 0o17\nc: 1_000\n",
])
def test_the_same_answer_or_error_as_the_pure_python_loader(text: str) -> None:
    try:
        expected: object = _python(text)
    except yaml.YAMLError as exc:
        with pytest.raises(yaml.YAMLError) as got:
            composeyaml.documents(text)
        assert str(got.value) == str(exc)
        return
    assert list(composeyaml.documents(text)) == expected


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = yaml.compose_all

    def counting(stream: str, Loader: type) -> object:  # PyYAML's own parameter name
        calls.append(stream)
        return real(stream, Loader=Loader)  # a safe loader (the caller's): safe

    monkeypatch.setattr(yaml, "compose_all", counting)
    return calls


def test_one_parse_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_parses(monkeypatch)
    text = "services:\n  web:\n    image: nginx\n    environment: {A: '${X}'}\n# one parse\n"
    assert composeyaml.bounds_problem(text + "x-a: &a 1\nx-b: *a\n") is None  # parses (an alias)
    calls.clear()
    composeyaml.load(text)
    composeyaml.load(text)
    list(composeyaml.load_all(text))
    composeyaml.documents(text)
    assert calls == [text]
    composeyaml.load(text + "# edited\n")  # another text: parsed anew
    assert len(calls) == 2


def test_a_refused_text_is_refused_again_without_a_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_parses(monkeypatch)
    deep = "x-deep: " + "[" * 3000 + "]" * 3000 + "\n"
    for _ in range(3):
        with pytest.raises(yaml.MarkedYAMLError, match="nested more than 200 levels"):
            composeyaml.load(deep)
    assert len(calls) <= 2  # libyaml refuses it (too deep for it), the pure-Python parser says why: once
