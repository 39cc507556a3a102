"""`stackctl dev PROFILE`: the Compose `develop.watch` loop against a Kubernetes cluster.

The profile is promoted (the promote pipeline itself: render, build and push, apply, wait, diagnose,
record), then each rule that a changed file fires is carried out on the cluster:

- `sync`: the changed files go into every running pod of the service as a tar stream into
  `tar -x` through exec (what `kubectl cp` does); deleted files are removed with `rm -rf`.
- `sync+restart` / `restart`: sync, then the service's pods are restarted (deleted: the controller
  makes new ones); `sync+exec`: sync, then the rule's command runs in each pod.
- `rebuild`: a promote again. The image tag is a digest of the build context, so the changed
  service gets a new image, built and pushed to the profile's registry, and rolls out with the
  usual wait, fail fast and diagnosis; a failing build or rollout is reported and the loop goes on.

Files written into a container's writable layer die with the container. So every sync is kept in a
ledger per service (container path → host file, and the deleted paths), and the ledger is played
again into every container that starts while the loop runs (a restart, a crash, a new pod after a
rollout), as soon as it runs. A `rebuild` empties the service's ledger: the new image holds the
files. See docs/dev.md (On a cluster) for what that means for a process that reads its files only at start.

While the loop runs, each service's published ports are forwarded to localhost (a local port
that is taken is an error before anything is promoted) and the logs of its pods are printed with
the service's name in front, new pods included. Ctrl-C ends the watcher, the forwards and the log
streams (every thread joined); with `--down` the namespace is deleted too, and with it the
stack's history (stored there).
"""

from __future__ import annotations

import contextlib
import io
import selectors
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackctl.dev import rules as dev_rules
from stackctl.errors import InputError, OperationError
from stackctl.kubernetes.client import KINDS, Cluster, Ref
from stackctl.kubernetes.client.cluster import exec_in, follow_log, port_forward
from stackctl.kubernetes.labels import L_INSTANCE, L_NAME
from stackctl.kubernetes.names import dns_label, label_value

if TYPE_CHECKING:
    from stackctl.dev.rules import Change, WatchRule
    from stackctl.kubernetes.deploy.commands import Terminal
    from stackctl.model import Service, Stack
    from stackctl.profile import Profile

Say = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# Pure pieces: path mapping, tar streams, ports (unit-tested)
# ---------------------------------------------------------------------------------------------
def container_path(rule: WatchRule, host: Path) -> str:
    """Where a host file under `rule.path` goes in the container: `target` + its path below `path`
    (the target itself when the rule watches one file)."""
    target = rule.container_path(host)
    if target is None:
        raise ValueError(f"{rule.where}: a {rule.action} rule has no target")
    return target


def tar_stream(files: Sequence[tuple[Path, str]]) -> bytes:
    """A tar archive of host files at their container paths, relative to `/` (extracted with
    `tar -x -C /`), with the host files' modes; owner root, as `kubectl cp` writes them."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for host, target in sorted(files, key=lambda f: f[1]):
            info = tar.gettarinfo(str(host), arcname=target.lstrip("/"))
            info.uid = info.gid = 0
            info.mtime = int(info.mtime)
            info.uname = info.gname = ""
            if info.isfile():
                with host.open("rb") as fh:
                    tar.addfile(info, fh)
            elif info.isdir() or info.issym():
                tar.addfile(info)
    return buf.getvalue()


@dataclass
class Plan:
    """What one sync does: files to copy (host, container path) and container paths to delete."""

    copy: list[tuple[Path, str]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)


def sync_plan(rule: WatchRule, paths: Iterable[Path]) -> Plan:
    """The changed host paths of one rule as copies and deletions. A path that no longer exists is
    a deletion; a directory is walked (its files, each through the rule's ignore patterns again)."""
    plan = Plan()
    for path in sorted(set(paths)):
        if path.is_dir():
            inside = [p for p in sorted(path.rglob("*")) if p.is_file()]
            plan.copy += [(p, container_path(rule, p)) for p in inside if rule.matches(p)]
        elif path.exists():
            plan.copy.append((path, container_path(rule, path)))
        else:
            plan.delete.append(container_path(rule, path))
    return plan


def forwarded_ports(svc: Service) -> list[tuple[int, int]]:
    """(local port, container port) for each published TCP port of a service: the published
    port (the first of a range), or the container port when none is published."""
    out: list[tuple[int, int]] = []
    for port in svc.ports:
        if port.protocol != "tcp":
            continue
        published = (port.published or "").split("-")[0]
        local = int(published) if published.isdigit() else port.target
        if (local, port.target) not in out:
            out.append((local, port.target))
    return out


def prefixed(service: str, width: int, line: str) -> str:
    """A log line with its service in front, as `stackctl logs` prints locally."""
    return f"{service:<{width}} | {line}"


# ---------------------------------------------------------------------------------------------
# The ledger: what was synced, played again into every new container
# ---------------------------------------------------------------------------------------------
@dataclass
class Ledger:
    files: dict[str, Path] = field(default_factory=dict)  # container path → host file
    deleted: set[str] = field(default_factory=set)

    def record(self, plan: Plan) -> None:
        for host, target in plan.copy:
            self.files[target] = host
            self.deleted.discard(target)
        for target in plan.delete:
            self.files.pop(target, None)
            self.deleted.add(target)

    def replay(self) -> Plan:
        return Plan(copy=[(h, t) for t, h in sorted(self.files.items()) if h.is_file()],
                    delete=sorted(self.deleted))

    def clear(self) -> None:
        self.files.clear()
        self.deleted.clear()


# ---------------------------------------------------------------------------------------------
# The cluster side: pods, sync, restart, forwards, logs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    service: str
    selector: str
    container: str
    ports: tuple[tuple[int, int], ...]


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _running_container(pod: dict[str, Any], name: str) -> str | None:
    """The containerID of `name` when it runs (each restart is a new ID), else None."""
    if pod["metadata"].get("deletionTimestamp"):
        return None
    for st in (pod.get("status") or {}).get("containerStatuses") or []:
        if st.get("name") == name and "running" in (st.get("state") or {}):
            return str(st.get("containerID") or "")
    return None


class Pods:
    """The stack's pods, kept current by one watch; calls `on_container` for each container
    instance that starts running (a new pod, or a restart), once."""

    def __init__(self, cluster: Cluster, namespace: str, selector: str, stop: threading.Event,
                 on_container: Callable[[dict[str, Any], str], None]) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        self.stop = stop
        self.on_container = on_container
        self.pods: dict[str, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.seen: set[str] = set()
        self.thread = threading.Thread(target=self._run, name="dev-pods", daemon=True)

    def start(self, containers: Callable[[dict[str, Any]], list[str]]) -> None:
        self.containers = containers
        items, self.version = self.cluster.list(KINDS[("v1", "Pod")], self.namespace, selector=self.selector)
        with self.cond:
            for pod in items:
                self.pods[pod["metadata"]["name"]] = pod
                for name in containers(pod):  # already running: followed, not re-synced
                    cid = _running_container(pod, name)
                    if cid:
                        self.seen.add(cid)
        self.initial = list(items)
        self.thread.start()

    def _run(self) -> None:
        kind = KINDS[("v1", "Pod")]
        while not self.stop.is_set():
            try:
                for typ, pod in self.cluster.watch(kind, self.namespace, self.version, selector=self.selector,
                                                   stop=self.stop, timeout=50):
                    if typ == "ERROR":
                        self.version = ""
                        break
                    meta = pod.get("metadata") or {}
                    if typ == "BOOKMARK":
                        self.version = meta.get("resourceVersion", self.version)
                        continue
                    self.version = meta.get("resourceVersion", self.version)
                    with self.cond:
                        if typ == "DELETED":
                            self.pods.pop(meta["name"], None)
                        else:
                            self.pods[meta["name"]] = pod
                        self.cond.notify_all()
                    if typ != "DELETED":
                        self._started(pod)
            except Exception:  # a dropped watch: list again and go on
                if self.stop.wait(1):
                    return
                with contextlib.suppress(Exception):
                    _, self.version = self.cluster.list(kind, self.namespace, selector=self.selector, limit=1)

    def _started(self, pod: dict[str, Any]) -> None:
        for name in self.containers(pod):
            cid = _running_container(pod, name)
            if cid and cid not in self.seen:
                self.seen.add(cid)
                self.on_container(pod, name)

    def of(self, selector: str) -> list[dict[str, Any]]:
        """The service's pods (by its `key=value,...` selector), not terminating."""
        want = dict(part.split("=", 1) for part in selector.split(","))
        with self.cond:
            return [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")
                    and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or self.stop.is_set():
                    return False
                self.cond.wait(min(left, 0.5))
        return True


class Forward:
    """localhost:`local` → the service's container port, one WebSocket port-forward per connection
    to a ready pod (picked per connection, so new pods after a rollout serve at once)."""

    def __init__(self, dev: DevLoop, target: Target, local: int, remote: int, listener: socket.socket) -> None:
        self.dev, self.target, self.local, self.remote, self.listener = dev, target, local, remote, listener
        self.threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._accept, name=f"forward-{local}", daemon=True)

    def _accept(self) -> None:
        self.listener.settimeout(0.5)
        while not self.dev.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), name=f"forward-{self.local}-conn", daemon=True)
            self.threads = [x for x in self.threads if x.is_alive()] + [t]
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        upstream = None
        try:
            pods = self.dev.pods
            pods.wait(lambda: any(_ready(p) for p in pods.of(self.target.selector)), 30)
            ready = [p for p in pods.of(self.target.selector) if _ready(p)]
            if not ready:
                self.dev.say(f"forward localhost:{self.local} → {self.target.service}: no ready pod")
                return
            upstream = port_forward(self.dev.cluster, self.dev.namespace, ready[0]["metadata"]["name"], self.remote)
            _pump(conn, upstream, self.dev.stop)
        except Exception as exc:  # one connection's trouble is the user's to see, not the loop's end
            self.dev.say(f"forward localhost:{self.local} → {self.target.service}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            if upstream is not None:
                upstream.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()
        self.thread.join(5)
        for t in self.threads:
            t.join(5)


def _pump(a: socket.socket, b: Any, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes (or `stop`)."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b.fileno(), selectors.EVENT_READ, a)
    try:
        while not stop.is_set():
            for key, _ in sel.select(0.5):
                src = a if key.fileobj is a else b
                data = src.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        sel.close()


def bind_local(port: int, where: str) -> socket.socket:
    """Listen on localhost:port, or say clearly that it is taken (before anything is promoted)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise OperationError(f"{where}: localhost:{port} is taken by another process ({exc.strerror}); "
                             "nothing was promoted",
                             hint=f"stop what listens on port {port} (e.g. a local `stackctl up`), or publish "
                                  "another port for the dev profile") from None
    return sock


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------
@dataclass
class DevOptions:
    context: str | None = None
    timeout: float = 300.0
    down: bool = False


class DevLoop:
    """One `stackctl dev` session: promote, then sync/restart/rebuild per change until stopped."""

    def __init__(self, prof: Profile, options: DevOptions, *, terminal: Callable[[], Terminal], say: Say,
                 log: Say, stop: threading.Event | None = None) -> None:
        self.prof = prof
        self.options = options
        self.terminal = terminal
        self.say = say
        self.log = log
        self.stop = stop or threading.Event()
        self.ledgers: dict[str, Ledger] = {}
        self.lock = threading.Lock()  # one action at a time: a sync and a new pod's replay never interleave
        self.forwards: list[Forward] = []
        self.followers: list[threading.Thread] = []

    # -- set-up ----------------------------------------------------------------------------------
    def _load(self) -> Stack:
        from stackctl.kubernetes.deploy.commands import kube_settings
        from stackctl.pipeline import load_stack

        kube = kube_settings(self.prof)
        if kube.protected:
            raise InputError("`stackctl dev` changes pods in place (file sync, restarts): it refuses a protected "
                             "profile", file=self.prof.display_path, field="kubernetes.protected",
                             hint="use a dev profile with a namespace of its own")
        self.namespace = kube.namespace
        return load_stack(self.prof, secrets="masked").stack

    def _targets(self, stack: Stack) -> dict[str, Target]:
        out = {}
        for svc in stack.services:
            for i, port in enumerate(svc.ports):
                if port.protocol != "tcp":  # the API server's port-forward speaks TCP only
                    self.say(f"Warning: service {svc.name}: ports[{i}] ({port.target}/{port.protocol}) is not "
                             "forwarded: Kubernetes port-forward carries TCP only")
            name = dns_label(svc.name) or label_value(svc.name)
            selector = f"{L_INSTANCE}={label_value(stack.name)},{L_NAME}={label_value(svc.name)}"
            out[svc.name] = Target(service=svc.name, selector=selector, container=name,
                                   ports=tuple(forwarded_ports(svc)))
        return out

    def promote(self, why: str) -> bool:
        """The promote pipeline, as `stackctl promote` runs it. False (reported) when it failed."""
        from stackctl.errors import StackctlError
        from stackctl.kubernetes.deploy import commands
        from stackctl.kubernetes.deploy.deployer import RolloutFailed

        term = self.terminal()
        try:
            prep = commands.prepare(self.prof, self.options.context, readonly=False, yes=True, term=term)
            result = commands.promote(prep, _options(self.options), term, message=why)
        except RolloutFailed as exc:
            self.say(f"{why}: {exc}")
            for line in exc.report:
                self.say("  " + line)
            return False
        except StackctlError as exc:
            self.say(f"{why}: {exc}")
            return False
        self.context = prep.context
        self.say(f"{why}: revision {result.revision} in {result.elapsed:.1f}s" if result.changed
                 else f"{why}: no changes ({result.elapsed:.1f}s)")
        return True

    def run(self, changes: Watcher | None = None) -> None:
        """Promote, then act on every change until `stop` is set or Ctrl-C; always cleans up."""
        from stackctl.kubernetes.deploy import commands
        from stackctl.kubernetes.deploy.deployer import RolloutFailed

        stack = self._load()
        self.rules, left_out = dev_rules.watch_plan(stack, root=self.prof.root)
        for warning in left_out:
            self.say(f"Warning: {warning}")
        self.targets = self._targets(stack)
        listeners = self._bind()
        try:
            term = self.terminal()
            prep = commands.prepare(self.prof, self.options.context, readonly=False, yes=True, term=term)
            self.context = prep.context
            try:
                result = commands.promote(prep, _options(self.options), term, message="stackctl dev")
            except RolloutFailed as exc:  # the diagnosis first, as `stackctl promote` prints it
                self.say("Why:")
                for line in exc.report:
                    self.say("  " + line)
                raise
            self.say(f"promoted {self.prof.name} to namespace {self.namespace} (context {self.context}): revision "
                     f"{result.revision} in {result.elapsed:.1f}s" if result.changed else
                     f"{self.prof.name} is up to date in namespace {self.namespace} (context {self.context})")
            self.cluster, _ = commands.connect(self.prof, self.context)
            self.pods = Pods(self.cluster, self.namespace, f"{L_INSTANCE}={label_value(stack.name)}", self.stop,
                             self._container_started)
            self.pods.start(self._containers)
            self._follow_initial()
            self._forward(listeners)
            listeners = []
            self._initial_sync()
            self._watch(changes or _file_changes)
        finally:
            self.stop.set()
            for sock in listeners:
                sock.close()
            self._close()

    def _bind(self) -> list[socket.socket]:
        out: list[socket.socket] = []
        self._listening: list[tuple[Target, int, int, socket.socket]] = []
        try:
            for t in self.targets.values():
                for i, (local, remote) in enumerate(t.ports):
                    sock = bind_local(local, f"service {t.service} (ports[{i}])")
                    out.append(sock)
                    self._listening.append((t, local, remote, sock))
        except BaseException:
            for sock in out:
                sock.close()
            raise
        return out

    def _forward(self, listeners: list[socket.socket]) -> None:
        for t, local, remote, sock in self._listening:
            fw = Forward(self, t, local, remote, sock)
            fw.thread.start()
            self.forwards.append(fw)
            self.say(f"forwarding localhost:{local} → {t.service}:{remote}")

    def _close(self) -> None:
        for fw in self.forwards:
            fw.close()
        pods = getattr(self, "pods", None)
        if pods is not None and pods.thread.is_alive():
            pods.thread.join(10)
        for t in self.followers:
            t.join(10)
        cluster = getattr(self, "cluster", None)
        if self.options.down and hasattr(self, "context"):
            self._down()
        if cluster is not None:
            cluster.close()

    def _down(self) -> None:
        from stackctl.kubernetes.client import connect

        cluster = connect(self.context)
        try:
            ref = Ref(kind="Namespace", name=self.namespace, api_version="v1")
            cluster.delete(ref)
            deadline = time.monotonic() + 180
            while cluster.get(ref) is not None:
                if time.monotonic() > deadline:
                    self.say(f"namespace {self.namespace} is still terminating")
                    return
                time.sleep(0.5)
            self.say(f"deleted namespace {self.namespace} (the stack and its history)")
        finally:
            cluster.close()

    # -- pods: logs, replays ------------------------------------------------------------------
    def _service_of(self, pod: dict[str, Any]) -> Target | None:
        labels = pod["metadata"].get("labels") or {}
        for t in self.targets.values():
            if all(labels.get(k) == v for k, v in (p.split("=", 1) for p in t.selector.split(","))):
                return t
        return None

    def _containers(self, pod: dict[str, Any]) -> list[str]:
        t = self._service_of(pod)
        names = [c["name"] for c in pod.get("spec", {}).get("containers") or []]
        if t is None:
            return []
        return [t.container] if t.container in names else names[:1]

    def _follow_initial(self) -> None:
        for pod in self.pods.initial:
            for name in self._containers(pod):
                if _running_container(pod, name):
                    self._follow(pod, name, tail=10)

    def _container_started(self, pod: dict[str, Any], name: str) -> None:
        """A container that started during the loop: its log, and the ledger played into it."""
        self._follow(pod, name, tail=None)
        t = self._service_of(pod)
        if t is None:
            return
        ledger = self.ledgers.get(t.service)
        if ledger and (ledger.files or ledger.deleted):
            thread = threading.Thread(target=self._replay, args=(t, pod["metadata"]["name"], ledger), daemon=True,
                                      name="dev-replay")
            self.followers = [f for f in self.followers if f.is_alive()] + [thread]
            thread.start()

    def _replay(self, t: Target, pod: str, ledger: Ledger) -> None:
        with self.lock:
            if self.stop.is_set():
                return
            plan = ledger.replay()
            try:
                self._sync_pod(t, pod, plan)
                self.say(f"{t.service}: re-synced {len(plan.copy)} file(s) into new container of {pod}")
            except OperationError as exc:
                self.say(f"{t.service}: re-sync into {pod} failed: {exc}")

    def _follow(self, pod: dict[str, Any], container: str, *, tail: int | None) -> None:
        t = self._service_of(pod)
        if t is None:
            return
        width = max(len(s) for s in self.targets)
        name = pod["metadata"]["name"]

        def run() -> None:
            try:
                for line in follow_log(self.cluster, self.namespace, name, container, tail=tail, stop=self.stop):
                    self.log(prefixed(t.service, width, line))
            except Exception:  # the pod went away: its replacement gets a follower of its own
                return

        thread = threading.Thread(target=run, name=f"logs-{name}", daemon=True)
        self.followers = [f for f in self.followers if f.is_alive()] + [thread]
        thread.start()

    # -- actions --------------------------------------------------------------------------------
    def _running_pods(self, t: Target) -> list[str]:
        return [p["metadata"]["name"] for p in self.pods.of(t.selector) if _running_container(p, t.container)]

    def _sync_pod(self, t: Target, pod: str, plan: Plan) -> None:
        if plan.delete:
            code, _, err = exec_in(self.cluster, self.namespace, pod, t.container, ["rm", "-rf", "--", *plan.delete])
            if code != 0:
                raise OperationError(f"rm in pod {pod} exited {code}: {err.decode(errors='replace').strip()}")
        if plan.copy:
            code, _, err = exec_in(self.cluster, self.namespace, pod, t.container, ["tar", "-xmf", "-", "-C", "/"],
                                   stdin=tar_stream(plan.copy))
            if code != 0:
                raise OperationError(f"tar in pod {pod} exited {code}: {err.decode(errors='replace').strip()}",
                                     hint="sync needs tar in the image, as `kubectl cp` does")

    def sync(self, rule: WatchRule, paths: Sequence[Path]) -> Plan:
        t = self.targets[rule.service]
        plan = sync_plan(rule, paths)
        if not plan.copy and not plan.delete:
            return plan
        self.ledgers.setdefault(rule.service, Ledger()).record(plan)
        for pod in self._running_pods(t):
            self._sync_pod(t, pod, plan)
        return plan

    def restart(self, service: str) -> None:
        """Delete the service's pods; the controller starts new ones, the ledger is played into them."""
        t = self.targets[service]
        old = {p["metadata"]["name"] for p in self.pods.of(t.selector)}
        for name in sorted(old):
            self.cluster.delete(Ref(kind="Pod", name=name, namespace=self.namespace, api_version="v1"))

        def done() -> bool:
            now = self.pods.of(t.selector)
            return bool(now) and all(_ready(p) and p["metadata"]["name"] not in old for p in now)

        if not self.pods.wait(done, self.options.timeout):
            raise OperationError(f"{service}: the restarted pods are not ready after {self.options.timeout:.0f}s",
                                 hint=f"stackctl promote {self.prof.name} shows why (its diagnosis)")

    def exec_all(self, rule: WatchRule) -> None:
        t = self.targets[rule.service]
        for pod in self._running_pods(t):
            code, out, err = exec_in(self.cluster, self.namespace, pod, t.container, list(rule.exec_command),
                                     timeout=self.options.timeout)
            text = (out + err).decode(errors="replace").strip()
            if code != 0:
                raise OperationError(f"{rule.where}: `{' '.join(rule.exec_command)}` in {pod} exited {code}"
                                     + (f": {text[-500:]}" if text else ""))

    def handle(self, change: Change) -> None:
        """Carry out one fired rule and say what it did and how long it took."""
        rule = change.rule
        t0 = time.monotonic()
        rel = ", ".join(str(p.relative_to(rule.path)) if p != rule.path else p.name for p in change.paths[:3])
        more = f" (+{len(change.paths) - 3})" if len(change.paths) > 3 else ""
        try:
            with self.lock:
                if rule.action == "rebuild":
                    ok = self.promote(f"rebuild {rule.service}")
                    if ok and rule.service in self.ledgers:
                        self.ledgers[rule.service].clear()  # the new image holds the files
                    return
                plan = Plan()
                if rule.action in ("sync", "sync+restart", "sync+exec") and rule.target is not None:
                    plan = self.sync(rule, change.paths)
                if rule.action == "sync+exec" and rule.exec_command:
                    self.exec_all(rule)
            if rule.action in ("sync+restart", "restart"):
                self.restart(rule.service)
        except OperationError as exc:
            self.say(f"{rule.service}: {rule.action} failed ({rel}{more}): {exc}")
            return
        what = (f"synced {len(plan.copy)}, deleted {len(plan.delete)}" if rule.action != "restart" else "restarted")
        if rule.action == "sync+restart":
            what += ", restarted"
        self.say(f"{rule.service}: {rule.action} ({rel}{more}): {what} in {time.monotonic() - t0:.2f}s")

    def _initial_sync(self) -> None:
        for rule in self.rules:
            if rule.initial_sync and rule.target is not None and rule.path.exists():
                files = dev_rules.initial_files(rule)
                if files:
                    with self.lock:
                        plan = self.sync(rule, files)
                    self.say(f"{rule.service}: initial sync: {len(plan.copy)} file(s)")

    def _watch(self, changes: Watcher) -> None:
        if not self.rules:
            self.say("no develop.watch rules: forwarding ports and following logs until Ctrl-C")
            self.stop.wait()
            return
        def ready() -> None:  # said once the kernel watches are in place: an edit from then on is seen
            self.say(f"watching {len(self.rules)} rule(s); Ctrl-C to stop" + (" (and delete the namespace)"
                                                                               if self.options.down else ""))

        for batch in changes(self.rules, self.stop, ready):
            for change in batch:
                self.handle(change)


# (rules, stop, on_ready) → the fired rules of each batch of changes
Watcher = Callable[[Sequence["WatchRule"], threading.Event, Callable[[], None]], Iterator[Sequence["Change"]]]


def _options(options: DevOptions) -> Any:
    from stackctl.kubernetes.deploy.deployer import Options

    return Options(timeout=options.timeout)


def _file_changes(rules: Sequence[WatchRule], stop: threading.Event,
                  on_ready: Callable[[], None]) -> Iterator[Sequence[Change]]:
    """The fired rules of each coalesced batch of file changes (`stackctl.dev.watcher`)."""
    from stackctl.dev import watcher

    for batch in watcher.batches(rules, stop, on_ready=on_ready):
        yield batch.changes
