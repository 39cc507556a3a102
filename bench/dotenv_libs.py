"""Which `.env` parser: stackctl's own (`stackctl.compose.dotenv`) against python-dotenv, both checked
against what Docker Compose itself resolves, plus what each costs to import.

    .venv/bin/python bench/run.py dotenv_libs

Each case is one `.env` file given to a one-service project as `env_file:`; `docker compose config
--format json` says what the service's environment holds, and that is the reference. A parser agrees
on a case when it yields the same value for every key Compose reports (python-dotenv with
`interpolate=True`, its default). Cases are the shapes real projects' `.env` files have: comments,
quotes, escapes, `export`, interpolation with defaults, CRLF line ends. It only reports (no target);
the result is why stackctl does not use python-dotenv (docs/architecture.md, "Dependencies").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TITLE = "the .env parser: stackctl's vs python-dotenv, agreement with docker compose config; import cost"

CASES: list[tuple[str, str]] = [
    ("hash inside a value", "KEY=a#b\n"),
    ("comment after a space", "KEY=a #b\n"),
    ("double-quoted escape", 'KEY="a\\nb"\n'),
    ("single-quoted escape", "KEY='a\\nb'\n"),
    ("default", "KEY=${OTHER:-dflt}\n"),
    ("earlier key", "OTHER=x\nKEY=${OTHER}y\n"),
    ("export", "export KEY=v\n"),
    ("yaml style", "KEY: v\n"),
    ("comment after quotes", 'KEY="a" # c\n'),
    ("surrounding blanks", "KEY=  spaced  \n"),
    ("multi-line double quotes", 'KEY="line1\nline2"\n'),
    ("escaped dollar, unquoted", "KEY=\\$notvar\n"),
    ("single quotes do not interpolate", "OTHER=x\nKEY='${OTHER}'\n"),
    ("escaped dollar, double quotes", 'OTHER=x\nKEY="\\$OTHER"\n'),
    ("unset variable", "KEY=a${NOPE_NOT_SET}b\n"),
    ("tab escape", 'KEY="a\\tb"\n'),
    ("backslash unquoted", "KEY=a\\tb\n"),
    ("CRLF", "KEY=value\r\nK2=v2\r\n"),
    ("default when empty (-)", "OTHER=\nKEY=${OTHER-dflt}\n"),
    ("default when empty (:-)", "OTHER=\nKEY=${OTHER:-dflt}\n"),
    ("alternative", "OTHER=x\nKEY=${OTHER:+alt}\n"),
    ("indented key", "   KEY=v\n"),
    ("apostrophe in double quotes", 'KEY="it\'s"\n'),
    ("equals in value", "KEY=a=b=c\n"),
    ("empty value", "KEY=\n"),
    ("bare $", "KEY=cost$5\n"),
    ("URL with password", "KEY=postgres://u:p%40ss@db:5432/app?sslmode=disable\n"),
    ("two statements on a line", 'KEY="x" K2=y\n'),
    ("escaped quote", 'KEY="say \\"hi\\""\n'),
    ("dollar-brace in single quotes", "KEY='${X:-y}'\n"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import-runs", type=int, default=5, help="fresh interpreters per import timing (default 5)")


def _compose(text: str, work: Path) -> dict[str, str] | str:
    """The service environment Compose resolves from `text`, or its error message."""
    (work / "case.env").write_bytes(text.encode())
    (work / "compose.yaml").write_text("services:\n  s:\n    image: busybox\n    env_file: [case.env]\n")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG")}
    proc = subprocess.run(["docker", "compose", "--project-directory", str(work), "-f", str(work / "compose.yaml"),
                           "--env-file", os.devnull, "config", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    if proc.returncode != 0:
        return f"error: {proc.stderr.strip()[:120]}"
    data: dict[str, Any] = json.loads(proc.stdout)
    environment = data["services"]["s"].get("environment") or {}
    # `config` prints values re-interpolatable: a literal `$` as `$$`
    return {k: ("" if v is None else str(v)).replace("$$", "$") for k, v in environment.items()}


def _ours(text: str) -> dict[str, str] | str:
    from stackctl.compose import dotenv
    from stackctl.errors import StackctlError

    try:
        return dict(dotenv.parse(text, filename="case.env", environ={}))
    except StackctlError as exc:
        return f"error: {exc}"


def _python_dotenv(text: str) -> dict[str, str] | str | None:
    try:
        import io

        from dotenv import dotenv_values
    except ImportError:
        return None
    saved = {k: os.environ.pop(k) for k in ("OTHER", "X", "NOPE_NOT_SET") if k in os.environ}
    try:
        return {k: ("" if v is None else v) for k, v in dotenv_values(stream=io.StringIO(text)).items()}
    except Exception as exc:  # whatever the library raises is a disagreement, not a bench failure
        return f"error: {exc}"
    finally:
        os.environ.update(saved)


def _agrees(got: dict[str, str] | str | None, want: dict[str, str] | str) -> bool:
    if isinstance(want, str):
        return isinstance(got, str)  # both refuse the file
    return isinstance(got, dict) and all(got.get(k) == v for k, v in want.items())


def _import_ms(module: str, runs: int) -> float | None:
    samples = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return None
        last = [line for line in proc.stderr.splitlines() if line.rstrip().endswith(f" {module}")]
        samples.append(int(last[-1].split("|")[1]) / 1000 if last else 0.0)
    return statistics.median(samples)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="stackctl-dotenv-bench-") as tmp:
        for name, text in CASES:
            want = _compose(text, Path(tmp))
            ours, theirs = _ours(text), _python_dotenv(text)
            rows.append({"case": name, "compose": want, "stackctl": ours, "python_dotenv": theirs,
                         "stackctl_agrees": _agrees(ours, want),
                         "python_dotenv_agrees": None if theirs is None else _agrees(theirs, want)})
    n = len(rows)
    ours_ok = sum(r["stackctl_agrees"] for r in rows)
    have_pd = all(r["python_dotenv"] is not None for r in rows)
    pd_ok = sum(bool(r["python_dotenv_agrees"]) for r in rows) if have_pd else None
    print(f"  {n} .env cases, reference: docker compose config")
    print(f"    stackctl.compose.dotenv   agrees on {ours_ok}/{n}")
    print("    python-dotenv             " + (f"agrees on {pd_ok}/{n}" if have_pd else "not installed"))
    for r in rows:
        if not r["stackctl_agrees"] or r["python_dotenv_agrees"] is False:
            print(f"      {r['case']}: compose {r['compose']!r}; stackctl {r['stackctl']!r}; "
                  f"python-dotenv {r['python_dotenv']!r}")
    ours_ms = _import_ms("stackctl.compose.dotenv", args.import_runs)
    pd_ms = _import_ms("dotenv", args.import_runs) if have_pd else None
    print(f"  import (cumulative, median of {args.import_runs}): stackctl.compose.dotenv {ours_ms} ms"
          + (f", python-dotenv {pd_ms} ms" if pd_ms is not None else ""))
    summary = (f"stackctl agrees with Compose on {ours_ok}/{n} .env cases"
               + (f", python-dotenv on {pd_ok}/{n}" if have_pd else ", python-dotenv not installed"))
    return {"passed": None, "summary": summary, "cases": rows, "import_ms": {"stackctl": ours_ms,
                                                                           "python_dotenv": pd_ms}}
