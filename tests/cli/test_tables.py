"""Tables survive pipes and narrow terminals (issue 13 item 13), and every command that prints data
offers it as data (`-o json`).

Piped, a row used to wrap at $COLUMNS (or 80), so `stackctl env check | grep TOKEN` found a piece of
a row; at 80 columns the key column (a secret's name) folded over two lines.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

LONG_KEY = "STRIPE_WEBHOOK_SIGNING_SECRET_PAYMENTS"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def proj(project: Any) -> Any:
    project.write("compose.yaml", f"""
        services:
          api:
            image: busybox
            environment:
              DB_PASSWORD: ${{DB_PASSWORD:?}}
              TOKEN: ${{{LONG_KEY}:?set it}}
    """)
    project.write(".env.example", "# @secret password:24\nDB_PASSWORD=\nADMIN_EMAIL=your-email@example.com\n")
    project.profile("local", "compose:\n  files: [compose.yaml]\n")
    return project


def test_piped_rows_stay_on_one_line(proj: Any, cli: Callable[..., Any]) -> None:
    res = cli("env", "check", env={"COLUMNS": "80"})  # stdout is not a terminal here: a pipe
    assert res.exit_code == 1
    rows = [line for line in res.stdout.splitlines() if LONG_KEY in line]  # what `grep` would print
    assert len(rows) == 1
    assert "undefined" in rows[0] and "services.api.environment.TOKEN" in rows[0]
    assert "defined nowhere (.env.example, .env, profile env.values, store)" in rows[0]
    missing = next(line for line in res.stdout.splitlines() if "DB_PASSWORD" in line)
    assert "secret not in the store; run `stackctl secrets generate -p local`" in missing


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_key_columns_stay_whole_on_a_narrow_terminal(proj: Any, cli: Callable[..., Any], columns: int) -> None:
    res = cli("env", "check", env={"COLUMNS": str(columns), "TTY_COMPATIBLE": "1"})  # rich: a terminal
    assert res.exit_code == 1
    lines = [ANSI.sub("", line) for line in res.stdout.splitlines()]
    assert max(len(line) for line in lines) <= columns
    assert any(LONG_KEY in line and "undefined" in line for line in lines), "\n".join(lines)
    assert any("placeholder" in line and "ADMIN_EMAIL" in line for line in lines)


def test_table_helper_keeps_key_columns_and_folds_the_rest() -> None:
    from rich.console import Console

    from stackctl.cli.common import table

    rows = [("payments-webhook-consumer", "payments-webhook-consumer-1", "running", "healthy", "healthy",
             "0.0.0.0:8443->8443/tcp, 0.0.0.0:9090->9090/tcp, 0.0.0.0:9091->9091/tcp")]
    con = Console(width=80, no_color=True, record=True, file=io.StringIO())
    con.print(table(("service", "container", "state", "health", "docker", "ports"), rows,
                    key=("service", "state"), boxed=False))
    text = con.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    first = text.splitlines()[1]
    assert first.startswith("payments-webhook-consumer ") and " running " in first


# Commands that print no table: a stream (logs, dev), a message (down), the public key itself (keygen),
# and render, whose -o is the manifest format (yaml|json).
NO_DATA_OUTPUT = {"down", "logs", "secrets keygen", "dev"}


def test_every_command_that_prints_data_has_output_json() -> None:
    import typer

    from stackctl.cli.app import app

    missing = []

    def walk(command: Any, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs is not None:
            for name, sub in subs.items():
                walk(sub, [*path, name])
            return
        name = " ".join(path)
        output = next((p for p in command.params if "--output" in getattr(p, "opts", ())), None)
        if name in NO_DATA_OUTPUT:
            return
        if output is None or "-o" not in output.opts:
            missing.append(name)

    walk(typer.main.get_command(app), [])
    assert missing == []


def test_secrets_actions_as_json(proj: Any, cli: Callable[..., Any]) -> None:
    res = cli("secrets", "init", "-o", "json")
    assert res.exit_code == 0, res
    data = json.loads(res.stdout)
    assert isinstance(data, list)
    res = cli("secrets", "set", "DB_PASSWORD", "-o", "json", input="s3cret-value\n")
    assert res.exit_code == 0, res
    rows = json.loads(res.stdout)
    assert [(r["name"], r["action"]) for r in rows] == [("DB_PASSWORD", "set")]
    assert "s3cret-value" not in res.stdout + res.stderr
