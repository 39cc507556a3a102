"""The repository as CI clones it: nothing a test needs is git-ignored, no real key is committed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not (REPO / ".git").exists() or not shutil.which("git"), reason="not a git checkout")


def _git(*args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def test_no_fixture_is_hidden_by_gitignore() -> None:
    """A file the tests read but .gitignore hides passes locally and fails on a fresh clone."""
    ignored = _git("ls-files", "--others", "--ignored", "--exclude-standard", "--", "tests", "examples", "profiles")
    ignored = [p for p in ignored if "__pycache__" not in p and "/.hypothesis/" not in p and not p.endswith(".pyc")]
    assert ignored == []


def test_no_real_private_key_is_committed() -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    for rel in _git("grep", "-l", "-I", "-e", "-----BEGIN [A-Z ]*PRIVATE KEY-----", "--", "."):
        if rel.endswith((".py", ".md")):
            continue  # code and docs that mention the header
        data = (REPO / rel).read_bytes()
        with pytest.raises(ValueError):
            load_pem_private_key(data, password=None)


def test_no_plaintext_env_file_is_committed() -> None:
    tracked = _git("ls-files")
    leaked = [p for p in tracked if Path(p).name == ".env" or (Path(p).name.startswith(".env.")
                                                                and Path(p).name != ".env.example")]
    assert leaked == []


def test_test_modules_have_unique_names() -> None:
    """The tier folders are not packages (rootdir import mode): two `test_x.py` in different tiers
    collide when pytest collects the whole suite, and `make test` stops at collection."""
    seen: dict[str, Path] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        assert path.name not in seen, f"{path.relative_to(REPO)} has the name of {seen[path.name].relative_to(REPO)}"
        seen[path.name] = path
