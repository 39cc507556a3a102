"""Messages on stderr are written without rich when rich would print them as they are
(stackctl/cli/base.py): held here to rich's own output, for any text the plain path takes."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from stackctl.cli import base

# what makes rich change a text: markup, emoji codes, control characters, tabs; and plain words
PIECES = st.sampled_from(["[", "]", "[/]", "[bold]", "[b", "[#", "[@", "[/x", "[1]", '["5432"]', ":", "::",
                          ":warning:", ":smile:", "a:b:c", "\\", "\\[bold]", " ", "\n", "\t", "\r", "\x1b[31m",
                          "\x07", "\x85", "é", "→", "日本", "note", "web", "x" * 90])
TEXTS = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=12).map("".join)


def _rich(text: str, *, markup: bool, terminal: bool) -> str:
    out = io.StringIO()
    con = Console(file=out, force_terminal=terminal, highlight=False, no_color=False, width=80)
    con.print(text, highlight=False, soft_wrap=True, markup=markup)
    return out.getvalue()


@settings(max_examples=600, deadline=None)
@given(TEXTS)
def test_a_plain_text_is_what_rich_prints(text: str) -> None:
    if not base.plain_text(text):
        return
    for markup in (True, False):
        for terminal in (True, False):
            assert _rich(text, markup=markup, terminal=terminal) == text + "\n"
    # a styled label: rich shows no style when stderr is not a terminal
    assert _rich(f"[yellow]Warning:[/] {text}", markup=True, terminal=False) == f"Warning: {text}\n"


@pytest.mark.parametrize("text", ["[bold]x[/]", ":warning: x", "a\tb", "a\rb", "x\x1b[31my", "\\[bold]"])
def test_what_rich_may_change_is_not_plain(text: str) -> None:
    assert not base.plain_text(text)


@pytest.mark.parametrize("text", ['expose: ["5432"]', "services.db: no ports", "a: b: c", "10:30 and [1]"])
def test_ordinary_messages_are_plain(text: str) -> None:
    assert base.plain_text(text)


def test_the_writers_print_what_rich_prints(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """info/warn/say, plain or through rich, write the same bytes as err_console().print did."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(var, raising=False)
    base.err_console.cache_clear()
    for text in ("plain words: here", "[bold]marked[/] up", "an :warning: code"):
        base.info(text)
        got = capsys.readouterr().err
        base.err_console().print(text, highlight=False, soft_wrap=True)
        assert got == capsys.readouterr().err
        base.warn(text)
        got = capsys.readouterr().err
        base.err_console().print(f"[yellow]Warning:[/] {text}", highlight=False, soft_wrap=True, markup=True)
        assert got == capsys.readouterr().err
        base.say(text)
        got = capsys.readouterr().err
        base.err_console().print(text, highlight=False, soft_wrap=True, markup=False)
        assert got == capsys.readouterr().err
    base.err_console.cache_clear()


def test_styles_go_through_rich_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert base._err_terminal()
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert not base._err_terminal()


def test_escape_is_richs(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.markup import escape

    for text in ("out/dir", "out[x]/dir", "a\\", "[bold]", "\\[b]"):
        assert base.escape(text) == escape(text)
