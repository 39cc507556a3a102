"""Every docker child runs in a process group of its own, which a timeout or an interrupt ends whole
(`docker compose` is the docker CLI running the plugin as its child), and `docker compose config` runs
with its address space capped."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackctl.compose import cli


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"  # a zombie waiting for a reaper has ended


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `docker` that starts a grandchild (like the CLI starting the Compose plugin), then sleeps."""
    pids = tmp_path / "pids"
    script = tmp_path / "docker"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! >> {pids}\necho $$ >> {pids}\n"
                      f"ulimit -v > {tmp_path / 'ulimit'}\nsleep 300\n")
    script.chmod(0o755)
    monkeypatch.setenv("STACKCTL_DOCKER", str(script))
    cli.compose_plugin.cache_clear()
    yield pids
    cli.compose_plugin.cache_clear()


def _pids(path: Path) -> list[int]:
    for _ in range(100):
        if path.exists() and len(path.read_text().split()) == 2:
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError("the fake docker did not start")


def _all_gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_a_timeout_ends_the_whole_group(fake_docker: Path) -> None:
    started = time.monotonic()
    with pytest.raises(cli.CommandTimeout):
        cli.compose(["config"], timeout=1, check=False)
    assert time.monotonic() - started < 10  # not held up by the grandchild keeping our pipes open
    assert _all_gone(_pids(fake_docker))


def test_an_interrupt_ends_the_whole_group(fake_docker: Path) -> None:
    def interrupt() -> None:
        _pids(fake_docker)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        cli.run(["compose", "config"], timeout=60)
    assert _all_gone(_pids(fake_docker))


def test_kill_children_ends_the_groups(fake_docker: Path) -> None:
    done = threading.Event()

    def run() -> None:
        cli.run(["ps"], check=False, timeout=60)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    pids = _pids(fake_docker)
    assert cli.kill_children() == 1
    assert done.wait(10)
    assert _all_gone(pids)


def test_compose_config_memory_is_capped(fake_docker: Path, tmp_path: Path) -> None:
    with pytest.raises(cli.CommandTimeout):
        cli.compose(["config"], timeout=1, check=False, memory_limit=cli.COMPOSE_CONFIG_MEMORY)
    assert (tmp_path / "ulimit").read_text().strip() == str(cli.COMPOSE_CONFIG_MEMORY // 1024)
