"""Published ports already in use, found before `up` starts anything.

Docker finds a taken host port only when it starts the container that needs it ("port is already
allocated", "address already in use"), halfway through a start-up, with services already started
and no word of which setting to change. Here every host port the plan's services publish is checked
first: against the ports other containers on the engine publish (named through the Engine API; the
project's own running containers hold theirs legitimately, a second `up` keeps them), then by
binding it on this host (a process that is not a container). The report names what holds the port
and the variable that sets it (`WEB_PORT` in `ports: ["${WEB_PORT:-8080}:80"]`), read from the
Compose files as written, since the resolved project no longer says where a number came from.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stackctl.errors import OperationError

if TYPE_CHECKING:
    from stackctl.compose.project import LocalProject, PublishedPort
    from stackctl.pipeline import LoadedStack
    from stackctl.up.plan import Plan

_ANY = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class Conflict:
    service: str
    port: int
    protocol: str
    holder: str  # "container shop-web-1 (Compose project shop)", "a process on this host (nginx, pid 812)"
    variables: tuple[str, ...]  # what sets the published port, as the Compose files reference it
    where: str | None  # file: field of that reference

    def describe(self) -> str:
        setting = f", set by {' / '.join(self.variables)} ({self.where})" if self.variables else ""
        return f"{self.service}: port {self.port}/{self.protocol}{setting} is in use by {self.holder}"


def check(loaded: LoadedStack, plan: Plan, project: LocalProject,
          can_bind: Callable[[str, int, str], bool | None] | None = None) -> None:
    """Raise `OperationError` naming every published port of the plan's services that something
    else holds. `can_bind(ip, port, protocol)`: True free, False taken, None unknown (defaults to
    binding it here; only when the engine is local, else the host is not where the port is)."""
    wanted = [(svc.name, p) for svc in loaded.stack.services if svc.name in plan.services for p in svc.ports
              if p.published]
    if not wanted:
        return
    held = project.published_ports()
    if can_bind is None and project.engine() is not None:
        can_bind = _bind
    conflicts: list[Conflict] = []
    for service, p in wanted:
        for port in _expand(p.published or ""):
            holder = _holder(held, project.name, port, p.protocol, p.host_ip or "", can_bind)
            if holder is None:
                continue
            variables, where = _variables(loaded, service, port)
            conflicts.append(Conflict(service, port, p.protocol, holder, variables, where))
    if not conflicts:
        return
    names = list(dict.fromkeys(v for c in conflicts for v in c.variables))
    fix = (f"stop what holds it, or set {' / '.join(names)} to a free port in the env file or the environment"
           if names
           else "stop what holds it, or publish another port (services.<name>.ports)")
    raise OperationError("published port already in use, nothing started: "
                         + "; ".join(c.describe() for c in conflicts), hint=fix)


def _expand(published: str) -> list[int]:
    first, _, last = published.partition("-")
    try:
        return list(range(int(first), int(last or first) + 1))
    except ValueError:
        return []


def _same_ip(a: str, b: str) -> bool:
    return a in _ANY or b in _ANY or a == b


def _holder(held: Sequence[PublishedPort], own: str, port: int, protocol: str, ip: str,
            can_bind: Callable[[str, int, str], bool | None] | None) -> str | None:
    """What holds `port`, or None when it is free or held by our own project's containers."""
    mine = [h for h in held if h.port == port and h.protocol == protocol and _same_ip(h.host_ip, ip)]
    if any(h.project == own for h in mine):
        return None  # our own running container: `up` keeps or recreates it, the port goes with it
    if mine:
        h = mine[0]
        return f"container {h.container}" + (f" (Compose project {h.project})" if h.project else "")
    if can_bind is None or can_bind(ip, port, protocol) is not False:
        return None
    process = _process_on(port, protocol)
    return f"a process on this host ({process})" if process else "a process on this host"


def _bind(ip: str, port: int, protocol: str) -> bool | None:
    """Bind the port as Docker would publish it: True free, False in use, None cannot tell (a
    privileged port, an address this host does not have, a protocol we do not bind)."""
    if protocol not in ("tcp", "udp"):
        return None
    host = ip.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    try:
        with socket.socket(family, kind) as sock:
            # a connection in TIME_WAIT does not hold the port for a new listener (Docker sets it too)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return False if exc.errno == errno.EADDRINUSE else None
    return True


def _process_on(port: int, protocol: str, proc: Path = Path("/proc")) -> str | None:
    """`name, pid N` of the process listening on `port`, from /proc/net and /proc/*/fd; None when
    they cannot be read (another user's process, not Linux)."""
    inodes: set[str] = set()
    listening = "0A" if protocol == "tcp" else "07"  # TCP_LISTEN; UDP sockets show as CLOSE (07)
    for table in (f"net/{protocol}", f"net/{protocol}6"):
        with contextlib.suppress(OSError):
            for line in (proc / table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    inodes.discard("0")
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for pid_dir in _pids(proc):
        with contextlib.suppress(OSError):
            for fd in os.scandir(pid_dir / "fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in targets:
                        name = (pid_dir / "comm").read_text().strip()
                        return f"{name}, pid {pid_dir.name}"
    return None


def _pids(proc: Path) -> Iterable[Path]:
    with contextlib.suppress(OSError):
        for entry in os.scandir(proc):
            if entry.name.isdigit():
                yield Path(entry.path)


def _variables(loaded: LoadedStack, service: str, port: int) -> tuple[tuple[str, ...], str | None]:
    """The variables that set `service`'s published `port`, and where they are referenced: the
    Compose files as written, each `ports` entry interpolated with the project's environment to
    find the one that publishes `port`."""
    from stackctl.compose import dotenv
    from stackctl.compose.interpolation import interpolate, references, scan_yaml_file
    from stackctl.compose.loader import invocation_for
    from stackctl.errors import StackctlError
    from stackctl.profile.types import display

    profile = loaded.profile
    invocation, _ = invocation_for(profile)
    try:
        env = dotenv.project_environment(os.environ, env_files=[f for f in invocation.env_files
                                                                if str(f) != os.devnull])
    except StackctlError:
        env = dict(os.environ)
    prefix = f"services.{service}.ports["
    for file in reversed(invocation.files):  # an override file wins
        try:
            refs = scan_yaml_file(file)
        except StackctlError:
            continue
        entries: dict[str, list[str]] = {}
        for ref in refs:
            if ref.field.startswith(prefix) and not ref.ref.nested:
                entry = ref.field[:ref.field.index("]", len(prefix)) + 1]
                if ref.field == entry or ref.field.endswith((".published", ".host_ip")):
                    entries.setdefault(entry, []).append(ref.field)
        for entry, fields in entries.items():
            pub = entry if entry in fields else next((f for f in fields if f.endswith(".published")), None)
            raw = _raw_value(file, pub) if pub is not None else None
            if pub is None or raw is None:
                continue
            published_raw = _host_part(raw) if pub == entry else raw
            try:
                published = interpolate(published_raw, env.get)
            except StackctlError:
                continue
            if port in _expand(published.rsplit(":", 1)[-1].strip("[]")):
                names = tuple(dict.fromkeys(r.name for r in references(published_raw) if not r.nested))
                if names:
                    return names, f"{display(file, profile.root)}: {pub}"
    return (), None


def _host_part(short: str) -> str:
    """`[ip:]published` of a short `ports` entry (`${IP}:${WEB_PORT:-8080}:80/tcp`): the text up to
    the last `:` outside `${...}`."""
    depth, cut = 0, -1
    for i, ch in enumerate(short):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ":" and depth == 0:
            cut = i
    return short[:cut] if cut >= 0 else ""


def _raw_value(file: Path, field: str) -> str | None:
    """The string at a dotted field path (`services.web.ports[0].published`) of a Compose file."""
    from stackctl.compose import yaml as composeyaml

    try:
        node: object = composeyaml.load(file.read_text(encoding="utf-8"))
    except Exception:  # read in full once already by the scan; anything odd: no variable named
        return None
    for part in field.replace("[", ".[").split("."):
        if part.startswith("["):
            if not isinstance(node, list):
                return None
            index = int(part[1:-1])
            node = node[index] if index < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node if isinstance(node, str) else None
