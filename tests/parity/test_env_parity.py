"""Parity: stackctl.compose.interpolation / stackctl.compose.dotenv versus the real `docker compose config`.

Hypothesis generates Compose values, `.env` files and value sets; every generated case is
resolved both by the pure-Python code and by the Compose CLI (no engine needed for
`config`), and the results must be identical. Many cases are packed into one Compose run
(one `environment` entry or one service per case); cases the Python side predicts to fail
are run one by one, and Compose must fail on them too, with the same kind of error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stackctl.compose import dotenv
from stackctl.compose.interpolation import interpolate, is_name
from stackctl.errors import StackctlError

pytestmark = pytest.mark.docker

PARITY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

UNSET_MARK = "<unset>"

# --------------------------------------------------------------------------- harness

# Keys that would change how Compose itself behaves if they reached its environment.
RESERVED_PREFIXES = ("COMPOSE_", "DOCKER_", "BUILDKIT_")
# The only outer variables a Compose run sees (DOCKER_CONFIG: where the compose plugin lives).
RUNNER_ENV = ("PATH", "HOME", "DOCKER_CONFIG")


def yaml_string(text: str) -> str:
    """A YAML double-quoted scalar for ``text``; everything but printable ASCII is escaped."""
    out = ['"']
    for c in text:
        o = ord(c)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif 0x20 <= o < 0x7F:
            out.append(c)
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def to_yaml(node: Any, indent: int = 0) -> str:
    """Block-style YAML with every string (keys included) double-quoted."""
    pad = "  " * indent
    if isinstance(node, dict):
        if not node:
            return "{}"
        lines = []
        for key, value in node.items():
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{yaml_string(str(key))}:\n{to_yaml(value, indent + 1)}")
            else:
                lines.append(f"{pad}{yaml_string(str(key))}: {to_yaml(value, indent + 1)}")
        return "\n".join(lines)
    if isinstance(node, list):
        if not node:
            return "[]"
        return "\n".join(f"{pad}- {to_yaml(item, indent + 1).lstrip()}" for item in node)
    if isinstance(node, str):
        return yaml_string(node)
    return json.dumps(node)


@dataclass
class ComposeResult:
    ok: bool
    stderr: str
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    workdir: Path | None = None


@dataclass
class Stats:
    """Cases compared and Compose runs made, printed in the terminal summary."""

    cases: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    seconds: float = 0.0

    def add(self, kind: str, count: int) -> None:
        self.cases[kind] = self.cases.get(kind, 0) + count

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.runs:
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(self.cases.items()))
            terminalreporter.write_line(
                f"compose parity: {sum(self.cases.values())} cases ({detail}) in {self.runs} "
                f"`docker compose config` runs ({self.seconds:.1f}s inside Compose)")


STATS = Stats()


class ComposeRunner:
    """Runs `docker compose config --format json` on a generated project directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.counter = 0

    def project(self) -> Path:
        self.counter += 1
        path = self.base / f"p{self.counter}"
        path.mkdir()
        return path

    def config(self, compose: Mapping[str, Any], files: Mapping[str, str] | None = None,
               env: Mapping[str, str] | None = None, global_args: Sequence[str] = (),
               workdir: Path | None = None) -> ComposeResult:
        workdir = workdir or self.project()
        (workdir / "compose.yaml").write_text(to_yaml(dict(compose)) + "\n", encoding="utf-8")
        for name, content in (files or {}).items():
            (workdir / name).write_bytes(content.encode("utf-8"))
        run_env = {name: os.environ[name] for name in RUNNER_ENV if name in os.environ}
        run_env.update(env or {})
        started = time.monotonic()
        proc = subprocess.run(
            ["docker", "compose", *global_args, "config", "--format", "json"],
            cwd=workdir, env=run_env, capture_output=True, timeout=60, check=False,
        )
        STATS.runs += 1
        STATS.seconds += time.monotonic() - started
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            return ComposeResult(ok=False, stderr=stderr, workdir=workdir)
        doc = json.loads(proc.stdout.decode("utf-8"))
        envs: dict[str, dict[str, str]] = {}
        for name, service in (doc.get("services") or {}).items():
            raw = service.get("environment") or {}
            # Compose prints every "$" in a value as "$$".
            envs[name] = {k: (v.replace("$$", "$") if isinstance(v, str) else v)
                          for k, v in raw.items()}
        return ComposeResult(ok=True, stderr=stderr, environments=envs, workdir=workdir)


@pytest.fixture(scope="module")
def compose(pytestconfig: pytest.Config) -> Iterator[ComposeRunner]:
    """A runner in a private temp dir. A missing Compose CLI is handled by tests/conftest.py
    (skip locally, fail when STACKCTL_REQUIRE_DOCKER=1)."""
    if not pytestconfig.pluginmanager.is_registered(STATS):
        pytestconfig.pluginmanager.register(STATS, "stackctl-compose-parity-stats")
    base = Path(tempfile.mkdtemp(prefix="stackctl-parity-"))
    try:
        yield ComposeRunner(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _kind(error: StackctlError | str) -> str:
    text = str(error)
    if "required variable" in text:
        return "required"
    if "invalid interpolation format" in text:
        return "invalid"
    return "other"


def _describe(result: ComposeResult) -> str:
    files = []
    if result.workdir is not None:
        for path in sorted(result.workdir.iterdir()):
            files.append(f"--- {path.name}\n{path.read_bytes()!r}")
    return "\n".join([f"compose stderr: {result.stderr.strip()}", *files])


# --------------------------------------------------------------------------- strategies

NAMES = ["A", "B", "C", "EMPTY", "lower", "NOPE", "\u017f", "\u212a"]

name_st = st.sampled_from(NAMES)
operator_st = st.sampled_from([":-", "-", ":?", "?", ":+", "+", ":-", "-", ":+", "+"])
literal_st = st.text(alphabet="ab z{}:-?+#'\"\\\u00e9\t", max_size=4)
junk_st = st.sampled_from(["${", "${}", "${ A}", "${A:x}", "${A:-x\ny}", "${A=b}", "$1",
                           "${-}", "{", "}", "}}", "${A:-{}}y}", "$}", "${A:-x"])


def _pieces(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    good = st.one_of(
        literal_st,
        name_st.map(lambda n: "$" + n),
        name_st.map(lambda n: "${" + n + "}"),
        st.sampled_from(["$$", "$", "$ ", "\n", "$$A", "$${A}"]),
        st.builds(lambda n, o, arg: "${" + n + o + arg + "}", name_st, operator_st, inner),
        st.builds(lambda n, o, arg: "${" + n + o + arg + "}", name_st,
                  st.sampled_from([":-", "-", ":+", "+"]), inner),
    )
    return st.one_of(good, good, good, good, good, good, good, good, junk_st)


def _template(depth: int) -> st.SearchStrategy[str]:
    inner = literal_st if depth == 0 else _template(depth - 1)
    return st.lists(_pieces(inner), max_size=5).map("".join)


template_st = _template(2)
shell_value_st = st.text(alphabet="ab $x{}:-\u00e9'\"\\#\n", max_size=6)
# EMPTY is always set to "" and NOPE never set; the others vary.
shell_env_st = st.dictionaries(st.sampled_from([n for n in NAMES if n not in ("NOPE", "EMPTY")]),
                               shell_value_st, max_size=5).map(lambda d: {**d, "EMPTY": ""})

# .env lines for the precedence test: simple values that reference other variables.
_simple_value_st = st.sampled_from(
    ["v1", "v2", "${A}", "$B", "'${C}'", '"${A:-d}"', "${NOPE-x}", "x$$y", "", '"q w"'])
_simple_line_st = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", name_st, _simple_value_st),
    name_st,                                   # bare KEY: inherit
    st.just("# comment"),
)
simple_env_text_st = st.lists(_simple_line_st, max_size=5).map(lambda ls: "\n".join(ls) + "\n")


# .env syntax variety.
KEYS = ["A", "B", "C", "lower", "K.dot", "K-dash", "K[0]", "1ST", "\u00c4", "\u017f",
        "export", "exp", "_"]
key_st = st.sampled_from(KEYS)
blank_st = st.sampled_from(["", "", " ", "\t", "  "])
_unquoted_tokens = ["a", "b", " ", "#", " #", "\t", "=", ":", "{", "}", "'", '"', "\\", "$",
                    "$A", "${B}", "$lower", "$$", "${NOPE:-d}", "${K.dot}", "\u00e9", "\\n"]
unquoted_st = st.lists(st.sampled_from(_unquoted_tokens), max_size=5).map("".join)
_sq_tokens = ["a", " ", "#", "$A", "\\", "\\'", "\\\\", '"', "\n", "{}", "\u00e9", "\r\n"]
_dq_tokens = ["a", " ", "#", "$A", "${B:-x}", "${NOPE}", "\\n", "\\t", "\\\\", '\\"', "\\$",
              "\\0", "\\x", "\\a", "\\'", "'", "\n", "\u00e9", "$$", "\\", "\\r", "\\v",
              "\\b", "\\f", "\\u0041"]
sq_st = st.lists(st.sampled_from(_sq_tokens), max_size=5).map(lambda t: "'" + "".join(t) + "'")
dq_st = st.lists(st.sampled_from(_dq_tokens), max_size=5).map(lambda t: '"' + "".join(t) + '"')
value_st = st.one_of(unquoted_st, unquoted_st, sq_st, dq_st, dq_st,
                     st.sampled_from(["", "${A}", "$B$C", "${NOPE:-d}", "${A:?need A}", "x #c",
                                      "a\\", "'x'y", '"x" y', "'a'  # c"]))
trail_st = st.sampled_from(["", "", "", " # note", "#x", "  ", " \t", " x"])
# "export" is dropped only before a space, tab, CR, LF or form feed.
export_st = st.sampled_from(["", "", "", "export ", "export\t", "export\f", "export\r",
                             "export\x0b", "export\xa0", "export  "])
assignment_st = st.builds(
    lambda lead, exp, key, b1, sep, b2, value, trail: f"{lead}{exp}{key}{b1}{sep}{b2}{value}{trail}",
    blank_st, export_st, key_st, blank_st, st.sampled_from(["=", "=", "=", ":"]), blank_st,
    value_st, trail_st)
line_st = st.one_of(
    assignment_st, assignment_st, assignment_st, assignment_st,
    st.just("# a comment"), st.just(""), st.just("   "),
    st.builds(lambda b, k: f"{b}{k}", blank_st, key_st),        # bare key
    st.builds(lambda e, k: f"{e}{k}", st.sampled_from(["export\n", "export\r\n", "export"]),
              key_st),
    st.text(alphabet="A=#'\" \\$x:", max_size=6),                # junk
)
env_text_st = st.builds(
    lambda lines, eol, final: eol.join(lines) + (eol if final else ""),
    st.lists(line_st, min_size=1, max_size=8),
    st.sampled_from(["\n", "\n", "\r\n"]),
    st.booleans(),
)


# Round trip.
_special = st.sampled_from(
    [*"$'\"#\\ \t\n\r{}=:`!\a\b\f\v0n", "\x00", "\x7f", "\x85", "\u00a0", "\u2028",
     "\ufeff", "\U0001f600", "\u00e9", "${A}", "$$",
     " #", "\\$", "\\0", "\\n", "\r\n"])
_printable = st.sampled_from([*" #$\\\"{}=:'\t", "\u00e9", "${A}", "\\\\", "\U0001f600"])
rt_value_st = st.one_of(
    st.lists(st.one_of(_special, _special, st.sampled_from("abcXYZ019_"),
                       st.characters(exclude_categories=["Cs"])), max_size=10).map("".join),
    st.lists(st.one_of(_printable, st.sampled_from("abc_")), max_size=8).map("".join),
)
_identifier_st = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
_env_key_st = st.text(
    alphabet=st.one_of(st.characters(categories=["Lu", "Ll", "Lo", "Nd", "Nl"]),
                       st.sampled_from(list("_.-[]"))),
    min_size=1, max_size=8)
rt_key_st = st.one_of(_identifier_st, _identifier_st, _env_key_st).filter(
    lambda k: dotenv.is_valid_key(k) and not k.upper().startswith(RESERVED_PREFIXES))
rt_mapping_st = st.dictionaries(rt_key_st, rt_value_st, min_size=2, max_size=8)


# --------------------------------------------------------------------------- helpers


def _python(fn: Callable[[], object]) -> tuple[bool, object]:
    try:
        return True, fn()
    except StackctlError as exc:
        return False, exc


def _expect_failure(compose: ComposeRunner, what: str, python_error: object,
                    run: Callable[[], ComposeResult], check_kind: bool = True) -> None:
    result = run()
    if result.ok:
        pytest.fail(f"{what}: stackctl raised {python_error!s} but Compose accepted it\n"
                    f"{_describe(result)}")
    if check_kind and isinstance(python_error, StackctlError):
        assert _kind(python_error) == _kind(result.stderr), (
            f"{what}: different errors\n  stackctl: {python_error}\n{_describe(result)}")


# --------------------------------------------------------------------------- (a) interpolation


def _write_env_files(workdir: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        (workdir / name).write_text(text, encoding="utf-8")


@settings(PARITY, max_examples=130)
@given(templates=st.lists(template_st, min_size=6, max_size=20), shell=shell_env_st,
       dot_env=st.one_of(st.none(), simple_env_text_st),
       env_files=st.lists(simple_env_text_st, max_size=2))
@example(templates=["${A:-x}}", "${NOPE:-{}}y}", "${NOPE:-$${B}x}y}", "${NOPE:-{x}}",
                    "$$A ${A}$A.x $ {", "${lower:+alt}${A+alt}${EMPTY:+alt}",
                    "${NOPE:-${B:-${C}}}}", "$\u017f ${\u212a}"],
         shell={"A": "a", "B": "", "EMPTY": "", "lower": "l"}, dot_env=None, env_files=[])
@example(templates=["${A:-fallback}|${B}|${C-d}"], shell={"A": "shell"},
         dot_env="A=dot\nB=dot\nC=dot\n", env_files=["B=e1\nC=$A\n", "C=e2\nB\n"])
@example(templates=["${NOPE:-${A:?inner}}"], shell={}, dot_env=None, env_files=[])
@example(templates=["${A:?a is required}", "${NOPE:-${B}"], shell={"A": "x"}, dot_env=None,
         env_files=[])
def test_interpolation_matches_compose(compose: ComposeRunner, templates: list[str],
                                       shell: dict[str, str], dot_env: str | None,
                                       env_files: list[str]) -> None:
    """Compose values against shell env, project .env and --env-file files."""
    workdir = compose.project()
    files: dict[str, str] = {}
    if dot_env is not None:
        files[".env"] = dot_env
    names = [f"e{i}.env" for i in range(len(env_files))]
    files.update(zip(names, env_files, strict=True))
    _write_env_files(workdir, files)
    global_args = [arg for name in names for arg in ("--env-file", name)]

    ok, project = _python(lambda: dotenv.project_environment(
        shell, project_dir=workdir, env_files=[workdir / n for n in names]))
    if not ok:
        _expect_failure(compose, "env files", project, lambda: compose.config(
            {"services": {"s": {"image": "x"}}}, env=shell, global_args=global_args,
            workdir=workdir), check_kind=False)
        STATS.add("interpolation", 1)
        return
    assert isinstance(project, dict)

    expected: dict[str, str] = {}
    failing: list[tuple[str, StackctlError]] = []
    for i, template in enumerate(templates):
        ok, value = _python(lambda t=template: interpolate(t, project.get))
        if ok:
            assert isinstance(value, str)
            expected[f"V{i}"] = value
        else:
            assert isinstance(value, StackctlError)
            failing.append((template, value))

    def run(environment: Mapping[str, str], extra: Mapping[str, object] | None = None,
            files: Mapping[str, str] | None = None) -> ComposeResult:
        services = {"s": {"image": "x", "environment": dict(environment)}, **(extra or {})}
        return compose.config({"services": services}, files=files, env=shell,
                              global_args=global_args, workdir=workdir)

    passing = {f"V{i}": t for i, t in enumerate(templates) if f"V{i}" in expected}
    # The same templates written with dotenv.format_template into a service env_file.
    template_file = "".join(f"{k}={dotenv.format_template(t)}\n" for k, t in passing.items())
    assert dotenv.parse(template_file, environ=project) == expected, template_file
    result = run(passing, {"t": {"image": "x", "env_file": ["templates.env"]}},
                 {"templates.env": template_file})
    assert result.ok, f"Compose rejected values stackctl accepted: {passing}\n{_describe(result)}"
    for service in ("s", "t"):
        got = result.environments.get(service, {})
        for key, template in passing.items():
            assert got.get(key) == expected[key], (
                f"template {template!r} (service {service}): compose={got.get(key)!r} "
                f"stackctl={expected[key]!r}\nshell={shell!r}\nproject env={project!r}\n"
                f"{_describe(result)}")
    for template, error in failing[:1]:
        _expect_failure(compose, f"template {template!r}", error, lambda t=template: run({"V": t}))
    STATS.add("interpolation", len(passing) + len(failing[:1]))


# --------------------------------------------------------------------------- (b) .env syntax


@settings(PARITY, max_examples=120)
@given(texts=st.lists(env_text_st, min_size=3, max_size=8), dot_env=env_text_st,
       shell=st.dictionaries(st.sampled_from(["A", "B", "K.dot", "lower", "", "NOPE"]),
                             st.sampled_from(["sh", "", "$A", "x y"]), max_size=3))
@example(texts=['A="x"y', "export\nB=1\n", "A=b #c\nB=b#c\nC=b\t#c\n", 'A="\\0\\q\\$A"\n',
                "A='a\\'b\\\\'\n", "K.dot=1\nA=$K.dot\n", "A=1\nB=$A\n", "A B=1\n"],
         dot_env="A=dot\nB=${A}\nlower\n", shell={"A": "sh", "lower": "lo"})
@example(texts=['A="x\\""\n', "A=\"multi\nline\" # c\n", "A=${NOPE:?need it}\n", "exportA=1\n",
                "A: b\n", "\ufeffA=1\n", "export ", "A=\"x\" B=y # c\n"],
         dot_env="A", shell={})
def test_dotenv_syntax_matches_compose(compose: ComposeRunner, texts: list[str], dot_env: str,
                                       shell: dict[str, str]) -> None:
    """`.env` text read as a service env_file and as the project .env."""
    shell = {k: v for k, v in shell.items() if k}
    ok_dot, dot_values = _python(lambda: dotenv.parse(dot_env, filename=".env", environ=shell))
    files = {".env": dot_env}
    files.update({f"f{i}.env": text for i, text in enumerate(texts)})
    if not ok_dot:
        _expect_failure(compose, f".env {dot_env!r}", dot_values, lambda: compose.config(
            {"services": {"s": {"image": "x"}}}, files=files, env=shell), check_kind=False)
        STATS.add("dotenv", 1)
        return
    assert isinstance(dot_values, dict)
    project = {**dot_values, **shell}

    expected: dict[str, dict[str, str]] = {}
    services: dict[str, dict[str, object]] = {}
    failing: list[tuple[str, StackctlError]] = []
    for i, text in enumerate(texts):
        ok, values = _python(lambda t=text, i=i: dotenv.parse(t, filename=f"f{i}.env",
                                                               environ=project))
        if ok:
            assert isinstance(values, dict)
            expected[f"f{i}"] = values
            services[f"f{i}"] = {"image": "x", "env_file": [f"f{i}.env"]}
        else:
            assert isinstance(values, StackctlError)
            failing.append((f"f{i}.env", values))
    good = [f"f{i}.env" for i in range(len(texts)) if f"f{i}" in expected]
    if len(good) >= 2:
        chain = [(name, files[name]) for name in good[:3]]
        expected["chain"] = dotenv.parse_chain(chain, environ=project)
        services["chain"] = {"image": "x", "env_file": [name for name, _ in chain]}
    # The project .env as Compose's interpolation sees it (keys that ${...} can name).
    names = [k for k in dot_values if is_name(k)] + ["NOPE"]
    expected["dot"] = {k: project.get(k, UNSET_MARK) for k in names}
    services["dot"] = {"image": "x",
                       "environment": {k: "${" + k + "-" + UNSET_MARK + "}" for k in names}}

    result = compose.config({"services": services}, files=files, env=shell)
    assert result.ok, f"Compose rejected env files stackctl accepted\n{_describe(result)}"
    for service, values in expected.items():
        got = result.environments.get(service, {})
        assert got == values, (
            f"service {service}: compose={got!r}\nstackctl={values!r}\n{_describe(result)}")
    for name, error in failing[:1]:
        _expect_failure(compose, name, error, lambda n=name: compose.config(
            {"services": {"s": {"image": "x", "env_file": [n]}}}, files=files, env=shell),
            check_kind=False)
    STATS.add("dotenv", sum(map(len, expected.values())) + len(failing[:1]))


# --------------------------------------------------------------------------- (c) round trip


@settings(PARITY, max_examples=120)
@given(mappings=st.lists(rt_mapping_st, min_size=3, max_size=6))
@example(mappings=[{"BS": "\\", "BS_END": "a\\", "DOLLAR": "$A ${B} $$", "Q": "it's \"q\"",
                    "NL": "a\nb\r\n", "LEAD": "  x  ", "HASH": "a #b", "NUL": "\x00\\0",
                    "EMPTY": "", "ESC": "\\n\\t\\$"},
                   {"K.dot": "#", "K-dash": "'", "K[0]": '"', "\u00c4": "\U0001f600\u2028",
                    "_": "\t", "x": "\ufeffbom"}])
def test_render_round_trips_through_compose(compose: ComposeRunner,
                                            mappings: list[dict[str, str]]) -> None:
    """`render(values)` read back by Compose (as env_file and as project .env) is `values`."""
    files: dict[str, str] = {}
    services: dict[str, dict[str, object]] = {}
    for i, mapping in enumerate(mappings):
        text = dotenv.render(mapping, header=f"generated case {i}")
        assert dotenv.parse(text) == mapping, f"stackctl does not read back its own {text!r}"
        files[f"r{i}.env"] = text
        services[f"r{i}"] = {"image": "x", "env_file": [f"r{i}.env"]}
    dot = {k: v for k, v in mappings[0].items() if is_name(k) and k not in RUNNER_ENV}
    if dot:
        files[".env"] = dotenv.render(dot)
        services["dot"] = {"image": "x",
                           "environment": {k: "${" + k + "-" + UNSET_MARK + "}" for k in dot}}
    result = compose.config({"services": services}, files=files, env={})
    assert result.ok, f"Compose rejected rendered files\n{_describe(result)}"
    for i, mapping in enumerate(mappings):
        got = result.environments.get(f"r{i}", {})
        assert got == mapping, f"round trip {i}: compose={got!r} wanted={mapping!r}\n" \
                               f"{_describe(result)}"
    if dot:
        assert result.environments.get("dot") == dot, _describe(result)
    STATS.add("round trip", sum(len(m) for m in mappings) + len(dot))
