"""`LocalProject`: the containers of one Compose project on the local engine (the `up` backend's
Docker side).

Project-level changes go through Docker Compose itself: `up --no-start` creates the networks,
volumes and containers exactly as `docker compose up` would, and recreates only the services whose
configuration changed (a rotated secret changes that service's environment, hence its config hash);
`down` removes them; `build` and `logs` are Compose's own, output shown. All of them run through
`stackctl.compose.cli`, the one docker CLI runner. Containers keep Compose's labels: `docker compose
ps/logs/down` work on them as usual.

Single containers are started, listed and inspected, probed (their healthcheck run in them), and
their events and output watched through the Engine API (`stackctl.compose.engine`: a few ms a call
where the CLI costs 20-150 ms, see there), and through the CLI when the engine's socket cannot be
used here.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackctl.compose import cli as docker_cli
from stackctl.compose.engine import Engine, EngineError, EngineUnavailable, engine_socket
from stackctl.errors import OperationError

if TYPE_CHECKING:
    from stackctl.compose.loader import ComposeInvocation

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
ONEOFF_LABEL = "com.docker.compose.oneoff"

# Docker's defaults for a healthcheck field left at 0 (moby daemon/health.go).
_DEFAULT_INTERVAL = 30.0
_DEFAULT_TIMEOUT = 30.0
_DEFAULT_RETRIES = 3


@dataclass(frozen=True)
class HealthcheckSpec:
    """A container's healthcheck exactly as Docker will run it (image defaults merged in)."""

    test: tuple[str, ...]
    argv: tuple[str, ...]
    interval: float
    timeout: float
    retries: int
    start_period: float

    @property
    def bound(self) -> float:
        """Seconds after start by which Docker would call a never-passing check unhealthy."""
        return self.start_period + self.retries * self.interval

    @property
    def shown(self) -> str:
        """The test as a user wrote it: `pg_isready -U shop` rather than `/bin/sh -c ...`."""
        return " ".join(self.test[1:]) if self.test[:1] in (("CMD",), ("CMD-SHELL",)) else " ".join(self.test)


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    service: str
    number: int
    status: str  # created | running | restarting | paused | exited | dead | removing
    exit_code: int
    health: str | None  # starting | healthy | unhealthy; None without a healthcheck
    health_output: str  # output of Docker's own last check
    restart_count: int
    healthcheck: HealthcheckSpec | None
    ports: tuple[str, ...]

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    exit_code: int | None  # None: the probe timed out
    output: str
    seconds: float
    engine_error: bool = False  # Docker refused the exec (container not running, ...)
    cannot_run: bool = False  # the command does not exist in the container: it can never pass

    def describe(self) -> str:
        if self.exit_code is None:
            return f"timed out after {self.seconds:.1f} s"
        return f"exit {self.exit_code}"


def _seconds(ns: Any, default: float) -> float:
    return float(ns) / 1e9 if ns else default


def healthcheck_from(config: Mapping[str, Any]) -> HealthcheckSpec | None:
    """The healthcheck in a container's `Config` (as `docker inspect` prints it), or None."""
    hc = config.get("Healthcheck") or {}
    test = tuple(hc.get("Test") or ())
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        argv = test[1:]
    elif test[0] == "CMD-SHELL":
        # As moby's daemon/health.go: the container's SHELL (Dockerfile SHELL), else /bin/sh -c.
        argv = (*(config.get("Shell") or ("/bin/sh", "-c")), *test[1:])
    else:  # Docker runs no probe for an unknown test type
        return None
    if not test[1:]:
        return None
    return HealthcheckSpec(test=test, argv=tuple(argv), interval=_seconds(hc.get("Interval"), _DEFAULT_INTERVAL),
                           timeout=_seconds(hc.get("Timeout"), _DEFAULT_TIMEOUT),
                           retries=int(hc.get("Retries") or _DEFAULT_RETRIES),
                           start_period=_seconds(hc.get("StartPeriod"), 0.0))


def container_from(data: Mapping[str, Any]) -> ContainerState:
    """One `docker inspect` entry → `ContainerState`."""
    config = data.get("Config") or {}
    labels = config.get("Labels") or {}
    state = data.get("State") or {}
    health = state.get("Health") or None
    log = (health or {}).get("Log") or []
    ports: list[str] = []
    for port, bindings in sorted(((data.get("NetworkSettings") or {}).get("Ports") or {}).items()):
        for b in bindings or ():
            ip = b.get("HostIp") or ""
            shown = f"{b.get('HostPort')}->{port}" if ip in ("", "0.0.0.0", "::") else \
                f"{ip}:{b.get('HostPort')}->{port}"
            if shown not in ports:  # IPv4 and IPv6 bindings of the same port
                ports.append(shown)
    return ContainerState(
        id=str(data.get("Id", "")), name=str(data.get("Name", "")).lstrip("/"),
        service=str(labels.get(SERVICE_LABEL, "")), number=int(labels.get(NUMBER_LABEL) or 1),
        status=str(state.get("Status", "unknown")), exit_code=int(state.get("ExitCode") or 0),
        health=health.get("Status") if health else None,
        health_output=str(log[-1].get("Output", "")).strip() if log else "",
        restart_count=int(data.get("RestartCount") or 0),
        healthcheck=healthcheck_from(config), ports=tuple(ports))


@dataclass(frozen=True)
class PublishedPort:
    """A host port a running container publishes."""

    port: int
    protocol: str  # tcp | udp | sctp
    host_ip: str  # "" / 0.0.0.0 / :: for every address
    container: str
    project: str  # its Compose project, "" for a container Compose did not create


_PORTS_TEXT = re.compile(r"(?:(?P<ip>\[[^\]]*\]|[^\s,\[]*?):)?(?P<first>\d+)(?:-(?P<last>\d+))?->[\d-]+/(?P<proto>\w+)")


class LocalProject:
    """One Compose project on the local engine, addressed by the profile's Compose invocation."""

    def __init__(self, invocation: ComposeInvocation, name: str, root: Path) -> None:
        self.invocation = invocation
        self.name = name
        self.root = root
        self._engine: Engine | None = None
        self._engine_checked = False

    def engine(self) -> Engine | None:
        """The Engine API client, or None: the CLI is the way to the engine (see the module doc)."""
        if not self._engine_checked:
            path = engine_socket()
            self._engine = Engine(path) if path else None
            self._engine_checked = True
        return self._engine

    def _api(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any] | None:
        """One Engine API call, or None when the API cannot be used (from now on: the CLI then)."""
        engine = self.engine()
        if engine is None:
            return None
        try:
            return engine.call(method, path, **kwargs)
        except EngineUnavailable:
            self._engine = None  # e.g. no permission on the socket: the CLI says what is wrong
            return None

    def _label_filters(self, *extra: str) -> str:
        return json.dumps({"label": [f"{PROJECT_LABEL}={self.name}", *extra]})

    # ---------------------------------------------------------------- Compose (project level)
    def _global_args(self) -> list[str]:
        args = self.invocation.global_args()
        return args if self.invocation.project_name else [*args, "-p", self.name]

    def create(self, services: Sequence[str], *, scales: Mapping[str, int] | None = None,
               local_images_only: bool = False) -> None:
        """`docker compose up --no-start SERVICE...`: networks, volumes, containers; changed ones recreated.
        `local_images_only`: neither build nor pull (a missing image fails the command instead)."""
        scale_args = [a for name, n in sorted((scales or {}).items()) for a in ("--scale", f"{name}={n}")]
        only_local = ["--no-build", "--pull", "never"] if local_images_only else []
        res = docker_cli.compose([*self._global_args(), "up", "--no-start", *only_local, *scale_args, *services],
                                 cwd=self.root, check=False)
        if res.returncode != 0:
            _engine_or(res.stderr)
            raise OperationError(f"docker compose up --no-start failed: {_last_line(res.stderr)}")

    def build(self, services: Sequence[str]) -> None:
        """`docker compose build SERVICE...`, its progress shown on stderr (stdout stays clean for -o json)."""
        docker_cli.ensure_compose()
        code = docker_cli.stream(["compose", *self._global_args(), "build", *services], cwd=self.root, to=sys.stderr)
        if code != 0:
            raise OperationError(f"docker compose build failed (exit {code}); its output is above")

    def rebuild(self, services: Sequence[str], *, scales: Mapping[str, int] | None = None) -> tuple[int, str]:
        """Build these services' images and recreate their containers from them, not started, what
        depends on them left alone: `docker compose up --no-start --build --force-recreate --no-deps`,
        one Compose process (a second one, build then create, costs ~0.3 s more). The output is kept
        rather than shown: (exit code, output). When the build fails Compose creates nothing, and
        when the create fails it keeps the old container: either way the running one stays."""
        scale_args = [a for name, n in sorted((scales or {}).items()) for a in ("--scale", f"{name}={n}")]
        res = docker_cli.compose([*self._global_args(), "--progress", "plain", "up", "--no-start", "--build",
                                  "--force-recreate", "--no-deps", *scale_args, *services], cwd=self.root, check=False)
        if res.returncode != 0:
            _engine_or(res.stderr)
        return res.returncode, (res.stdout + res.stderr).strip()

    def down(self, *, volumes: bool, by_name_only: bool = False) -> None:
        """`docker compose down --remove-orphans [--volumes]`. `by_name_only`: the Compose files no
        longer resolve; Compose finds the project by its labels (`-p NAME`), its output shown."""
        flags = ["--remove-orphans", *(["--volumes"] if volumes else [])]
        if by_name_only:
            docker_cli.compose_version()
            code = docker_cli.stream(["compose", "-p", self.name, "down", *flags], cwd=self.root, to=sys.stderr)
            if code != 0:
                raise OperationError(f"docker compose down failed (exit {code})")
            return
        res = docker_cli.compose([*self._global_args(), "down", *flags], cwd=self.root, check=False)
        if res.returncode != 0:
            _engine_or(res.stderr)
            raise OperationError(f"docker compose down failed: {_last_line(res.stderr)}")

    def logs(self, services: Sequence[str], *, follow: bool, tail: str | None) -> int:
        """`docker compose logs`, line by line to our stdout (Compose's own formatting)."""
        docker_cli.ensure_compose()
        args = ["compose", *self._global_args(), "logs", "--no-color", *(["--follow"] if follow else []),
                *(["--tail", tail] if tail else []), *services]
        return docker_cli.stream(args, cwd=self.root, to=sys.stdout)

    # ---------------------------------------------------------------- containers
    def container_ids(self) -> list[str]:
        try:
            answer = self._api("GET", "/containers/json",
                               query={"all": "1", "filters": self._label_filters(f"{ONEOFF_LABEL}=False")})
        except (EngineError, OSError) as exc:
            raise docker_cli.DockerCommandError(["docker", "ps"], 1, str(exc)) from None
        if answer is not None:
            return [str(c["Id"]) for c in answer[1] or []]
        res = docker_cli.run(["ps", "-a", "-q", "--no-trunc", "--filter", f"label={PROJECT_LABEL}={self.name}",
                              "--filter", f"label={ONEOFF_LABEL}=False"], timeout=30, check=False)
        if res.returncode != 0:
            _engine_or(res.stderr)
            raise docker_cli.DockerCommandError(["docker", "ps"], res.returncode, res.stderr)
        return res.stdout.split()

    def inspect(self, ids: Sequence[str]) -> list[ContainerState]:
        """Current state of these containers (an API call each, a few ms, or one `docker inspect`);
        vanished ones are left out."""
        if not ids:
            return []
        if self.engine() is not None:
            found = self._inspect_api(ids)
            if found is not None:
                return found
        res = docker_cli.run(["inspect", "--type", "container", *ids], check=False, timeout=30)
        # With some ids gone, docker prints the others and exits 1 ("No such container" on stderr).
        if res.returncode != 0 and "No such" not in res.stderr:
            raise docker_cli.DockerCommandError(["docker", "inspect"], res.returncode, res.stderr)
        return [container_from(d) for d in json.loads(res.stdout.strip() or "[]")]

    def _inspect_api(self, ids: Sequence[str]) -> list[ContainerState] | None:
        out = []
        for cid in ids:
            try:
                answer = self._api("GET", f"/containers/{cid}/json")
            except EngineError as exc:
                if exc.status == 404:  # removed meanwhile
                    continue
                raise docker_cli.DockerCommandError(["docker", "inspect"], 1, exc.message) from None
            except OSError as exc:
                raise docker_cli.DockerCommandError(["docker", "inspect"], 1, str(exc)) from None
            if answer is None:
                return None
            out.append(container_from(answer[1]))
        return out

    def published_ports(self) -> list[PublishedPort]:
        """Every host port published by a running container on the engine, any project: who holds
        what a new container would need (`up` checks its ports before it starts anything)."""
        try:
            answer = self._api("GET", "/containers/json")
        except (EngineError, OSError) as exc:
            raise docker_cli.DockerCommandError(["docker", "ps"], 1, str(exc)) from None
        if answer is not None:
            return [PublishedPort(int(p["PublicPort"]), str(p.get("Type") or "tcp"), str(p.get("IP") or ""),
                                  str((c.get("Names") or ["?"])[0]).lstrip("/"),
                                  str((c.get("Labels") or {}).get(PROJECT_LABEL) or ""))
                    for c in answer[1] or [] for p in c.get("Ports") or () if p.get("PublicPort")]
        res = docker_cli.run(["ps", "--format", f'{{{{.Names}}}}\t{{{{.Label "{PROJECT_LABEL}"}}}}\t{{{{.Ports}}}}'],
                             timeout=30, check=False)
        if res.returncode != 0:
            _engine_or(res.stderr)
            raise docker_cli.DockerCommandError(["docker", "ps"], res.returncode, res.stderr)
        out: list[PublishedPort] = []
        for line in res.stdout.splitlines():
            name, project, ports = ([*line.split("\t"), "", ""])[:3]
            for m in _PORTS_TEXT.finditer(ports):  # 0.0.0.0:8080-8081->80-81/tcp, [::]:8080->80/tcp
                first, last = int(m["first"]), int(m["last"] or m["first"])
                out.extend(PublishedPort(n, m["proto"], (m["ip"] or "").strip("[]"), name, project)
                           for n in range(first, last + 1))
        return out

    def containers(self) -> list[ContainerState]:
        """Every container of the project (one-off `run` containers excluded), by service and number."""
        return sorted(self.inspect(self.container_ids()), key=lambda c: (c.service, c.number))

    def start(self, container: ContainerState, *, timeout: float = 120) -> None:
        """`docker start`: no waiting on dependencies' Docker health (stackctl gates that itself)."""
        try:
            if self._api("POST", f"/containers/{container.id}/start", timeout=timeout) is not None:
                return  # 204 started, 304 already running
        except EngineError as exc:
            raise OperationError(f"cannot start {container.name}: {exc.message}") from None
        except OSError as exc:  # timed out, connection lost
            raise OperationError(f"cannot start {container.name}: {exc or type(exc).__name__}") from None
        res = docker_cli.run(["start", container.id], check=False, timeout=timeout)
        if res.returncode != 0:
            raise OperationError(f"cannot start {container.name}: {_last_line(res.stderr)}")

    def restart(self, container: ContainerState, *, stop_timeout: float | None, timeout: float = 180) -> None:
        args = ["restart", *(["-t", str(int(stop_timeout))] if stop_timeout is not None else []), container.id]
        res = docker_cli.run(args, check=False, timeout=timeout)
        if res.returncode != 0:
            raise OperationError(f"cannot restart {container.name}: {_last_line(res.stderr)}")

    def copy_archive(self, container: ContainerState, data: bytes, *, timeout: float = 120) -> None:
        """Extract a tar archive (names relative to `/`) into the container: the Engine API's archive
        upload, or `docker cp - CONTAINER:/` without it. Raises `OperationError`."""
        engine = self.engine()
        if engine is not None:
            try:
                engine.put_archive(container.id, "/", data, timeout=timeout)
                return
            except EngineUnavailable:
                self._engine = None
            except EngineError as exc:
                raise OperationError(f"cannot copy into {container.name}: {exc.message}") from None
            except OSError as exc:
                raise OperationError(f"cannot copy into {container.name}: {exc or type(exc).__name__}") from None
        try:
            code, err = docker_cli.feed(["cp", "-", f"{container.id}:/"], data, timeout=timeout)
        except docker_cli.CommandTimeout:
            raise OperationError(f"cannot copy into {container.name}: docker cp took over {timeout:g} s") from None
        if code != 0:
            raise OperationError(f"cannot copy into {container.name}: {_last_line(err)}")

    def exec_in(self, container: ContainerState, argv: Sequence[str], *, timeout: float = 300,
                user: str | None = None, working_dir: str | None = None, privileged: bool = False,
                env: Mapping[str, str] | None = None) -> tuple[int | None, str]:
        """Run a command in a running container and wait for it (`docker exec`): (exit code or None
        on timeout, stdout and stderr). Raises `OperationError` when Docker refuses the exec."""
        engine = self.engine()
        if engine is not None:
            try:
                return engine.exec_run(container.id, argv, timeout=timeout, env=env, user=user,
                                       working_dir=working_dir, privileged=privileged)
            except EngineUnavailable:
                self._engine = None
            except EngineError as exc:
                raise OperationError(f"cannot run {argv[0]} in {container.name}: {exc.message}") from None
            except TimeoutError:
                return None, ""
        args = ["exec", *(["-u", user] if user else []), *(["-w", working_dir] if working_dir else []),
                *(["--privileged"] if privileged else []),
                *[a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")], container.id, *argv]
        try:
            res = docker_cli.run(args, check=False, timeout=timeout)
        except docker_cli.CommandTimeout:
            return None, ""
        if res.returncode != 0 and res.stderr.startswith("Error response from daemon"):
            raise OperationError(f"cannot run {argv[0]} in {container.name}: {_last_line(res.stderr)}")
        return res.returncode, (res.stdout + res.stderr).strip()

    def probe(self, container: ContainerState, hc: HealthcheckSpec, *, timeout: float | None = None) -> ProbeResult:
        """Run the container's own healthcheck command once, in the container (`docker exec`)."""
        limit = hc.timeout if timeout is None else min(timeout, hc.timeout)
        began = time.monotonic()
        engine = self.engine()
        if engine is not None:
            try:
                code, output = engine.exec_run(container.id, hc.argv, timeout=max(limit, 0.5))
            except EngineUnavailable:
                self._engine = None  # the CLI from now on
            except EngineError as exc:
                return ProbeResult(False, None, f"Error response from daemon: {exc.message}", time.monotonic() - began,
                                   True, False)
            except OSError:  # timed out (or the connection dropped): a failed probe, as a CLI timeout is
                return ProbeResult(False, None, "", time.monotonic() - began)
            else:
                output = output.strip()
                cannot_run = code in (126, 127) and "OCI runtime exec failed" in output
                return ProbeResult(code == 0, code, output, time.monotonic() - began, False, cannot_run)
        try:
            res = docker_cli.run(["exec", container.id, *hc.argv], check=False, timeout=max(limit, 0.5))
        except docker_cli.CommandTimeout:
            return ProbeResult(False, None, "", time.monotonic() - began)
        took = time.monotonic() - began
        output = (res.stdout + res.stderr).strip()
        engine_error = res.returncode != 0 and res.stderr.startswith("Error response from daemon")
        # 126/127 with the runtime's own message: the executable is not in the image at all
        cannot_run = res.returncode in (126, 127) and "OCI runtime exec failed" in output
        return ProbeResult(res.returncode == 0, res.returncode, output, took, engine_error, cannot_run)

    def log_tail(self, container: ContainerState, lines: int = 20) -> list[str]:
        res = docker_cli.run(["logs", "--tail", str(lines), container.id], check=False, timeout=30)
        text = (res.stdout + res.stderr) if res.returncode == 0 else ""
        return [ln.rstrip() for ln in text.splitlines()][-lines:]

    def watch(self, on_event: Callable[[str, str], None]) -> Callable[[], None] | None:
        """Call `on_event(container_id, action)` from a thread of its own for every exit, removal,
        restart and health change of the project's containers (`docker events`), until the returned
        function is called. The subscription is in place when this returns. None without the Engine API."""
        return self._events(["die", "destroy", "restart", "oom", "health_status"],
                            lambda cid, action, _attrs: on_event(cid, action))

    def watch_changes(self, on_event: Callable[[str, str, str], None]) -> Callable[[], None] | None:
        """Call `on_event(service, action, container name)` for every container the project's
        containers go through while Compose creates or recreates them (kill, stop, die, destroy,
        create), until the returned function is called. None without the Engine API."""
        return self._events(["kill", "stop", "die", "destroy", "create"],
                            lambda _cid, action, attrs: on_event(attrs.get(SERVICE_LABEL, ""), action,
                                                                 attrs.get("name", "")))

    def _events(self, actions: Sequence[str],
                on_event: Callable[[str, str, Mapping[str, str]], None]) -> Callable[[], None] | None:
        """Subscribe to the engine's events about the project's containers (`docker events`)."""
        engine = self.engine()
        if engine is None:
            return None
        query = {"filters": json.dumps({"type": ["container"], "label": [f"{PROJECT_LABEL}={self.name}"],
                                        "event": list(actions)})}
        try:
            stream = engine.stream("/events", query=query)
        except (EngineUnavailable, EngineError, OSError):
            return None

        def read() -> None:
            for line in stream.lines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                actor = event.get("Actor") or {}
                cid = str(actor.get("ID") or event.get("id") or "")
                attrs = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
                on_event(cid, str(event.get("Action") or event.get("status") or ""), attrs)

        threading.Thread(target=read, name=f"stackctl-events-{self.name}", daemon=True).start()
        return stream.close

    def watch_output(self, container: ContainerState, on_output: Callable[[], None]) -> Callable[[], None] | None:
        """Call `on_output()` from a thread of its own whenever the container writes to its stdout or
        stderr from now on (what `docker logs -f --tail 0` would show; the text is not kept), until the
        returned function is called. None without the Engine API or when its log driver cannot be read."""
        engine = self.engine()
        if engine is None:
            return None
        try:
            stream = engine.stream(f"/containers/{container.id}/logs",
                                   query={"follow": "1", "stdout": "1", "stderr": "1", "tail": "0"})
        except (EngineUnavailable, EngineError, OSError):
            return None

        def read() -> None:
            for _chunk in stream.chunks():
                on_output()

        threading.Thread(target=read, name=f"stackctl-output-{container.name}", daemon=True).start()
        return stream.close

    def missing_images(self, images: Mapping[str, str]) -> list[str]:
        """Services (of `{service: image}`) whose image is not in the local image store."""
        if self.engine() is not None:
            missing = []
            try:
                for service, image in images.items():
                    try:
                        if self._api("GET", f"/images/{urllib.parse.quote(image, safe='/:@')}/json") is None:
                            break
                    except EngineError as exc:
                        if exc.status != 404:
                            raise
                        missing.append(service)
                else:
                    return missing
            except (EngineError, OSError) as exc:
                raise docker_cli.DockerCommandError(["docker", "image", "inspect"], 1, str(exc)) from None
        res = docker_cli.run(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], timeout=30)
        have = set(res.stdout.split())

        def ref(image: str) -> str:
            return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"

        return [service for service, image in images.items() if ref(image) not in have]


def _engine_or(stderr: str) -> None:
    """After a failed docker command: when the reason is that no engine answers, raise the same
    one-line fix-it error as `stackctl doctor` (exit 2). Checked only on failure, so a working
    engine costs no extra `docker info` on the way to the first container start."""
    if "Cannot connect to the Docker daemon" in stderr or "Is the docker daemon running" in stderr:
        docker_cli.engine_info()


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def engine_ready() -> None:
    """Docker engine and Compose v2 answer, or a one-line fix-it `ToolMissingError` (exit 2)."""
    docker_cli.engine_info()
    docker_cli.compose_version()


def compose_ready() -> None:
    """Compose v2 answers (free after a successful `docker compose` call), or `ToolMissingError`; the
    engine is checked on the first failure."""
    docker_cli.ensure_compose()
