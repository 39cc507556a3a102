"""The one Docker Engine API client: HTTP over the local unix socket, standard library only.

The local backend starts, lists and inspects single containers, runs their healthchecks (execs) and
follows their events and output through this client rather than by spawning the docker CLI: the
CLI is a Go binary that costs 20-150 ms per call on a busy 2-core machine, and a start-up makes
dozens of calls; a call here costs a few ms. Probes matter most: most of an exec's cost is runc's,
but the CLI process adds 30-55 ms and its CPU to every probe, on the critical path and on the cores
the probed service is starting on. A probe in flight is a socket that Ctrl-C shuts (`abort_execs`),
as a CLI probe is a child that it kills (`stackctl.compose.cli.kill_children`).

The socket is the one the CLI would use (`DOCKER_HOST`, `DOCKER_CONTEXT`, the config's current
context: `engine_socket`); when that is not a local unix socket, or `STACKCTL_DOCKER` names another
docker binary, or the socket does not answer (`EngineUnavailable`), the caller goes through the CLI
(`stackctl.compose.cli`) instead.

Why a hand-written client and not a library: import cost, for no gain per call. Measured with
`bench/run.py docker_clients` (2 cores, load average 5-6, 2026-12-07; medians, two runs' range):

    import, in a fresh interpreter      CPU ms          wall ms
    this module (+ stackctl, stdlib)    55-69           62-71
    docker SDK 7.2, on top of it        +120-190        +200-270    (requests, urllib3)
    python-on-whales 0.81, on top       +380-430        +410-520    (pydantic)
    testcontainers 4.15, on top         +260-310        +250-390    (the docker SDK and more)

    one call, ms                        this module     docker SDK  python-on-whales  docker CLI
    list the project's containers       1.3-1.4         3.1-3.2     -                 25-37
    inspect a container                 1.5-1.7         2.9-3.0     27-30             29-30
    a probe (`exec true`)               85-91           94-106      117-132           118-145
    client set-up                       0               15-22       0                 0

The SDK talks to the same socket and is as quick per call, but importing it and asking the engine
its API version cost `up` and `status` 0.2-0.3 s on every run, to save nothing over this client;
python-on-whales runs the docker CLI underneath, so it is never quicker than `stackctl.compose.cli`
(`docker compose down`: 276-376 ms through the CLI runner, 321-441 ms through it, import not counted)
and costs the most to import. Neither is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


class EngineUnavailable(Exception):
    """The Engine API cannot be used here (not a local unix socket, or it does not answer): use the CLI."""


class EngineError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")


def engine_socket(environ: Mapping[str, str] | None = None) -> str | None:
    """The unix socket the docker CLI would talk to, or None when that is not a local unix socket (or
    when `STACKCTL_DOCKER` names a docker binary of its own: then the CLI is the way to the engine).
    As the CLI resolves it: `DOCKER_HOST`, else `DOCKER_CONTEXT`, else the config's `currentContext`,
    else the default socket."""
    env = os.environ if environ is None else environ
    if env.get("STACKCTL_DOCKER"):
        return None
    host = env.get("DOCKER_HOST")
    if not host:
        config_dir = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME") or "~").expanduser() / ".docker")
        name = env.get("DOCKER_CONTEXT")
        if not name:
            try:
                name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
            except (OSError, ValueError, AttributeError):
                name = None
        if name and name != "default":
            meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
            try:
                host = json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
            except (OSError, ValueError, KeyError, TypeError):
                return None  # a context the CLI knows how to reach, and we do not: leave it to the CLI
    if not host:
        return "/var/run/docker.sock"
    return host[len("unix://"):] if host.startswith("unix://") and len(host) > len("unix://") else None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path
        # http.client forgets `sock` once a response that ends with the connection (an exec's raw
        # stream) takes it over; this keeps it reachable (timeouts, shutting it from another thread).
        self.unix_sock: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = self.unix_sock = sock


class Stream:
    """A streamed Engine API response (events, container output) being read in another thread;
    `close()` ends it from any thread."""

    def __init__(self, conn: _UnixConnection, response: http.client.HTTPResponse) -> None:
        self._conn = conn
        self.response = response
        self.closed = False

    def lines(self) -> Iterator[bytes]:
        while not self.closed:
            try:
                line = self.response.readline()
            except Exception:  # closed (from another thread), connection lost
                return
            if not line:
                return
            yield line

    def chunks(self) -> Iterator[bytes]:
        while not self.closed:
            try:
                data = self.response.read1(65536)
            except Exception:  # closed (from another thread), connection lost
                return
            if not data:
                return
            yield data

    def close(self) -> None:
        self.closed = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._conn.close()


class Engine:
    """The Docker Engine API over a local unix socket, with the standard library only. Unversioned
    paths: the engine answers with its own API version (the fields read here are the same since API
    1.25). One connection per call, so any thread may call it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _open(self, method: str, path: str, query: Mapping[str, Any] | None, body: Any,
              timeout: float | None) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        conn = _UnixConnection(self.path, timeout)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            conn.request(method, url, body=None if body is None else json.dumps(body), headers=headers)
            return conn, conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError, TimeoutError,
                http.client.HTTPException) as exc:
            # no socket, no permission, a socket that never answers or answers something other than
            # HTTP: not an engine we can use; the caller falls back to the docker CLI
            conn.close()
            raise EngineUnavailable(f"{self.path}: {type(exc).__name__}: {exc}") from None
        except BaseException:
            conn.close()
            raise

    def call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None,
             timeout: float = 30) -> tuple[int, Any]:
        """One request; returns (status, decoded JSON body or None). Raises `EngineError` on 4xx/5xx."""
        conn, res = self._open(method, path, query, body, timeout)
        try:
            raw = res.read()
        finally:
            conn.close()
        data: Any = None
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = raw.decode("utf-8", "replace")
        if res.status >= 400:
            message = data.get("message") if isinstance(data, dict) else str(data or res.reason)
            raise EngineError(res.status, str(message).strip())
        return res.status, data

    def exec_run(self, container_id: str, argv: Sequence[str], *, timeout: float,
                 env: Mapping[str, str] | None = None, user: str | None = None, working_dir: str | None = None,
                 privileged: bool = False) -> tuple[int | None, str]:
        """Run `argv` in a running container and wait for it (`docker exec` without the CLI's own
        process start): (exit code, stdout and stderr as one text). `env`: extra variables of that
        process only (a secret goes there, never into argv, which `ps` shows; the exec's inspect
        does not show its env). Raises `EngineError` (no such or not running container),
        `TimeoutError` when it takes longer than `timeout`, `ConnectionAbortedError` when
        `abort_execs()` ended it."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {"AttachStdout": True, "AttachStderr": True, "Cmd": list(argv)}
        if env:
            body["Env"] = [f"{k}={v}" for k, v in env.items()]
        if user:
            body["User"] = user
        if working_dir:
            body["WorkingDir"] = working_dir
        if privileged:
            body["Privileged"] = True
        _, created = self.call("POST", f"/containers/{container_id}/exec", timeout=timeout, body=body)
        exec_id = created["Id"]
        conn, res = self._open("POST", f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": False},
                               max(deadline - time.monotonic(), 0.05))
        with _INFLIGHT_LOCK:
            _INFLIGHT.add(conn)
        try:
            if res.status >= 400:
                raise EngineError(res.status, res.read().decode("utf-8", "replace").strip() or str(res.reason))
            chunks = []
            while True:  # the raw stream ends when the process does
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"exec did not finish in {timeout:g} s")
                if conn.unix_sock is not None:
                    conn.unix_sock.settimeout(remaining)
                data = res.read1(65536)
                if not data:
                    break
                chunks.append(data)
        finally:
            with _INFLIGHT_LOCK:
                aborted = conn not in _INFLIGHT
                _INFLIGHT.discard(conn)
            conn.close()
        if aborted:
            raise ConnectionAbortedError("the probe was stopped")
        for _ in range(20):  # the exit code is recorded as the stream ends; rarely a moment later
            _, info = self.call("GET", f"/exec/{exec_id}/json", timeout=max(deadline - time.monotonic(), 1.0))
            if not info.get("Running"):
                code = info.get("ExitCode")
                return (int(code) if code is not None else None), _demux(b"".join(chunks))
            time.sleep(0.005)
        return None, _demux(b"".join(chunks))

    def put_archive(self, container_id: str, path: str, data: bytes, *, timeout: float = 60) -> None:
        """Extract a tar archive into a container at `path` (`docker cp -`; the dev loop's sync), the
        files owned by the container's user as Compose's watch does (`copyUIDGID`). Raises
        `EngineError` (no such container, a path that cannot be written)."""
        query = urllib.parse.urlencode({"path": path, "copyUIDGID": "true"})
        conn = _UnixConnection(self.path, timeout)
        try:
            try:
                conn.request("PUT", f"/containers/{container_id}/archive?{query}", body=data,
                             headers={"Content-Type": "application/x-tar"})
                res = conn.getresponse()
                raw = res.read()
            except (FileNotFoundError, ConnectionRefusedError, PermissionError, http.client.HTTPException) as exc:
                raise EngineUnavailable(f"{self.path}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if res.status >= 400:
            try:
                message = json.loads(raw).get("message") or res.reason
            except (ValueError, AttributeError):
                message = raw.decode("utf-8", "replace") or res.reason
            raise EngineError(res.status, str(message).strip())

    def stream(self, path: str, *, query: Mapping[str, Any] | None = None) -> Stream:
        """A streaming GET; returns once the engine has answered (an event subscription is then in place)."""
        conn, res = self._open("GET", path, query, None, 30)
        if res.status >= 400:
            try:
                res.read()
            finally:
                conn.close()
            raise EngineError(res.status, res.reason)
        if conn.sock is not None:
            conn.sock.settimeout(None)  # waits as long as it takes; `Stream.close` ends it
        return Stream(conn, res)


_INFLIGHT: set[_UnixConnection] = set()  # exec streams being read (`abort_execs` ends them)
_INFLIGHT_LOCK = threading.Lock()


def abort_execs() -> int:
    """End every exec stream being read in this process (Ctrl-C, the end of a start-up): their
    readers return at once. The commands inside the containers run on until they end, as after a
    killed `docker exec`. Returns how many were in flight."""
    with _INFLIGHT_LOCK:
        conns = list(_INFLIGHT)
        _INFLIGHT.clear()
    for conn in conns:
        sock = conn.unix_sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
    return len(conns)


def _demux(raw: bytes) -> str:
    """The text of a multiplexed stdout/stderr stream (8-byte frame headers: stream, 0, 0, 0, size)."""
    out, i = [], 0
    while i + 8 <= len(raw) and raw[i] in (0, 1, 2) and raw[i + 1:i + 4] == b"\0\0\0":
        size = int.from_bytes(raw[i + 4:i + 8], "big")
        out.append(raw[i + 8:i + 8 + size])
        i += 8 + size
    if i < len(raw):  # not framed (a TTY exec): the rest as it is
        out.append(raw[i:])
    return b"".join(out).decode("utf-8", "replace")
