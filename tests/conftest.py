"""Shared fixtures.

Tests marked `docker` need a real Docker engine with Compose v2 (the `config` ones only need the
Compose CLI). Locally they skip when the tool is missing; in CI (`STACKCTL_REQUIRE_DOCKER=1`, set by
scripts/test.sh) a missing tool is a failure, never a skip.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str, rel: str) -> Any:
    """A file of tests/ as module `name` (the test folders are not packages): tests/k8s/rig.py (a script
    too: scripts/k8s-cluster.sh runs it) as stackctl_k8s_rig, tests/k8s/helpers.py (what the cluster tiers
    share) as stackctl_k8s_helpers, tests/corpus/spec.py (the corpus's expectations, read by the corpus
    tier and the node tier) as stackctl_corpus_spec."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / rel)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


rig = _load("stackctl_k8s_rig", "k8s/rig.py")
helpers = _load("stackctl_k8s_helpers", "k8s/helpers.py")
_load("stackctl_corpus_spec", "corpus/spec.py")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Any]:
    """The session's control plane (rig.ControlPlane: etcd, kube-apiserver, controller-manager,
    scheduler, KWOK nodes), shared by the k8s tier and the golden API-server test; kubeconfig with
    contexts stackctl-test (current), production and staging, all pointing at it."""
    plane = rig.ControlPlane.start(bin_dir=helpers.control_plane_binaries())
    atexit.register(plane.stop)  # also on an interrupted session; stop() is idempotent
    try:
        yield plane
    finally:
        plane.stop()


def _compose_cli_available() -> bool:
    if not shutil.which("docker"):
        return False
    proc = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return proc.returncode == 0


def _engine_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    docker_items = [i for i in items if i.get_closest_marker("docker")]
    if not docker_items:
        return
    required = os.environ.get("STACKCTL_REQUIRE_DOCKER") == "1"
    compose_ok = _compose_cli_available()
    engine_ok = _engine_available() if compose_ok else False
    for item in docker_items:
        needs_engine = item.get_closest_marker("engine") is not None
        ok = engine_ok if needs_engine else compose_ok
        if ok:
            continue
        what = "a Docker engine" if needs_engine else "the Docker Compose v2 CLI"
        if required:
            item.add_marker(pytest.mark.usefixtures("_fail_missing_tool"))
        else:
            item.add_marker(pytest.mark.skip(reason=f"needs {what} (set STACKCTL_REQUIRE_DOCKER=1 to fail)"))


@pytest.fixture
def _fail_missing_tool() -> None:
    pytest.fail("the Docker tier is required (STACKCTL_REQUIRE_DOCKER=1) but Docker/Compose v2 is missing")


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp HOME/XDG config so no test touches the user's real keys or config."""
    real_docker_config = Path(os.path.expanduser("~")) / ".docker"
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("STACKCTL_PROFILE", raising=False)
    monkeypatch.delenv("STACKCTL_PROJECT_DIR", raising=False)
    # Compose must see docker's CLI plugins from the real home, not the temp one.
    if "DOCKER_CONFIG" not in os.environ and real_docker_config.is_dir():
        monkeypatch.setenv("DOCKER_CONFIG", str(real_docker_config))
    return home


class Project:
    """A throwaway stackctl project on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def profile(self, name: str, text: str) -> Path:
        return self.write(f"profiles/{name}.yaml", text)


@pytest.fixture
def project(tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "profiles").mkdir()
    monkeypatch.chdir(root)
    yield Project(root)


@pytest.fixture
def cli(isolated_env: Path) -> Callable[..., CliResult]:
    """Run the real CLI in-process through `main()` (its error boundary included):
    `cli("config", "-o", "json")` → CliResult(exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    import stackctl.cli.common as common
    from stackctl.cli import main

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        common.console.cache_clear()
        common.err_console.cache_clear()
        runner = CliRunner()
        code: int = 0
        with runner.isolation(input=input, env=env) as streams:
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            out = streams[0].getvalue().decode()
            err = streams[1].getvalue().decode()
        common.console.cache_clear()
        common.err_console.cache_clear()
        common.set_project_dir(None)
        return CliResult(code, out, err)

    return invoke


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"CliResult(exit={self.exit_code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the expected output of tests/golden/ from the current code (review the diff)")
