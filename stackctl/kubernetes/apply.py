"""The only code that talks to the Kubernetes API server.

`contexts()` reads the kubeconfig (KUBECONFIG, merged like kubectl does, else ~/.kube/config) and
`connect()` returns a `Cluster` for one context: raw JSON requests and watches, objects staying the
plain dicts the renderer made (no model classes). Static credentials (token, token file, client
certificate, basic auth) go through a small standard-library HTTPS transport; everything else a
kubeconfig can hold (exec plugins, auth providers, proxies, impersonation) through the official
Kubernetes client, imported lazily, whose authenticated connection pool is then used the same way.
Everything else in `stackctl.kubernetes` — waiting, history, diagnosis, promote — goes through a
`Cluster`.

Applying is server-side apply (`PATCH ... application/apply-patch+yaml`, field manager `stackctl`,
strict field validation). A field owned by another manager is a conflict, reported with who owns
it, unless `force` (`--force-conflicts`). `phases()` gives the safe order: Namespace → Secrets and
ConfigMaps → PersistentVolumeClaims → Services → workloads wave by wave (the Jobs a wave waits for
are applied first and must complete) → HPA/PDB/Ingress/NetworkPolicy.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from stackctl.errors import InputError, OperationError, ToolMissingError
from stackctl.kubernetes.labels import (
    A_WAIT,
    A_WAVE,
    ARGO_CONTROLLER_MANAGER,
    CONFIG_KINDS,
    MANAGER,
    WORKLOAD_KINDS,
)


# ---------------------------------------------------------------------------------------------
# Kinds and references
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def group_kind(self) -> str:
        """`Deployment.apps`, `Secret` (core): how ApplySet's contains-group-kinds names a kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def collection(self, namespace: str | None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced:
            return f"{base}/namespaces/{quote(namespace or 'default')}/{self.plural}"
        return f"{base}/{self.plural}"


_KNOWN = [
    Kind("v1", "Namespace", "namespaces", False), Kind("v1", "ConfigMap", "configmaps", True),
    Kind("v1", "Secret", "secrets", True), Kind("v1", "Service", "services", True),
    Kind("v1", "ServiceAccount", "serviceaccounts", True),
    Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True), Kind("v1", "Pod", "pods", True),
    Kind("v1", "Event", "events", True), Kind("v1", "ResourceQuota", "resourcequotas", True),
    Kind("v1", "LimitRange", "limitranges", True), Kind("v1", "Node", "nodes", False),
    Kind("apps/v1", "Deployment", "deployments", True), Kind("apps/v1", "StatefulSet", "statefulsets", True),
    Kind("apps/v1", "DaemonSet", "daemonsets", True), Kind("apps/v1", "ReplicaSet", "replicasets", True),
    Kind("apps/v1", "ControllerRevision", "controllerrevisions", True),
    Kind("batch/v1", "Job", "jobs", True), Kind("batch/v1", "CronJob", "cronjobs", True),
    Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True),
    Kind("networking.k8s.io/v1", "Ingress", "ingresses", True),
    Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles", True),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
    Kind("argoproj.io/v1alpha1", "Rollout", "rollouts", True),  # Argo Rollouts (a CRD: may be absent)
]
KINDS: dict[tuple[str, str], Kind] = {(k.api_version, k.kind): k for k in _KNOWN}
BY_GROUP_KIND: dict[str, Kind] = {k.group_kind: k for k in _KNOWN}


@dataclass(frozen=True, order=True)
class Ref:
    """One object's identity: what prune, diff and history compare."""

    kind: str
    name: str
    namespace: str = ""
    api_version: str = ""

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Ref:
        meta = obj.get("metadata", {})
        return cls(kind=obj["kind"], name=meta["name"], namespace=meta.get("namespace", "") or "",
                   api_version=obj.get("apiVersion", ""))

    @property
    def key(self) -> tuple[str, str, str]:
        """The identity without the version: `apps/v1` and `apps/v1beta1` name the same object."""
        return (self.group_kind, self.namespace, self.name)

    @property
    def group_kind(self) -> str:
        group = self.api_version.rpartition("/")[0]
        return f"{self.kind}.{group}" if group else self.kind

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
class ApiError(OperationError):
    """The API server refused a request: carries the HTTP status, the reason and the Status body."""

    def __init__(self, what: str, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.reason = self.body.get("reason", "") if self.body else ""
        detail = self.body.get("message") if self.body else None
        self.detail = str(detail or (body if isinstance(body, str) and body else f"HTTP {status}")).strip()
        super().__init__(f"{what}: {self.detail}")

    @property
    def not_found(self) -> bool:
        return self.status == 404


@dataclass(frozen=True)
class FieldConflict:
    ref: Ref
    field: str
    manager: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.field} is managed by {self.manager}"


class ConflictError(OperationError):
    """Fields stackctl applies are owned by other field managers (kubectl edit, a controller, ...)."""

    def __init__(self, conflicts: Sequence[FieldConflict]) -> None:
        self.conflicts = list(conflicts)
        lines = "; ".join(str(c) for c in conflicts[:8])
        more = f" (and {len(conflicts) - 8} more)" if len(conflicts) > 8 else ""
        super().__init__(f"{len(conflicts)} field conflict(s) with other managers: {lines}{more}",
                         hint="someone changed these fields outside stackctl; put the change in the profile, or "
                              "take the fields over with --force-conflicts")


def _normalised_by_argo(ref: Ref, conflicts: Sequence[FieldConflict]) -> bool:
    """The Argo Rollouts controller writes a Rollout's pod template back after a JSON round trip
    (`resources: {}` added, quantities reformatted) and so becomes the owner of fields it did not
    mean to change (argoproj/argo-rollouts#3281). Those conflicts alone are taken over: the values
    are stackctl's own. A conflict with any other manager is still reported."""
    from stackctl.kubernetes import argo

    return ref.kind == argo.KIND and bool(conflicts) and all(
        c.manager == ARGO_CONTROLLER_MANAGER and c.field.startswith(".spec.template.") for c in conflicts)


def _conflicts(ref: Ref, body: Mapping[str, Any]) -> list[FieldConflict]:
    out = []
    for cause in (body.get("details") or {}).get("causes") or []:
        if (cause.get("reason") or cause.get("type")) != "FieldManagerConflict":
            continue
        message = str(cause.get("message", ""))  # conflict with "kubectl" [with subresource "scale"] using v1
        quoted = message.split('"')[1::2]
        manager = quoted[0] if quoted else message
        if len(quoted) > 1:
            manager += f" (subresource {quoted[1]})"
        out.append(FieldConflict(ref=ref, field=str(cause.get("field", "?")), manager=manager))
    if not out:
        out.append(FieldConflict(ref=ref, field="?", manager=str(body.get("message", "another manager"))))
    return out


# ---------------------------------------------------------------------------------------------
# kubeconfig
# ---------------------------------------------------------------------------------------------
def kubeconfig_path() -> str:
    return os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


@dataclass(frozen=True)
class Contexts:
    names: tuple[str, ...]
    current: str | None
    path: str
    servers: Mapping[str, str] = field(default_factory=dict)  # context → API server URL
    # the merged kubeconfig, for connecting: context → (cluster, user); name → entry (+ "_dir")
    bindings: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    clusters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def contexts(path: str | None = None) -> Contexts:
    """The contexts of the kubeconfig, read without the Kubernetes client (it is slow to import).
    KUBECONFIG may list several files; they merge as kubectl merges them: the first file that names
    a context, a cluster, a user or the current-context wins."""
    import yaml

    path = path or kubeconfig_path()
    files = [p for p in path.split(os.pathsep) if p]
    if not any(Path(p).is_file() for p in files):
        raise ToolMissingError(f"no kubeconfig at {path}",
                               hint="set KUBECONFIG, or create ~/.kube/config (your cluster's tooling writes it)")
    names: list[str] = []
    bindings: dict[str, tuple[str, str]] = {}
    clusters: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for file in files:
        if not Path(file).is_file():
            continue
        try:
            data = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read the kubeconfig: {exc}", file=file) from None
        if not isinstance(data, dict):
            raise InputError("is not a kubeconfig (not a mapping)", file=file)
        base = str(Path(file).resolve().parent)
        for entry in data.get("contexts") or []:
            name = str((entry or {}).get("name", ""))
            if name and name not in bindings:
                names.append(name)
                ctx = (entry or {}).get("context") or {}
                bindings[name] = (str(ctx.get("cluster", "")), str(ctx.get("user", "")))
        for key, into in (("clusters", clusters), ("users", users)):
            for entry in data.get(key) or []:
                name = str((entry or {}).get("name", ""))
                if name and name not in into:
                    into[name] = {**((entry or {}).get(key[:-1]) or {}), "_dir": base}
        current = current or data.get("current-context") or None
    servers = {c: str(clusters.get(cl, {}).get("server", "")) for c, (cl, _) in bindings.items()}
    return Contexts(names=tuple(names), current=current, path=path, servers=servers, bindings=bindings,
                    clusters=clusters, users=users)


def connect(context: str, *, path: str | None = None) -> Cluster:
    """A `Cluster` for one kubeconfig context (it must exist: InputError listing the others).

    Static credentials (a bearer token or token file, a client certificate, basic auth) over a
    direct HTTPS connection use a small standard-library transport: importing the official client
    costs about half a second, as much as a whole `kubectl apply`. Everything else the kubeconfig
    can say (exec plugins, auth providers, proxies, impersonation) goes through the official client."""
    found = contexts(path)
    if context not in found.names:
        raise InputError(f"no context {context!r} in the kubeconfig (contexts: {', '.join(found.names) or 'none'})",
                         file=found.path, field="contexts")
    lean = _lean_transport(found, context)
    if lean is not None:
        return Cluster(lean, context=context)
    from kubernetes.client.api_client import ApiClient
    from kubernetes.client.configuration import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import load_kube_config

    config = Configuration()
    try:
        load_kube_config(config_file=found.path, context=context, client_configuration=config, persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        raise InputError(f"context {context!r}: {exc}", file=found.path) from None
    config.connection_pool_maxsize = 32
    return Cluster(_ClientTransport(ApiClient(configuration=config)), context=context)


def connect_in_background(context: str, *, path: str | None = None) -> Callable[[], Cluster]:
    """Start `connect()` on a thread (when the official client is needed, importing it overlaps
    with rendering, which mostly waits for `docker compose config`); the returned function joins
    it and returns the Cluster, or raises what connect raised."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["cluster"] = connect(context, path=path)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=work, name="connect", daemon=True)
    thread.start()

    def result() -> Cluster:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["cluster"]  # type: ignore[no-any-return]

    return result


# ---------------------------------------------------------------------------------------------
# Transports: (status, body bytes) for a request; a line stream for a watch
# ---------------------------------------------------------------------------------------------
class TransportError(Exception):
    pass


class _ClientTransport:
    """The official client's authenticated urllib3 pool (any kubeconfig the client understands)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.server: str = api.configuration.host

    def request(self, method: str, url_path: str, body: bytes | None, headers: dict[str, str], timeout: Any,
                stream: bool) -> tuple[int, Any]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        obj = json.loads(body) if body is not None else None  # the client serializes JSON bodies itself
        try:
            method, url, headers, data, _ = self.api.param_serialize(method=method, resource_path=url_path,
                                                                     header_params=headers, body=obj,
                                                                     auth_settings=["BearerToken"])
            resp = self.api.call_api(method, url, header_params=headers, body=data, _request_timeout=timeout)
        except ApiException as exc:
            raise TransportError(str(exc.reason)) from None
        except (HTTPError, OSError) as exc:
            raise TransportError(_short(exc)) from None
        if stream and resp.status < 300:
            return resp.status, _ClientStream(resp.response)
        return resp.status, resp.read()

    def close(self) -> None:
        self.api.rest_client.close()


class _ClientStream:
    def __init__(self, resp: Any) -> None:
        self.resp = resp

    def lines(self) -> Iterator[str]:
        from kubernetes.watch.watch import iter_resp_lines

        yield from iter_resp_lines(self.resp)

    def shutdown(self) -> None:
        shutdown = getattr(self.resp, "shutdown", None)
        if shutdown is not None:
            shutdown()
        self.resp.release_conn()

    def close(self) -> None:
        self.resp.release_conn()


class _HttpTransport:
    """HTTPS with static credentials, standard library only: one keep-alive connection per thread,
    a dedicated one per watch."""

    def __init__(self, server: str, ctx: Any, headers: dict[str, str]) -> None:
        from urllib.parse import urlsplit

        self.server = server.rstrip("/")
        parts = urlsplit(self.server)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.ctx = ctx
        self.headers = headers
        self.local = threading.local()
        self.all: list[Any] = []
        self.lock = threading.Lock()

    def _connection(self, timeout: float) -> Any:
        import http.client

        if self.https:
            conn: Any = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        with self.lock:
            self.all.append(conn)
        return conn

    def request(self, method: str, url_path: str, body: bytes | None, headers: dict[str, str], timeout: Any,
                stream: bool) -> tuple[int, Any]:
        import http.client

        total = timeout[1] if isinstance(timeout, tuple) else timeout
        hdrs = {**self.headers, **headers}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        if stream:
            conn = self._connection(total)
            try:
                conn.request(method, self.prefix + url_path, body=body, headers=hdrs)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise TransportError(_short(exc)) from None
            if resp.status >= 300:
                data = resp.read()
                conn.close()
                return resp.status, data
            return resp.status, _HttpStream(conn, resp)
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            fresh = conn is None
            if conn is None:
                conn = self.local.conn = self._connection(total)
            conn.timeout = total
            if conn.sock is not None:
                conn.sock.settimeout(total)
            try:
                conn.request(method, self.prefix + url_path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self.local.conn = None
                # a kept-alive connection the server closed meanwhile: once more on a new one
                if attempt == 0 and not fresh and isinstance(exc, (http.client.RemoteDisconnected,
                                                                   ConnectionResetError, BrokenPipeError)):
                    continue
                raise TransportError(_short(exc)) from None
            if resp.will_close:
                conn.close()
                self.local.conn = None
            return resp.status, data
        raise TransportError("unreachable")

    def close(self) -> None:
        with self.lock:
            conns, self.all = self.all, []
        for conn in conns:
            try:
                conn.close()
            except OSError:
                pass


class _HttpStream:
    def __init__(self, conn: Any, resp: Any) -> None:
        self.conn = conn
        self.resp = resp

    def lines(self) -> Iterator[str]:
        while True:
            line = self.resp.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").strip()
            if text:
                yield text

    def shutdown(self) -> None:
        import socket

        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.conn.close()


_FALLBACK_USER_KEYS = ("exec", "auth-provider", "as", "as-groups", "as-uid", "as-user-extra")


def _lean_transport(found: Contexts, context: str) -> _HttpTransport | None:
    """The standard-library transport for this context, or None when the kubeconfig needs more
    than it does (then the official client is used)."""
    import base64
    import ssl

    cluster_name, user_name = found.bindings[context]
    cluster = found.clusters.get(cluster_name)
    user = found.users.get(user_name, {"_dir": ""})
    if cluster is None or not str(cluster.get("server", "")).startswith(("https://", "http://")):
        return None
    if cluster.get("proxy-url") or cluster.get("tls-server-name") or any(user.get(k) for k in _FALLBACK_USER_KEYS):
        return None
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return None

    def file_or_data(entry: Mapping[str, Any], key: str) -> bytes | None:
        if entry.get(f"{key}-data"):
            return base64.b64decode(entry[f"{key}-data"])
        if entry.get(key):
            p = Path(str(entry[key]))
            return (p if p.is_absolute() else Path(entry["_dir"]) / p).read_bytes()
        return None

    try:
        ctx = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ca = file_or_data(cluster, "certificate-authority")
            if ca is not None:
                ctx = ssl.create_default_context(cadata=ca.decode("ascii", "replace"))
        cert, key = file_or_data(user, "client-certificate"), file_or_data(user, "client-key")
        if cert and key:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="stackctl-tls-") as tmp:  # load_cert_chain reads files
                cf, kf = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
                fd = os.open(kf, os.O_WRONLY | os.O_CREAT, 0o600)
                os.write(fd, key)
                os.close(fd)
                cf.write_bytes(cert)
                ctx.load_cert_chain(str(cf), str(kf))
        headers: dict[str, str] = {}
        token = user.get("token")
        if not token and user.get("tokenFile"):
            tf = Path(str(user["tokenFile"]))
            token = (tf if tf.is_absolute() else Path(user["_dir"]) / tf).read_text().strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user.get("username") and user.get("password"):
            pair = f"{user['username']}:{user['password']}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise InputError(f"context {context!r}: cannot load its credentials: {exc}", file=found.path) from None
    return _HttpTransport(str(cluster["server"]), ctx, headers)


# ---------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------
class Cluster:
    """One API server, through one authenticated transport (thread-safe)."""

    def __init__(self, transport: Any, *, context: str) -> None:
        self.transport = transport
        self.context = context
        self.server: str = transport.server
        self._kinds: dict[tuple[str, str], Kind] = dict(KINDS)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.transport.close()

    # -- transport -----------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None,
              content_type: str = "application/json", timeout: Any = 30, stream: bool = False) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        url_path = path + (("?" + urlencode(list(query))) if query else "")
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        try:
            status, raw = self.transport.request(method, url_path, data, headers, timeout, stream)
        except TransportError as exc:
            raise OperationError(f"cannot reach the API server {self.server} (context {self.context}): "
                                 f"{exc}") from None
        if stream and status < 300:
            return raw
        try:
            data_out = json.loads(raw) if raw else None
        except ValueError:
            data_out = raw.decode("utf-8", "replace")
        if status >= 300:
            raise ApiError(f"{method} {path}", status, data_out)
        return data_out

    def request(self, method: str, path: str, **kw: Any) -> Any:
        return self._call(method, path, **kw)

    # -- kinds -----------------------------------------------------------------------------------
    def kind(self, api_version: str, kind: str) -> Kind:
        """The REST mapping of a kind: from the built-in table, else API discovery (then cached)."""
        found = self._kinds.get((api_version, kind))
        if found is not None:
            return found
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        try:
            listing = self._call("GET", path)
        except ApiError as exc:
            raise OperationError(f"the cluster does not serve {api_version} (for {kind}): {exc.detail}") from None
        for res in listing.get("resources", []):
            if res.get("kind") == kind and "/" not in res.get("name", ""):
                found = Kind(api_version, kind, res["name"], bool(res.get("namespaced")))
                with self._lock:
                    self._kinds[(api_version, kind)] = found
                return found
        raise OperationError(f"the cluster has no kind {kind} in {api_version}")

    def kind_of(self, obj: Mapping[str, Any]) -> Kind:
        return self.kind(obj["apiVersion"], obj["kind"])

    def path_of(self, ref: Ref) -> str:
        k = self.kind(ref.api_version, ref.kind)
        return f"{k.collection(ref.namespace)}/{quote(ref.name)}"

    # -- reads -----------------------------------------------------------------------------------
    def get(self, ref: Ref) -> dict[str, Any] | None:
        try:
            return self._call("GET", self.path_of(ref))  # type: ignore[no-any-return]
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None, *, selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
        """Items and the list's resourceVersion (to watch from)."""
        query = []
        if selector:
            query.append(("labelSelector", selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if limit:
            query.append(("limit", str(limit)))
        try:
            data = self._call("GET", kind.collection(namespace), query=query)
        except ApiError as exc:
            if exc.not_found:  # the kind is not served (an optional API): nothing of it exists
                return [], ""
            raise
        items = data.get("items") or []
        for item in items:  # list items carry no kind/apiVersion
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items, str(data.get("metadata", {}).get("resourceVersion", ""))

    def namespace_exists(self, name: str) -> bool:
        return self.get(Ref(kind="Namespace", name=name, api_version="v1")) is not None

    def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool = False,
                tail: int = 20) -> str | None:
        """The last lines of a container's log, or None when the node cannot serve logs."""
        query = [("container", container), ("tailLines", str(tail))]
        if previous:
            query.append(("previous", "true"))
        try:
            out = self._call("GET", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log", query=query,
                             timeout=5)
        except (ApiError, OperationError):
            return None
        return out if isinstance(out, str) else (json.dumps(out) if out is not None else "")

    # -- writes ----------------------------------------------------------------------------------
    def apply(self, obj: Mapping[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply of one object (field manager `stackctl`); ConflictError on a conflict."""
        ref = Ref.of(obj)
        query = [("fieldManager", MANAGER), ("fieldValidation", "Strict")]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        try:
            return self._call("PATCH", self.path_of(ref), query=query, body=obj,  # type: ignore[no-any-return]
                              content_type="application/apply-patch+yaml")
        except ApiError as exc:
            if exc.status == 409 and exc.reason == "Conflict":
                conflicts = _conflicts(ref, exc.body)
                if not force and _normalised_by_argo(ref, conflicts):
                    return self.apply(obj, force=True, dry_run=dry_run)
                raise ConflictError(conflicts) from None
            raise ApiError(f"{ref}", exc.status, exc.body or exc.detail) from None

    def delete(self, ref: Ref, *, dry_run: bool = False) -> bool:
        """Delete (dependents in the background); False when it was already gone."""
        query = [("propagationPolicy", "Background")]
        if dry_run:
            query.append(("dryRun", "All"))
        try:
            self._call("DELETE", self.path_of(ref), query=query)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise ApiError(f"deleting {ref}", exc.status, exc.body or exc.detail) from None
        return True

    # -- watches ---------------------------------------------------------------------------------
    def watch(self, kind: Kind, namespace: str | None, resource_version: str, *, selector: str | None = None,
              field_selector: str | None = None, stop: threading.Event | None = None,
              timeout: int = 60) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) events from `resource_version` on, until the server ends the watch
        (`timeout` seconds) or `stop` is set. A 410 Gone becomes an `("ERROR", status)` event."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if selector:
            query.append(("labelSelector", selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        stream = self._call("GET", kind.collection(namespace), query=query, stream=True, timeout=(10, timeout + 15))
        closer = _Closer(stream, stop)
        try:
            for line in stream.lines():
                if stop is not None and stop.is_set():
                    return
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                obj = event.get("object") or {}
                if isinstance(obj, dict) and event.get("type") != "ERROR":
                    obj.setdefault("apiVersion", kind.api_version)
                    obj.setdefault("kind", kind.kind)
                yield str(event.get("type", "")), obj
        except Exception:  # the connection was shut down under us (stop), or dropped
            if stop is not None and stop.is_set():
                return
            raise
        finally:
            closer.done()


class _Closer:
    """Shuts a watch stream down as soon as `stop` is set (a blocked read returns at once)."""

    def __init__(self, stream: Any, stop: threading.Event | None) -> None:
        self.stream = stream
        self.finished = threading.Event()
        if stop is not None:
            threading.Thread(target=self._run, args=(stop,), daemon=True, name="watch-closer").start()

    def _run(self, stop: threading.Event) -> None:
        while not self.finished.is_set():
            if stop.wait(0.5):
                try:
                    self.stream.shutdown()
                except Exception:  # noqa: BLE001 - best effort: the read fails and the watch ends either way
                    pass
                return

    def done(self) -> None:
        self.finished.set()
        try:
            self.stream.close()
        except Exception:  # noqa: BLE001
            pass


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1][:200] if len(text) > 200 else text


# ---------------------------------------------------------------------------------------------
# Order
# ---------------------------------------------------------------------------------------------
@dataclass
class Phase:
    """Objects applied together (in parallel); `await_jobs` must complete before the next phase."""

    name: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    await_jobs: list[Ref] = field(default_factory=list)


def _wave(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata", {}).get("annotations") or {}).get(A_WAVE, "0"))
    except ValueError:
        return 0


def phases(objects: Iterable[dict[str, Any]]) -> list[Phase]:
    """The safe apply order (see the module docstring); within a phase, the input order is kept."""
    fixed = {"Namespace": 0, **{k: 1 for k in CONFIG_KINDS}, "PersistentVolumeClaim": 2, "Service": 3}
    early: dict[int, Phase] = {0: Phase("namespace"), 1: Phase("config"), 2: Phase("volumes"), 3: Phase("services")}
    waves: dict[int, Phase] = {}
    late = Phase("policies")
    for obj in objects:
        kind = obj["kind"]
        if kind in fixed:
            early[fixed[kind]].objects.append(obj)
        elif kind in WORKLOAD_KINDS:
            wave = _wave(obj)
            phase = waves.setdefault(wave, Phase(f"workloads-{wave}"))
            phase.objects.append(obj)
            if kind == "Job" and (obj["metadata"].get("annotations") or {}).get(A_WAIT) == "complete":
                phase.await_jobs.append(Ref.of(obj))
        else:
            late.objects.append(obj)  # HPA, PDB, Ingress, NetworkPolicy and kinds stackctl does not know
    ordered = [early[i] for i in sorted(early)] + [waves[w] for w in sorted(waves)] + [late]
    for i, phase in enumerate(ordered):  # a wave's awaited Jobs go first within it
        if phase.await_jobs:
            jobs = [o for o in phase.objects if Ref.of(o) in phase.await_jobs]
            phase.objects = jobs + [o for o in phase.objects if Ref.of(o) not in phase.await_jobs]
        ordered[i] = phase
    return [p for p in ordered if p.objects]


# ---------------------------------------------------------------------------------------------
# Applying many objects
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Applied:
    ref: Ref
    action: str  # created | configured | unchanged
    result: dict[str, Any]


def apply_objects(cluster: Cluster, objects: Sequence[dict[str, Any]], live: Mapping[tuple[str, str, str], Any], *,
                  force: bool = False, dry_run: bool = False, pool: ThreadPoolExecutor | None = None,
                  on_applied: Callable[[Applied], None] | None = None) -> list[Applied]:
    """Apply `objects` in parallel (one phase). `live` holds what existed before (by `Ref.key`), to
    say created/configured/unchanged. Every conflict of the phase is reported together."""

    def one(obj: dict[str, Any]) -> Applied:
        ref = Ref.of(obj)
        result = cluster.apply(obj, force=force, dry_run=dry_run)
        before = live.get(ref.key)
        if before is None:
            action = "created"
        else:  # not the resourceVersion: a controller's status update bumps it too
            action = "unchanged" if _same(before, result) else "configured"
        applied = Applied(ref=ref, action=action, result=result)
        if on_applied is not None:
            on_applied(applied)
        return applied

    if pool is None or len(objects) <= 1:
        results: list[Any] = []
        for obj in objects:
            try:
                results.append(one(obj))
            except OperationError as exc:
                results.append(exc)
    else:
        futures = [pool.submit(one, obj) for obj in objects]
        results = []
        for fut in futures:
            try:
                results.append(fut.result())
            except OperationError as exc:
                results.append(exc)
    conflicts = [c for r in results if isinstance(r, ConflictError) for c in r.conflicts]
    if conflicts:
        raise ConflictError(conflicts)
    for r in results:
        if isinstance(r, OperationError):
            raise r
    return results


_VOLATILE_META = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")


def normalized(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An object as diff and no-op checks compare it: no status, no server bookkeeping."""
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_META}
    out["metadata"] = meta
    return out


def _same(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return normalized(before) == normalized(after)
