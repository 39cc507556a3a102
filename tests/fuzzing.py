"""Generated malformed inputs run through the real CLI in-process (shared by tests/unit/test_fuzz.py and
bench/fuzz.py).

An input is one file of a small working project (profile, .env.example, .env, compose.yaml, the secrets
store, or the JSON `docker compose config` prints) replaced by a mutation of it; each input runs a few
commands. What every run must show: an exit code of 0, 1 or 2, no "internal error", an error that names
a file, within a time bound. Docker is never run: `STACKCTL_DOCKER` is a script printing the project's
resolved JSON (the `compose_json` kind mutates that JSON).

Inputs derive from (seed, index) alone, so one input replays with `STACKCTL_FUZZ_SEED=S STACKCTL_FUZZ_ONLY=I`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPOSE = """\
x-common: &common
  restart: unless-stopped
services:
  api:
    <<: *common
    image: example/api:1
    environment:
      DB_PASSWORD: ${DB_PASSWORD}
      API_URL: ${API_URL:-http://localhost}
    ports: ["8080:80"]
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?set it}
"""

COMPOSE_JSON: dict[str, Any] = {
    "name": "fuzz", "networks": {"default": {"name": "fuzz_default", "ipam": {}}},
    "services": {
        "api": {"command": None, "entrypoint": None, "environment": {"API_URL": "http://localhost",
                                                                     "DB_PASSWORD": "pw"},
                "image": "example/api:1", "networks": {"default": None},
                "ports": [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}],
                "restart": "unless-stopped"},
        "db": {"command": None, "entrypoint": None, "environment": {"POSTGRES_PASSWORD": "pw"},
               "image": "postgres:16", "networks": {"default": None}}},
    "x-common": {"restart": "unless-stopped"}}

# kind -> (file in the project, commands run on it)
KINDS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "profile": ("profiles/local.yaml", (("env", "check"), ("config",), ("secrets", "list"))),
    "env_example": (".env.example", (("env", "check"), ("env", "render"))),
    "env_file": (".env", (("env", "check"), ("config",))),
    "compose": ("compose.yaml", (("env", "check"), ("config",))),
    "store": (".stackctl/secrets/local.json", (("secrets", "list"), ("env", "render"))),
    "compose_json": ("compose.json", (("config",), ("config", "-o", "json"))),
}

# Names an error may give for the file at fault ("Error: <file>: ...").
FILE_NAMES = ("profiles/local.yaml", ".env.example", ".env", "compose.yaml", "local.json", "docker compose",
              "compose.json")

_LOCATED = re.compile(r"^Error: ([^\s:]+: |.+ does not exist)", re.MULTILINE)  # "Error: <path>: ..."

TIME_BOUND = 5.0       # seconds per command run
MEMORY_BOUND = 256     # MiB of peak RSS growth per input


def _bomb(levels: int = 9, width: int = 9) -> str:
    text = '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for i in range(1, levels):
        name = chr(ord("a") + i)
        text += f"  {name}: &{name} [{','.join([f'*{prev}'] * width)}]\n"
        prev = name
    return text


def _nested_interpolation(depth: int) -> str:
    return "${B:-" * depth + "x" + "}" * depth


# Snippets known to have broken a parser once (issue 18), or likely to.
NASTY = [
    "[" * 3000 + "]" * 3000, "{a: " * 3000 + "1" + "}" * 3000, "- " * 50,
    _nested_interpolation(990), _nested_interpolation(99), "${", "$${X}", "${X:?}", "${X?boom}", "${:-x}",
    "export ", "export\t", "export", "\0", '"\\0"', '"\\ud800"', '"a\\x00b"', "\ud800", "\ufeff",
    "\r\n", "\t", "&a x", "*a", "*undefined", "<<: *a", "!reset", "!override []", "!!python/object:os.system",
    "~", "null", "[]", "{}", "''", '"', "'", "#", " #", "=", ":", "- ", "? ", "---", "...", "%YAML 1.1",
    "9" * 400, "-1", "0", "1e999", ".inf", "true", "0x10", "\u202e", "é", "\U0001f600", "a" * 5000,
]


def _mutate_text(text: str, rng: random.Random, yaml: bool) -> str:
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(10)
        i = rng.randrange(len(lines))
        if op <= 2:      # a nasty snippet somewhere in a line
            line = lines[i]
            at = rng.randint(0, len(line))
            lines[i] = line[:at] + rng.choice(NASTY) + line[at:]
        elif op == 3:    # a value replaced
            line = lines[i]
            cut = line.find(":") + 1 or line.find("=") + 1 or rng.randint(0, len(line))
            lines[i] = line[:cut] + " " + rng.choice(NASTY) + "\n"
        elif op == 4:
            del lines[i]
            lines = lines or [""]
        elif op == 5:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 6:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 7:    # indentation changed
            lines[i] = rng.choice(["", " ", "  ", "\t", "      "]) + lines[i].lstrip()
        elif op == 8:    # an alias bomb or deep block
            lines.insert(i, rng.choice([f"x-bomb:\n{_bomb()}", "x-deep:\n" + "".join(
                "  " * (d + 1) + f"k{d}:\n" for d in range(rng.choice([150, 250, 3000] if yaml else [150])))]))
        else:            # truncated
            joined = "".join(lines)
            return joined[:rng.randint(0, len(joined))]
    return "".join(lines)


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buf:
            buf.extend(rng.randbytes(4))
        i = rng.randrange(len(buf))
        op = rng.randrange(3)
        if op == 0:
            buf[i] = rng.randrange(256)
        elif op == 1:
            buf[i:i] = rng.choice([b"\xff", b"\xed\xa0\x80", b"\x00", b"\xc3", b"\r", rng.randbytes(3)])
        else:
            del buf[i]
    return bytes(buf)


def _mutate_json(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """A structurally mutated copy of a JSON value (types swapped, keys dropped, deep nests)."""
    if rng.random() < 0.15 or depth > 6:
        return rng.choice([None, 0, -1, 70000, "", "x", [], {}, True, 1.5, [[]] * 3, {"target": 0},
                           json.loads("[" * 300 + "]" * 300)])
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if rng.random() < 0.1:
                continue
            out[k] = _mutate_json(v, rng, depth + 1) if rng.random() < 0.5 else v
        return out
    if isinstance(value, list):
        return [_mutate_json(v, rng, depth + 1) for v in value]
    return value


def _replace_strings(value: Any, rng: random.Random) -> None:
    """Some string values of a JSON tree replaced by nasty text, in place."""
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    for key, child in items:
        if isinstance(child, str) and rng.random() < 0.3:
            value[key] = rng.choice([n for n in NASTY if "\ud800" not in n])  # Go's JSON has no lone surrogates
        elif isinstance(child, (dict, list)):
            _replace_strings(child, rng)


@dataclass
class Input:
    index: int
    kind: str
    path: str
    content: bytes
    commands: tuple[tuple[str, ...], ...]
    label: str = ""


def generate(seed: int, index: int, base: Path) -> Input:
    """Input `index` of run `seed` (a pure function of both and the base project)."""
    rng = random.Random(f"{seed}:{index}")
    kind = rng.choice(sorted(KINDS))
    rel, commands = KINDS[kind]
    if kind == "compose_json":  # only what Compose could print: its schema holds, x- fields are free
        data = json.loads(json.dumps(COMPOSE_JSON))
        if rng.random() < 0.5:
            data[f"x-{rng.randrange(9)}"] = _mutate_json(COMPOSE_JSON, rng)
            data["services"]["api"]["x-fuzz"] = _mutate_json(COMPOSE_JSON["services"], rng)
        else:
            _replace_strings(data, rng)
        content = json.dumps(data).encode()
    else:
        original = (base / rel).read_bytes()
        if kind == "store":
            if rng.random() < 0.5:
                content = json.dumps(_mutate_json(json.loads(original), rng)).encode()
            else:
                content = _mutate_bytes(original, rng)
        elif rng.random() < 0.25:
            content = _mutate_bytes(original, rng)
        else:
            text = _mutate_text(original.decode("utf-8"), rng, yaml=rel.endswith(".yaml"))
            content = text.encode("utf-8", "surrogatepass")
    return Input(index, kind, rel, content, (rng.choice(commands),))


# Every past failure, kept as it was found (issue 18's report), replayed on every run.
def regressions() -> list[Input]:
    def text(kind: str, content: str, label: str) -> Input:
        rel, commands = KINDS[kind]
        return Input(-1, kind, rel, content.encode("utf-8", "surrogatepass"), commands, label)

    profile = "stack: fuzz\ncompose:\n  files:\n    - {files}\nenv:\n  template: .env.example\n  file: {env}\n"
    compose_json_bad_port = json.loads(json.dumps(COMPOSE_JSON))
    compose_json_bad_port["services"]["api"]["ports"] = [{"mode": "ingress", "protocol": "tcp"}]
    return [
        text("profile", "a: " + "[" * 3000 + "]" * 3000 + "\n", "profile nested 3,000 deep"),
        text("compose", COMPOSE + "x-deep: " + "[" * 3000 + "]" * 3000 + "\n", "Compose YAML nested 3,000 deep"),
        text("store", "[" * 3000 + "]" * 3000, "store JSON nested 3,000 deep"),
        text("compose_json", "[" * 3000 + "]" * 3000, "Compose JSON nested 3,000 deep"),
        text("compose", COMPOSE.replace("${API_URL:-http://localhost}", _nested_interpolation(990)),
             "${B:-${B:-...}} nested 990 deep in Compose YAML"),
        text("env_file", f"DB_PASSWORD=pw\nAPI_URL={_nested_interpolation(990)}\n", "nested 990 deep in .env"),
        text("env_example", f"API_URL={_nested_interpolation(990)}\n# @secret password:32\nDB_PASSWORD=\n",
             "nested 990 deep in .env.example"),
        text("env_example", "export \n# @secret password:32\nDB_PASSWORD=\n", ".env.example line 'export '"),
        text("env_file", "export \nDB_PASSWORD=pw\n", ".env line 'export '"),
        text("env_file", "DB_PASSWORD=pw\nAPI_URL=x\0y\n", "NUL in a .env value (no process environment takes it)"),
        text("profile", profile.format(files='"comp\\0ose.yaml"', env=".env"), "NUL in compose.files"),
        text("profile", profile.format(files='"comp\\ud800ose.yaml"', env=".env"), "surrogate in compose.files"),
        text("profile", profile.format(files="compose.yaml", env='"\\0.env"'), "NUL in env.file"),
        text("profile", profile.format(files="compose.yaml", env='"\\udc80.env"'), "surrogate in env.file"),
        text("compose_json", json.dumps(compose_json_bad_port), "Compose ports target 0 (dropped from the JSON)"),
        text("compose", f"{COMPOSE}x-bomb:\n{_bomb()}", "alias bomb in an x- block"),
        text("profile", f"stack: fuzz\nx-bomb:\n{_bomb()}", "alias bomb in a profile"),
        text("compose", f"{COMPOSE}x-loop: &loop [*loop]\n", "recursive alias"),
        text("compose", COMPOSE + 'x-deep: "\n' + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(3000)),
             "a quote never closed over 9 MB (the pure-Python parser took 18 s to refuse it)"),
    ]


# --------------------------------------------------------------------------- running


def build_base(root: Path, run_cli: Callable[..., tuple[int, str, str]]) -> None:
    """A working project under `root` (init, a key, a generated store, the rendered .env)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "compose.yaml").write_text(COMPOSE)
    (root / "compose.json").write_text(json.dumps(COMPOSE_JSON))
    for args in (("init",), ("secrets", "keygen"), ("secrets", "init"), ("secrets", "generate"),
                 ("env", "render")):
        code, out, err = run_cli(root, *args)
        if code != 0:
            raise RuntimeError(f"stackctl {' '.join(args)} failed building the fuzz project: {err or out}")


def fake_docker(directory: Path) -> Path:
    """A `docker` printing the project's compose.json for `compose ... config`, failing otherwise."""
    script = directory / "docker"
    script.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = config ] && exec cat compose.json; done\n'
                      'echo "fuzz: no docker here" >&2\nexit 1\n')
    script.chmod(0o755)
    return script


@contextlib.contextmanager
def environment(home: Path) -> Iterator[None]:
    """HOME, XDG_CONFIG_HOME and a fake docker for the runs; restored afterwards."""
    saved = dict(os.environ)
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_COLOR": "1",
                       "COLUMNS": "100", "STACKCTL_DOCKER": str(fake_docker(home))})
    for var in ("STACKCTL_PROFILE", "STACKCTL_PROJECT_DIR", "STACKCTL_DEBUG", "DOCKER_CONTEXT"):
        os.environ.pop(var, None)
    import typer.main

    # typer builds the click command from the signatures on every call (~250 ms): once is enough here
    original = typer.main.get_command
    built: dict[int, Any] = {}

    def get_command(typer_instance: Any) -> Any:
        key = id(typer_instance)
        if key not in built:
            built[key] = original(typer_instance)
        return built[key]

    typer.main.get_command = get_command  # restored below
    try:
        yield
    finally:
        typer.main.get_command = original
        os.environ.clear()
        os.environ.update(saved)


def run_cli(root: Path, *args: str) -> tuple[int, str, str]:
    """`stackctl ARGS` in-process in `root` through main() (its error boundary included)."""
    from typer.testing import CliRunner

    import stackctl.cli.common as common
    from stackctl.cli import main
    from stackctl.compose import cli as docker_cli

    docker_cli.compose_plugin.cache_clear()
    common.console.cache_clear()
    common.err_console.cache_clear()
    cwd = os.getcwd()
    os.chdir(root)
    code = 0
    try:
        with CliRunner().isolation() as streams:
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            out = streams[0].getvalue().decode("utf-8", "replace")
            err = streams[1].getvalue().decode("utf-8", "replace")
    finally:
        os.chdir(cwd)
        common.console.cache_clear()
        common.err_console.cache_clear()
        common.set_project_dir(None)
    return code, out, err


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class Outcome:
    input: Input
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rss_growth_mib: float = 0.0
    runs: int = 0


def check(inp: Input, base: Path, work: Path) -> Outcome:
    """Run every command of `inp` on a copy of the base project holding it; say what went wrong."""
    outcome = Outcome(inp)
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work, symlinks=True)
    (work / inp.path).write_bytes(inp.content)
    before = _maxrss_mib()
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for args in inp.commands:
            started = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, TIME_BOUND * 4)  # a real hang ends here, not never
            try:
                code, out, err = run_cli(work, *args)
            except Hang:
                outcome.problems.append(f"stackctl {' '.join(args)}: hang (stopped after {TIME_BOUND * 4:.0f} s)")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            took = time.monotonic() - started
            outcome.seconds += took
            outcome.runs += 1
            cmd = f"stackctl {' '.join(args)}"
            if took > TIME_BOUND:
                outcome.problems.append(f"{cmd}: took {took:.1f} s (bound {TIME_BOUND:.0f} s)")
            if code not in (0, 1, 2):
                outcome.problems.append(f"{cmd}: exit {code}")
            if "internal error" in out + err or "Traceback" in err:
                outcome.problems.append(f"{cmd}: {err.strip().splitlines()[-1] if err.strip() else out[-300:]}")
            elif code != 0 and not _LOCATED.search(err) and not any(name in out + err for name in FILE_NAMES) and not (
                    args[0] == "env" and "env check failed for profile" in err):  # its table says where
                outcome.problems.append(f"{cmd}: exit {code}, the error names no file: {err.strip()[:300]!r}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    outcome.rss_growth_mib = _maxrss_mib() - before
    if outcome.rss_growth_mib > MEMORY_BOUND:
        outcome.problems.append(f"peak memory grew {outcome.rss_growth_mib:.0f} MiB (bound {MEMORY_BOUND} MiB)")
    return outcome


def describe(outcome: Outcome, seed: int) -> str:
    inp = outcome.input
    replay = (f"STACKCTL_FUZZ_SEED={seed} STACKCTL_FUZZ_ONLY={inp.index}" if inp.index >= 0
              else f"regression {inp.label!r}")
    preview = inp.content[:120]
    return f"[{replay}] {inp.kind} ({inp.path}, {preview!r}...): " + "; ".join(outcome.problems)
