"""Render the top-level help exactly as typer prints it (source of stackctl/data/help.txt).

`python -m stackctl.cli.helpgen` rewrites the file; tests/cli/test_help.py fails when it is stale.
"""

from __future__ import annotations

from pathlib import Path

HELP_FILE = Path(__file__).resolve().parents[1] / "data" / "help.txt"


def render(columns: int = 120) -> str:
    """What the real typer app prints for `stackctl --help` (fast path disabled), in a child process."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "STACKCTL_NO_FAST_HELP": "1", "COLUMNS": str(columns), "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-c", "from stackctl.cli import main; main(['--help'])"],
                          env=env, capture_output=True, text=True, check=True)
    return proc.stdout


if __name__ == "__main__":
    from stackctl.fsutil import atomic_write

    atomic_write(HELP_FILE, render())
    print(f"wrote {HELP_FILE}")
