"""The one place that runs the docker CLI (the Compose v2 plugin included).

Everything else calls `run()` / `compose()` (or `stream()` / `spawn()` for output shown as it comes:
`logs -f`, build output); tests can patch one name. Failures carry the command, exit code and stderr
(`DockerCommandError`), and a missing tool becomes a one-line fix-it `ToolMissingError` (exit 2).

Every child starts in a process group of its own and is registered while it runs, so a timeout, a
Ctrl-C or `kill_children()` (Ctrl-C during `stackctl up`, when probes run in worker threads) ends the
whole group: `docker compose` is the docker CLI running the Compose plugin as *its* child, and killing
the CLI alone left the plugin running. No docker process outlives us. (Being in its own group, a child
does not get the terminal's SIGINT itself; we kill its group when ours arrives.)

`compose(..., memory_limit=N)` caps a child's address space (RLIMIT_AS, inherited by the plugin) where
the platform has it: `docker compose config` of a 1.7 KB YAML alias bomb otherwise grows to 10 GB.

`compose()` runs the Compose v2 plugin binary itself when it is where the docker CLI would find it
and the docker CLI has nothing to add (no context chosen, no `STACKCTL_DOCKER`): `docker compose X`
is the docker CLI starting (~45 ms) only to exec `docker-compose compose X`, and Compose runs
standalone just the same. That is one Go process less on every `config` and on `up`'s create.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from stackctl.errors import OperationError, ToolMissingError

if TYPE_CHECKING:
    import subprocess
# subprocess, shutil and signal are imported where a process is started: a render whose
# `docker compose config` is cached (compose/cache.py) starts none and need not import them.

SETUP_HINT = "run `make setup`, or see `stackctl doctor`"


class DockerCommandError(OperationError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        super().__init__(f"`{' '.join(argv[:3])} ...` failed (exit {returncode}): {last}")


class CommandTimeout(OperationError):
    """A docker command did not finish within its timeout (it was killed)."""

    def __init__(self, args: Sequence[str], timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"`docker {' '.join(args[:2])}` did not finish within {timeout:.0f} s")


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def docker_binary() -> str:
    import shutil

    explicit = os.environ.get("STACKCTL_DOCKER")
    found = explicit or shutil.which("docker")
    if not found:
        raise ToolMissingError("the docker CLI is not installed", hint=SETUP_HINT)
    return found


# Where the docker CLI looks for CLI plugins after the config's `cliPluginsExtraDirs` and
# `$DOCKER_CONFIG/cli-plugins` (docker/cli's defaultSystemPluginDirs on Linux).
_SYSTEM_PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                       "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


@functools.cache
def compose_plugin() -> str | None:
    """The `docker-compose` plugin binary `docker compose` would run, when running it directly is the
    same thing: no `STACKCTL_DOCKER`, no docker context chosen (`DOCKER_CONTEXT`, the config's
    `currentContext`), a readable config. None otherwise: `compose()` goes through the docker CLI."""
    import json

    if os.environ.get("STACKCTL_DOCKER") or os.environ.get("DOCKER_CONTEXT"):
        return None
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        config = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("currentContext") not in (None, "", "default"):
        return None
    extra = config.get("cliPluginsExtraDirs") or []
    dirs = [*(d for d in extra if isinstance(d, str)), str(config_dir / "cli-plugins"), *_SYSTEM_PLUGIN_DIRS]
    for directory in dirs:
        candidate = os.path.join(directory, "docker-compose")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


_children: set[subprocess.Popen[Any]] = set()
_children_lock = _thread.allocate_lock()  # threading.Lock, without importing threading


COMPOSE_CONFIG_MEMORY = 2 * 1024**3
"""Address space (bytes) `docker compose config` may use: Compose needs ~1 GiB of it for any real file."""


def _limit_memory(limit: int) -> Any:
    """A preexec function capping the child's address space, or None where RLIMIT_AS does not exist."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    if not hasattr(resource, "RLIMIT_AS"):
        return None

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return preexec


def _start(argv: list[str], memory_limit: int | None = None, **kwargs: Any) -> subprocess.Popen[Any]:
    import subprocess

    preexec = _limit_memory(memory_limit) if memory_limit is not None else None
    try:
        # its own process group (a new session: setsid), so _kill() can end the plugin it starts too
        proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=preexec, **kwargs)
    except FileNotFoundError:
        raise ToolMissingError(f"cannot run {argv[0]}", hint=SETUP_HINT) from None
    with _children_lock:
        _children.add(proc)
    return proc


def _forget(proc: subprocess.Popen[Any]) -> None:
    with _children_lock:
        _children.discard(proc)


def _kill(proc: subprocess.Popen[Any]) -> None:
    """Kill the child's whole process group (it leads it), then the child itself should that fail."""
    import signal

    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()


def kill_children() -> int:
    """Kill every docker process started here that is still running, with the processes it started;
    return how many there were."""
    import subprocess

    with _children_lock:
        procs = list(_children)
    for proc in procs:
        _kill(proc)
    for proc in procs:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    return len(procs)


def run(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        check: bool = True, timeout: float | None = None, input: str | None = None,
        memory_limit: int | None = None) -> Result:
    """Run `docker ARGS...` and capture its output (the child's process group is killed on timeout or
    interrupt)."""
    result = _run_argv([docker_binary(), *args], cwd=cwd, env=env, timeout=timeout, input=input,
                       memory_limit=memory_limit)
    if check and result.returncode != 0:
        raise DockerCommandError(["docker", *args], result.returncode, result.stderr)
    return result


def _run_argv(argv: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
              timeout: float | None = None, input: str | None = None, memory_limit: int | None = None) -> Result:
    import subprocess

    args = argv[1:]
    proc = _start(argv, memory_limit, cwd=cwd, env=dict(env) if env is not None else None, text=True,
                  stdin=subprocess.PIPE if input is not None else None,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)  # the group: a grandchild holding our pipes would keep communicate() waiting
        proc.communicate()
        raise CommandTimeout(args, timeout or 0) from None
    except BaseException:  # KeyboardInterrupt in the main thread: never leave the child behind
        _kill(proc)
        proc.wait()
        raise
    finally:
        _forget(proc)
    return Result(argv=argv, returncode=proc.returncode, stdout=stdout, stderr=stderr)


def feed(args: Sequence[str], data: bytes, *, timeout: float | None = None) -> tuple[int, str]:
    """Run `docker ARGS...` with `data` on its stdin (`docker cp - CONTAINER:/` takes a tar archive):
    (exit code, stderr). Raises `CommandTimeout`."""
    import subprocess

    proc = _start([docker_binary(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        raise CommandTimeout(list(args), timeout or 0) from None
    except BaseException:
        _kill(proc)
        proc.wait()
        raise
    finally:
        _forget(proc)
    return proc.returncode, err.decode("utf-8", "replace")


@contextlib.contextmanager
def spawn(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
          stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None
          ) -> Iterator[subprocess.Popen[bytes]]:
    """Start `docker ARGS...` for a stream that outlives one call (`logs -f`, build output); its output
    goes where `stdout`/`stderr` say (default: ours). The caller reads and waits inside the block;
    leaving the block early kills it."""
    proc = _start([docker_binary(), *args], cwd=cwd, env=dict(env) if env is not None else None,
                  stdout=stdout, stderr=stderr)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            _kill(proc)
        proc.wait()
        _forget(proc)


def stream(args: Sequence[str], *, to: IO[str], cwd: Path | None = None) -> int:
    """Run `docker ARGS...`, copying its output (stdout and stderr) line by line to the text stream
    `to` as it comes (any stream: a terminal, a test's capture). Returns the exit code."""
    import subprocess

    with spawn(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            to.write(raw.decode("utf-8", "replace"))
            to.flush()
        return proc.wait()


@functools.cache
def compose_version() -> str:
    """The Compose v2 version string, or ToolMissingError with the fix."""
    res = run(["compose", "version", "--short"], check=False, timeout=30)
    version = res.stdout.strip()
    if res.returncode != 0 or not version:
        raise ToolMissingError("Docker Compose v2 is not installed (`docker compose version` failed)",
                               hint="install the Compose v2 CLI plugin: `make setup`")
    if not version.lstrip("v").startswith("2") and not version.lstrip("v")[:1].isdigit():
        raise ToolMissingError(f"unexpected Compose version {version!r}; stackctl needs Compose v2")
    if version.lstrip("v").split(".")[0] in ("0", "1"):
        raise ToolMissingError(f"Compose {version} is v1; stackctl needs Compose v2", hint=SETUP_HINT)
    return version


_compose_answered = False


def ensure_compose() -> None:
    """Compose v2 is there: free once a `docker compose` command succeeded in this process, else
    one `docker compose version` (ToolMissingError with the fix)."""
    if not _compose_answered:
        compose_version()


def compose(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            check: bool = True, timeout: float | None = None, memory_limit: int | None = None) -> Result:
    """Run `docker compose ARGS...` (`memory_limit`: bytes of address space, where the platform can cap it).

    Whether Compose v2 is installed is asked only when the command fails (then a missing plugin is
    a one-line fix-it `ToolMissingError`), which saves a `docker compose version` process (~60 ms)
    on every successful command.
    """
    global _compose_answered
    plugin = compose_plugin()
    if plugin is not None:
        res = _run_argv([plugin, *args], cwd=cwd, env=env, timeout=timeout, memory_limit=memory_limit)
    else:
        res = run(["compose", *args], cwd=cwd, env=env, check=False, timeout=timeout, memory_limit=memory_limit)
    if res.returncode != 0:
        compose_version()  # raises ToolMissingError when the plugin is missing or is v1
        if check:
            raise DockerCommandError(["docker", "compose", *args], res.returncode, res.stderr)
        return res
    _compose_answered = True
    return res


def engine_info(timeout: float = 15) -> dict[str, str]:
    """Server version facts, or ToolMissingError when no engine answers."""
    res = run(["info", "--format", "{{.ServerVersion}}|{{.OperatingSystem}}|{{.Driver}}"], check=False,
              timeout=timeout)
    if res.returncode != 0 or not res.stdout.strip() or res.stdout.startswith("|"):
        detail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "no answer"
        raise ToolMissingError(f"no Docker engine answers ({detail})",
                               hint="start one: `make setup` (Debian: apt-get install docker.io && dockerd &)")
    version, os_name, driver = [*res.stdout.strip().split("|"), "", "", ""][:3]
    return {"server_version": version, "operating_system": os_name, "storage_driver": driver}
