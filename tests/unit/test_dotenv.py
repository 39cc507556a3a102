"""stackctl.compose.dotenv: `.env` syntax as Compose reads it (tests/parity proves it against Compose)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackctl.compose import dotenv
from stackctl.compose.dotenv import EnvEntry, format_value, parse, parse_entries, render
from stackctl.errors import EnvError, InputError


def one(text: str, environ: dict[str, str] | None = None) -> str:
    values = parse(text, environ=environ)
    assert list(values) == ["A"], values
    return values["A"]


# --------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(("text", "expected"), [
    ("A=b", "b"),
    ("A= b ", "b"),
    ("A =b", "b"),
    ("  A=b", "b"),
    ("A: b", "b"),                     # YAML-style separator
    ("A:b", "b"),
    ("A:=b", "=b"),
    ("A==b", "=b"),
    ("export A=b", "b"),
    ("export\tA=b", "b"),
    ("A=b #c", "b"),                   # inline comment needs a space before #
    ("A=b  # c # d", "b"),
    ("A=b#c", "b#c"),
    ("A=b\t#c", "b\t#c"),              # a tab is not enough
    ("A= #c", "#c"),                   # leading blanks go first
    ("A=b c  d ", "b c  d"),
    ("A=a\\nb", "a\\nb"),              # no escapes in unquoted values
    ("A=b\r\n", "b"),
    ("A=", ""),
    ("A=''", ""),
    ('A=""', ""),
    ("A=  'x'", "x"),
])
def test_unquoted_and_basic_forms(text: str, expected: str) -> None:
    assert one(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("A='a b # c'", "a b # c"),
    ("A='$X ${Y}'", "$X ${Y}"),                    # never interpolated
    ("A='a\\nb'", "a\\nb"),                        # backslashes are literal ...
    ("A='a\\\\b'", "a\\\\b"),
    ("A='it\\'s'", "it's"),                        # ... except before a quote
    ("A='multi\nline'", "multi\nline"),
    ("A='x' # comment", "x"),
])
def test_single_quotes(text: str, expected: str) -> None:
    assert one(text, {"X": "x"}) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ('A="a\\nb\\tc\\rd"', "a\nb\tc\rd"),
    ('A="\\a\\b\\f\\v"', "\a\b\f\v"),
    ('A="q\\"q"', 'q"q'),
    ('A="b\\\\s"', "b\\s"),
    ('A="x\\\\"', "x\\"),
    ('A="\\$X"', "$X"),                  # an escaped dollar is literal
    ('A="\\\\$X"', "\\xv"),
    ('A="$X"', "xv"),
    ('A="$$X"', "$X"),
    ('A="\\0"', "\\"),                  # Compose turns \0 into a lone backslash
    ('A="\\012"', "\\12"),
    ('A="\\x41\\u0041\\\'\\q"', "\\x41\\u0041\\'\\q"),   # unknown escapes stay as written
    ('A="multi\nline"', "multi\nline"),
    ('A="a\r\nb"', "a\r\nb"),
    ('A="x" # c', "x"),
    ('A="x"#c', "x"),
])
def test_double_quotes(text: str, expected: str) -> None:
    assert one(text, {"X": "xv"}) == expected


def test_comments_and_blank_lines() -> None:
    text = "# top\n\n  # indented\nA=1 # one\n#B=2\n\n\nC=3\n"
    assert parse(text) == {"A": "1", "C": "3"}


def test_key_characters() -> None:
    text = "K.dot=1\nK-dash=2\nK[0]=3\n1ST=4\n\u00c4=5\nexportX=6\nexport=7\n"
    assert parse(text) == {"K.dot": "1", "K-dash": "2", "K[0]": "3", "1ST": "4", "\u00c4": "5",
                           "exportX": "6", "export": "7"}


def test_after_closing_quote_the_line_continues_with_a_new_statement() -> None:
    assert parse('A="x" B=y\n') == {"A": "x", "B": "y"}
    assert parse('A="x"y\n', environ={"y": "from env"}) == {"A": "x", "y": "from env"}


def test_bare_key_inherits_from_environment() -> None:
    assert parse("A\nB\nC=3\n", environ={"A": "env"}) == {"A": "env", "C": "3"}
    assert parse("export A\n", environ={"A": "env"}) == {"A": "env"}


def test_last_line_without_equals_or_newline_is_the_empty_key() -> None:
    # A Compose quirk, reproduced: the text becomes the value of "".
    assert parse("A=1\nFOO") == {"A": "1", "": "FOO"}
    assert parse("A=1\nFOO\n") == {"A": "1"}


def test_leading_bom_is_ignored() -> None:
    assert parse("\ufeffA=1\n") == {"A": "1"}


# --------------------------------------------------------------------------- interpolation


def test_interpolation_prefers_environment_over_earlier_lines() -> None:
    text = "A=file\nB=$A\nC=${NOPE:-d}\nD='$A'\nE=\"${A}-x\"\n"
    assert parse(text) == {"A": "file", "B": "file", "C": "d", "D": "$A", "E": "file-x"}
    # The environment wins for lookups, but the key keeps the file's own value.
    assert parse(text, environ={"A": "env"}) == {"A": "file", "B": "env", "C": "d", "D": "$A",
                                                 "E": "env-x"}


def test_later_definitions_are_seen_by_later_lines() -> None:
    assert parse("A=1\nB=$A\nA=2\nC=$A\n") == {"A": "2", "B": "1", "C": "2"}


def test_unset_variables_warn() -> None:
    warned: list[str] = []
    assert parse("A=x${NOPE}y\n", warn=warned.append) == {"A": "xy"}
    assert warned == ["NOPE"]


def test_parse_chain_and_project_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=dot\nG=dot\n", encoding="utf-8")
    (tmp_path / "e1").write_text("A=e1\nB=e1\nF=1\n", encoding="utf-8")
    (tmp_path / "e2").write_text("B=e2\nA=e2\nC=$A\nH=$F\n", encoding="utf-8")
    shell = {"SHELL_ONLY": "s"}
    assert dotenv.project_environment(shell, project_dir=tmp_path) == {
        "A": "dot", "G": "dot", "SHELL_ONLY": "s"}
    env = dotenv.project_environment({"A": "sh"}, project_dir=tmp_path,
                                     env_files=[tmp_path / "e1", tmp_path / "e2"])
    # --env-file replaces .env; later files win; the shell wins over everything.
    assert env == {"A": "sh", "B": "e2", "F": "1", "C": "sh", "H": "1"}
    chain = dotenv.load_chain([tmp_path / "e1", tmp_path / "e2"], environ={})
    assert chain["C"] == "e2"     # earlier lines of the same file beat earlier files
    with pytest.raises(EnvError) as info:
        dotenv.project_environment({}, env_files=[tmp_path / "missing"])
    assert info.value.file == str(tmp_path / "missing")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("A=1\nB C=2\n", 2, "cannot contain a space"),
    ("A=1\n\nK!=2\n", 3, "unexpected character '!'"),
    ("A=1\nK # comment\n", 2, "unexpected character '#'"),
    ('A=1\nB="open\nC=3\n', 2, "unterminated quoted value"),
    ("A='it\\'\n", 1, "unterminated quoted value"),
    ('A="x\\"\n', 1, "unterminated quoted value"),
    ('A="""x"""\n', 1, "unexpected character '\"'"),
    ("A=1\nB=${NOPE:?set B first}\n", 2, "required variable NOPE is missing a value: set B first"),
    ("A=1\n\nB=${\n", 3, "invalid interpolation format"),
    ("A=1\nexport ", 2, "'export' must be followed by a variable name"),
    ("A=1\n\ufeffB=2\n", 2, "unexpected character"),
])
def test_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(EnvError) as info:
        parse(text, filename="stack/.env")
    err = info.value
    assert isinstance(err, InputError) and err.exit_code == 2
    assert err.file == "stack/.env"
    assert err.field == f"line {line}"
    assert fragment in err.message
    assert str(err).startswith(f"stack/.env: line {line}: ")


def test_load_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "app.env"
    f.write_text("A=1\nB=$A\n", encoding="utf-8")
    assert dotenv.load(f) == {"A": "1", "B": "1"}
    with pytest.raises(EnvError) as info:
        dotenv.load(tmp_path / "nope.env")
    assert info.value.file == str(tmp_path / "nope.env")
    f.write_bytes(b"A=1\nB=\xff\n")
    with pytest.raises(EnvError) as info:
        dotenv.load(f)
    assert info.value.field == "line 2" and "UTF-8" in info.value.message


# --------------------------------------------------------------------------- entries


def test_parse_entries_structure_and_annotations() -> None:
    text = (
        "# header, separated by a blank line\n"
        "\n"
        "# @secret hex:32\n"
        "# the signing key\n"
        "SECRET_KEY=\n"
        "export URL=\"http://${HOST:-localhost}\\n\"  # the url\n"
        "RAW='$literal' # raw\n"
        "PLAIN=a b # note\n"
        "INHERITED\n"
        "MULTI=\"one\n"
        "two\"\n"
        "ESC=\"\\$HOME\"\n"
    )
    entries = parse_entries(text, filename=".env.example")
    assert entries == [
        EnvEntry("SECRET_KEY", "", "", 5, comments=("@secret hex:32", "the signing key")),
        EnvEntry("URL", "http://${HOST:-localhost}\n", '"', 6, inline_comment="the url"),
        EnvEntry("RAW", "$literal", "'", 7, inline_comment="raw"),
        EnvEntry("PLAIN", "a b", "", 8, inline_comment="note"),
        EnvEntry("INHERITED", "", "", 9, inherit=True),
        EnvEntry("MULTI", "one\ntwo", '"', 10),
        EnvEntry("ESC", "$$HOME", '"', 12),    # raw is a template: "\$" is "$$"
    ]
    assert entries[1].is_template and not entries[2].is_template and not entries[4].is_template


def test_entries_have_no_comments_across_a_blank_line() -> None:
    (entry,) = parse_entries("# about A\n\nA=1\n")
    assert entry.comments == ()


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize(("value", "spelled"), [
    ("", ""),
    ("plain-value_1.2:3/x@y+z=%", "plain-value_1.2:3/x@y+z=%"),
    ("two words", "'two words'"),
    ("$HOME ${X:-y}", "'$HOME ${X:-y}'"),
    ("a #b", "'a #b'"),
    ('say "hi"', "'say \"hi\"'"),
    ("back\\slash", "'back\\slash'"),
    ("  padded\t", "'  padded\t'"),
    ("caf\u00e9", "'caf\u00e9'"),
    ("it's", '"it\'s"'),
    ("ends\\", '"ends\\\\"'),
    ("line1\nline2", '"line1\\nline2"'),
    ("it's $5 \"x\" \\", '"it\'s \\$5 \\"x\\" \\\\"'),
    ("\r\a\b\f\v", '"\\r\\a\\b\\f\\v"'),
    ("nul\x00", '"nul\x00"'),
])
def test_format_value(value: str, spelled: str) -> None:
    assert format_value(value) == spelled
    assert one(f"A={spelled}\n") == value


def test_format_value_rejects_unencodable_text() -> None:
    with pytest.raises(EnvError) as info:
        format_value("bad\ud800", key="TOKEN")
    assert info.value.field == "TOKEN"


def test_render_round_trips_and_writes_header() -> None:
    values = {"A": "1", "B": "x y", "C": "it's", "D": "$D", "E": "", "K.dot": "\n", "_": "#"}
    text = render(values, header="generated by stackctl\ndo not edit")
    assert text.startswith("# generated by stackctl\n# do not edit\n")
    assert text.endswith("\n")
    assert parse(text) == values


@pytest.mark.parametrize("key", ["", "A B", "A=B", "A#", "A$", "A\tB", "#A", "'A'"])
def test_render_rejects_keys_compose_cannot_read(key: str) -> None:
    with pytest.raises(EnvError) as info:
        render({key: "v"})
    assert info.value.field == (key or "<empty>")


def test_render_names_the_key_for_unwritable_values() -> None:
    with pytest.raises(EnvError) as info:
        render({"OK": "1", "BAD": "\udc80"})
    assert info.value.field == "BAD"


# --------------------------------------------------------------------------- properties

_keys = st.text(alphabet=st.one_of(st.characters(categories=["Lu", "Ll", "Nd"]),
                                   st.sampled_from("_.-[]")), min_size=1, max_size=6)
_values = st.text(alphabet=st.one_of(st.sampled_from(list("$'\"#\\ \t\n\r{}0n")),
                                     st.characters(exclude_categories=["Cs"])), max_size=12)


@settings(max_examples=300, derandomize=True, database=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_render_then_parse_is_identity(values: dict[str, str]) -> None:
    assert parse(render(values), environ={"A": "env"}) == values


@settings(max_examples=300, derandomize=True, database=None)
@given(_values)
def test_format_template_keeps_the_template(template: str) -> None:
    (entry,) = parse_entries(f"K={dotenv.format_template(template)}\n")
    assert entry.raw == template and entry.is_template


def test_format_template_examples() -> None:
    assert dotenv.format_template("${HOST:-localhost}") == "${HOST:-localhost}"
    assert dotenv.format_template("postgres://$USER@db/${DB}") == "postgres://$USER@db/${DB}"
    assert dotenv.format_template("a b $X") == '"a b $X"'
    assert dotenv.format_template('$$lit "q"\n') == '"$$lit \\"q\\"\\n"'
    assert parse("K=" + dotenv.format_template("${A} b\\") + "\n", environ={"A": "a"}) == {
        "K": "a b\\"}
