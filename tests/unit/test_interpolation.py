"""stackctl.compose.interpolation: Compose's `$` syntax, without Compose (see tests/parity for the proof)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackctl.compose.interpolation import (
    LocatedRef,
    VarRef,
    interpolate,
    is_name,
    references,
    scan_yaml_file,
    unset_warning,
)
from stackctl.errors import ComposeFileError, InputError

ENV = {"SET": "s", "EMPTY": "", "OTHER": "o", "DOLLAR": "$X ${Y}"}


def run(template: str, env: dict[str, str] | None = None) -> str:
    return interpolate(template, (ENV if env is None else env).get)


@pytest.mark.parametrize(("template", "expected"), [
    ("plain", "plain"),
    ("$SET", "s"),
    ("${SET}", "s"),
    ("$SET.x-$SET/y", "s.x-s/y"),
    ("${SET}x", "sx"),
    ("$SETx", ""),                      # the name is SETx
    ("$$SET", "$SET"),
    ("$$$SET", "$s"),
    ("$", "$"),
    ("a$", "a$"),
    ("$ x", "$ x"),
    ("$1", "$1"),
    ("$-", "$-"),
    ("$}", "$}"),
    ("${set}", ""),                     # names are case sensitive
    ("$DOLLAR", "$X ${Y}"),             # values are not interpolated again
    ("$\u017f|$\u212a", "|"),           # Go's case folding: U+017F and U+212A are name letters
])
def test_basic_substitution(template: str, expected: str) -> None:
    assert run(template) == expected


@pytest.mark.parametrize(("template", "expected"), [
    ("${UNSET:-d}|${EMPTY:-d}|${SET:-d}", "d|d|s"),
    ("${UNSET-d}|${EMPTY-d}|${SET-d}", "d||s"),
    ("${UNSET:+a}|${EMPTY:+a}|${SET:+a}", "||a"),
    ("${UNSET+a}|${EMPTY+a}|${SET+a}", "|a|a"),
    ("${EMPTY?m}|${SET?m}|${SET:?m}", "|s|s"),
    ("${UNSET:-${OTHER}}", "o"),
    ("${UNSET:-${UNSET2:-deep}}", "deep"),
    ("${UNSET:-$OTHER-x}", "o-x"),
    ("${UNSET:-a:-b}", "a:-b"),
    ("${UNSET-x?y}", "x?y"),
    ("${UNSET:-}", ""),
    ("${UNSET:-a\tb}", "a\tb"),
    ("${SET}\n${UNSET:-x}", "s\nx"),
])
def test_operators(template: str, expected: str) -> None:
    assert run(template) == expected


@pytest.mark.parametrize(("template", "expected"), [
    ("${UNSET:-x}}", "x}"),               # the cut leaves a literal }
    ("${UNSET:-a}b}c", "ab}c"),
    ("${UNSET:-{x}}", "{x}"),             # every { counts
    ("${UNSET:-{}}y}", "{}}y"),           # ... and hides the character after it
    ("${UNSET:-{{}}}y}", "{{}}y}"),
    ("${UNSET:-$${B}x}y}", "${B}xy}"),
    ("${UNSET:-${SET:-a}b}c}d", "sbc}d"),
    ("${UNSET:-${SET}}}}", "s}}"),
])
def test_compose_brace_quirks(template: str, expected: str) -> None:
    assert run(template) == expected


def test_operator_text_is_interpolated_eagerly() -> None:
    # Compose evaluates the default before it looks at the variable.
    with pytest.raises(ComposeFileError, match="required variable X is missing a value: err"):
        run("${SET:-${X:?err}}")
    warned: list[str] = []
    assert interpolate("${SET:-${W1}}", ENV.get, warn=warned.append) == "s"
    assert warned == ["W1"]


def test_unset_warns_and_defaults_to_blank() -> None:
    warned: list[str] = []
    assert interpolate("a${U1}b$U2${U3:-x}", ENV.get, warn=warned.append) == "abx"
    assert warned == ["U1", "U2"]
    assert unset_warning("U1") == 'The "U1" variable is not set. Defaulting to a blank string.'


def test_required_error_names_variable_file_and_field() -> None:
    with pytest.raises(ComposeFileError) as info:
        interpolate("${DB_PASSWORD:?set it in .env}", {}.get, file="compose.yaml",
                    field="services.db.environment.POSTGRES_PASSWORD")
    err = info.value
    assert isinstance(err, InputError) and err.exit_code == 2
    assert err.file == "compose.yaml"
    assert err.field == "services.db.environment.POSTGRES_PASSWORD"
    assert err.message == "required variable DB_PASSWORD is missing a value: set it in .env"
    assert str(err).startswith("compose.yaml: services.db.environment.POSTGRES_PASSWORD: required")


def test_required_error_without_message() -> None:
    with pytest.raises(ComposeFileError) as info:
        run("${EMPTY:?}")
    assert info.value.message == "required variable EMPTY is missing a value"


@pytest.mark.parametrize("template", [
    "${", "x${", "${}", "${ A}", "${A B}", "${1}", "${-}", "${A:x}", "${A=x}", "${A:=x}",
    "${A", "${A:-x", "${UNSET:-a\nb}", "${UNSET:-${B}", "${\u0131}",
])
def test_malformed_expressions_are_errors(template: str) -> None:
    with pytest.raises(ComposeFileError) as info:
        interpolate(template, ENV.get, file="compose.yaml", field="services.a.image")
    err = info.value
    assert "invalid interpolation format" in err.message
    assert err.file == "compose.yaml" and err.field == "services.a.image"
    assert err.hint and "$$" in err.hint


def test_references_report_operator_default_and_nesting() -> None:
    refs = references("$A ${B:-${C:?need c}} $${D} ${E+alt}")
    assert refs == [
        VarRef("A"),
        VarRef("B", ":-", "${C:?need c}", braced=True),
        VarRef("C", ":?", "need c", braced=True, nested=True),
        VarRef("E", "+", "alt", braced=True),
    ]
    b, c = refs[1], refs[2]
    assert b.default == "${C:?need c}" and not b.required and b.has_fallback
    assert c.required and c.message == "need c" and c.default is None
    assert refs[3].has_fallback and refs[3].default is None


def test_references_follow_the_cut() -> None:
    assert [r.name for r in references("${A:-x}${B}}")] == ["A", "B"]
    assert references("${A:-x}} $C")[1] == VarRef("C")


def test_references_raise_for_malformed_values() -> None:
    with pytest.raises(ComposeFileError, match="invalid interpolation format"):
        references("ok ${")


def test_varref_is_frozen() -> None:
    ref = VarRef("A")
    with pytest.raises(AttributeError):
        ref.name = "B"  # type: ignore[misc]


def test_is_name() -> None:
    assert is_name("A_1") and is_name("_x")
    assert not is_name("") and not is_name("1A") and not is_name("A.B") and not is_name("A-B")


def test_scan_yaml_file_reports_values_with_paths(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(
        "x-common: &common\n"
        "  LOG: ${LOG_LEVEL:-info}\n"
        "services:\n"
        "  api:\n"
        "    image: registry/api:${TAG?}\n"
        "    environment:\n"
        "      <<: *common\n"
        "      DB_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD}\n"
        "      ${NOT_A_KEY}: x\n"
        "      LITERAL: $$HOME\n"
        "    ports:\n"
        "      - \"${API_PORT:-8000}:8000\"\n"
        "    command: [\"serve\", \"--workers\", \"$WORKERS\"]\n"
        "    healthcheck:\n"
        "      retries: 3\n"
        "    labels: !reset []\n"
        "    extra_hosts: !override\n"
        "      - \"db:${DB_IP}\"\n",
        encoding="utf-8")
    found = scan_yaml_file(f)
    assert all(isinstance(r, LocatedRef) and r.file == str(f) for r in found)
    pairs = [(r.field, r.name) for r in found]
    assert pairs == [
        ("x-common.LOG", "LOG_LEVEL"),
        ("services.api.image", "TAG"),
        ("services.api.environment.LOG", "LOG_LEVEL"),
        ("services.api.environment.DB_PASSWORD", "DB_PASSWORD"),
        ("services.api.ports[0]", "API_PORT"),
        ("services.api.command[2]", "WORKERS"),
        ("services.api.extra_hosts[0]", "DB_IP"),
    ]
    by_name = {r.name: r for r in found}
    assert by_name["DB_PASSWORD"].required and by_name["DB_PASSWORD"].ref.message == "set DB_PASSWORD"
    assert by_name["TAG"].required
    assert by_name["API_PORT"].ref.default == "8000"


def test_scan_yaml_file_errors_name_the_file(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("services:\n  a: [\n", encoding="utf-8")
    with pytest.raises(ComposeFileError) as info:
        scan_yaml_file(bad_yaml)
    assert info.value.file == str(bad_yaml) and "invalid YAML" in info.value.message

    bad_value = tmp_path / "compose.yaml"
    bad_value.write_text("services:\n  a:\n    image: x${\n", encoding="utf-8")
    with pytest.raises(ComposeFileError) as info:
        scan_yaml_file(bad_value)
    assert info.value.file == str(bad_value) and info.value.field == "services.a.image"

    with pytest.raises(ComposeFileError, match="cannot read"):
        scan_yaml_file(tmp_path / "missing.yaml")


def test_module_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = ("import sys, stackctl.compose.interpolation, stackctl.compose.dotenv; "
            "bad = [m for m in ('yaml', 'typer', 'rich', 'docker') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- properties

_names = st.sampled_from(["A", "B", "c_1", "\u017f"])
_ops = st.sampled_from(["", ":-", "-", ":?", "?", ":+", "+"])
_text = st.text(alphabet="ab ${}:-?+#\n\\", max_size=4)


def _expr(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        _text,
        _names.map(lambda n: "$" + n),
        st.builds(lambda n, o, a: "${" + n + o + (a if o else "") + "}", _names, _ops, inner),
    )


_templates = st.lists(_expr(st.lists(_expr(_text), max_size=3).map("".join)),
                      max_size=5).map("".join)


@settings(max_examples=300, derandomize=True, database=None)
@given(_templates)
def test_references_are_exactly_what_interpolation_looks_up(template: str) -> None:
    looked_up: list[str] = []

    def lookup(name: str) -> str:
        looked_up.append(name)
        return "v"

    try:
        interpolate(template, lookup)
    except ComposeFileError as exc:
        assert "invalid interpolation format" in exc.message  # every variable is set
        with pytest.raises(ComposeFileError):
            references(template)
        return
    assert sorted(r.name for r in references(template)) == sorted(looked_up)
