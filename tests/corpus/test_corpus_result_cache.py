"""The result cache of `render kubernetes` (stackctl/cli/resultcache.py) over the whole corpus: for
every project and profile, the replayed render is byte for byte the render (stdout, stderr, exit
code), and the replay really happened. The projects are the varied real-world shapes (extends,
includes, override files, bind-mounted files and directories, env files, init-written profiles);
tests/cli/test_result_cache.py edits each kind of input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import stackctl_corpus_spec as spec  # loaded by tests/conftest.py (the folders are not packages)

pytestmark = pytest.mark.docker

KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST")
PROJECTS = spec.projects()


def _profiles(project: Any, root: Path) -> list[str]:
    if project.profiles is not None:
        return [p.name for p in project.profiles]
    return sorted(p.stem for p in (root / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_replay_equals_render(project: Any, tmp_path: Path) -> None:
    root = spec.copy_project(project, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               NO_COLOR="1", COLUMNS="100", **project.environ)
    docker_config = Path(os.path.expanduser("~")) / ".docker"
    if docker_config.is_dir():
        env["DOCKER_CONFIG"] = os.environ.get("DOCKER_CONFIG", str(docker_config))
    results = tmp_path / "cache" / "stackctl" / "render-results"

    def run(*args: str, cache: bool = True) -> tuple[int, str, str]:
        proc = subprocess.run([sys.executable, "-m", "stackctl", *args], cwd=root, capture_output=True, text=True,
                              env={**env, "STACKCTL_RESULT_CACHE": "1" if cache else "0"}, timeout=300)
        return proc.returncode, proc.stdout, proc.stderr

    if project.init:
        assert run("init", *project.init.args, cache=False)[0] == 0
    for profile in _profiles(project, root):
        args = ("render", "kubernetes", "-p", profile, "--validate")
        fresh = run(*args, cache=False)
        assert "Traceback" not in fresh[2], fresh[2]
        # the first run may start `docker compose config` (its cache is keyed by the whole environment,
        # and the switch above is in it): not stored; the next one is
        for attempt in range(3):
            before = _entries(results)
            assert run(*args) == fresh, f"{project.name} -p {profile}: run {attempt + 1} differs from the render"
            if _entries(results) != before:
                break
        stored = _entries(results)
        assert run(*args) == fresh, f"{project.name} -p {profile}: the replay differs from the render"
        if fresh[0] == 0 and not stored:
            # Only one reason is acceptable: Compose itself had to run, because its own cache cannot
            # vouch for the inputs (COMPOSE_FILE in the environment or in the project's .env, ...)
            proc = subprocess.run([sys.executable, "-m", "stackctl", *args], cwd=root, capture_output=True, text=True,
                                  env={**env, "STACKCTL_RESULT_CACHE": "1", "STACKCTL_DEBUG": "1"}, timeout=300)
            assert "result cache: not stored: a child process ran" in proc.stderr, \
                f"{project.name} -p {profile}: never stored:\n{proc.stderr}"
        elif fresh[0] == 0:
            assert _entries(results) == stored, f"{project.name} -p {profile}: stored, then not replayed"


def _entries(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in folder.glob("*.bin")} if folder.is_dir() else {}
