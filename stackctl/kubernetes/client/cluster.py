"""The one choke point to the Kubernetes API server: `Cluster`, raw JSON requests and watches on
plain dicts (the renderer's objects, no model classes), over one transport (`transport`).

`connect()` opens a `Cluster` for one kubeconfig context (`kubeconfig`). `promote`, `history`,
`rollback`, `run-job` and `doctor` go through it; `Kind`/`KINDS` are the REST mappings it knows
without discovery, `Ref` the identity prune, diff and history compare. `Cluster.apply` is one
server-side apply (field manager `stackctl`, strict field validation): a field owned by another
manager is a `ConflictError` naming the owner, unless forced.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from stackctl.errors import InputError, OperationError
from stackctl.kubernetes.client.kubeconfig import contexts
from stackctl.kubernetes.client.transport import Streams, Transport, TransportError, open_streams, open_transport
from stackctl.kubernetes.labels import ARGO_CONTROLLER_MANAGER, MANAGER


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


_ARGO_ROLLOUT = "Rollout.argoproj.io"  # the kind `deploy.argo` renders


def _normalised_by_argo(ref: Ref, conflicts: Sequence[FieldConflict]) -> bool:
    """The Argo Rollouts controller writes a Rollout's pod template back after a JSON round trip
    (`resources: {}` added, quantities reformatted) and so becomes the owner of fields it did not
    mean to change (argoproj/argo-rollouts#3281). Those conflicts alone are taken over: the values
    are stackctl's own. A conflict with any other manager is still reported."""
    return ref.group_kind == _ARGO_ROLLOUT and bool(conflicts) and all(
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


def connect(context: str, *, path: str | None = None) -> Cluster:
    """A `Cluster` for one kubeconfig context (it must exist: InputError listing the others).

    Static credentials (a bearer token or token file, a client certificate, basic auth) over a
    direct HTTPS connection use a small standard-library transport: importing the official client
    costs 0.7-0.9 s (see `transport`), as much as a whole `kubectl apply`. Everything else the kubeconfig
    can say (exec plugins, auth providers, proxies, impersonation) goes through the official client."""
    found = contexts(path)
    if context not in found.names:
        raise InputError(f"no context {context!r} in the kubeconfig (contexts: {', '.join(found.names) or 'none'})",
                         file=found.path, field="contexts")
    return Cluster(open_transport(found, context), context=context, streams=lambda: open_streams(found, context))


def connect_in_background(context: str, *, path: str | None = None) -> Callable[[], Cluster]:
    """Start `connect()` on a thread (when the official client is needed, importing it overlaps
    with rendering, which mostly waits for `docker compose config`); the returned function joins
    it and returns the Cluster, or raises what connect raised."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["cluster"] = connect(context, path=path)
        except BaseException as exc:  # handed to the caller, who raises it
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
# The cluster
# ---------------------------------------------------------------------------------------------
class Cluster:
    """One API server, through one authenticated transport (thread-safe)."""

    def __init__(self, transport: Transport, *, context: str,
                 streams: Callable[[], Streams] | None = None) -> None:
        self.transport = transport
        self.context = context
        self.server: str = transport.server
        self._kinds: dict[tuple[str, str], Kind] = dict(KINDS)
        self._lock = threading.Lock()
        self._open_streams = streams
        self._streams: Streams | None = None

    def close(self) -> None:
        self.transport.close()
        if self._streams is not None:
            self._streams.close()

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

    def list_cluster_wide(self, kind: str, *, field_selector: str | None = None
                          ) -> builtins.list[dict[str, Any]]:
        """Every object of a core kind in every namespace (`/api/v1/pods`), page by page: the nodes and
        the pods on them, for the capacity check (`stackctl.kubernetes.capacity`). ApiError 403 when
        the user may not list them."""
        path = f"/api/v1/{self.kind('v1', kind).plural}"
        items: builtins.list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("limit", "500")] + ([("fieldSelector", field_selector)] if field_selector else [])
            if token:
                query.append(("continue", token))
            data = self._call("GET", path, query=query)
            items += data.get("items") or []
            token = str((data.get("metadata") or {}).get("continue") or "")
            if not token:
                return items

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
                # best effort: the read fails and the watch ends either way
                with contextlib.suppress(Exception):
                    self.stream.shutdown()
                return

    def done(self) -> None:
        self.finished.set()
        with contextlib.suppress(Exception):
            self.stream.close()




# ---------------------------------------------------------------------------------------------
# exec, port-forward and log streams (`stackctl dev`)
# ---------------------------------------------------------------------------------------------
def _streams(cluster: Cluster) -> Streams:
    with cluster._lock:
        if cluster._streams is None:
            if cluster._open_streams is None:
                raise OperationError(f"context {cluster.context}: exec and port-forward are not available here")
            cluster._streams = cluster._open_streams()
        return cluster._streams


def exec_in(cluster: Cluster, namespace: str, pod: str, container: str, command: Sequence[str],
            stdin: bytes | None = None, *, timeout: float = 60) -> tuple[int, bytes, bytes]:
    """Run a command in a container (`kubectl exec`): (exit code, stdout, stderr)."""
    try:
        return _streams(cluster).exec(namespace, pod, container, list(command), stdin, timeout=timeout)
    except TransportError as exc:
        raise OperationError(f"context {cluster.context}: {exc}") from None


def port_forward(cluster: Cluster, namespace: str, pod: str, port: int) -> Any:
    """A socket-like object connected to a pod's port (`recv`, `sendall`, `fileno`, `close`)."""
    try:
        return _streams(cluster).port_forward(namespace, pod, port)
    except TransportError as exc:
        raise OperationError(f"context {cluster.context}: {exc}") from None


def follow_log(cluster: Cluster, namespace: str, pod: str, container: str, *, tail: int | None = None,
               stop: threading.Event | None = None) -> Iterator[str]:
    """A container's log lines as they are written (`kubectl logs -f`), until the container ends,
    the connection drops or `stop` is set."""
    query = [("container", container), ("follow", "true")]
    if tail is not None:
        query.append(("tailLines", str(tail)))
    path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log"
    stream = cluster.request("GET", path, query=query, stream=True, timeout=(10, None))
    closer = _Closer(stream, stop)
    try:
        for line in stream.lines():
            if stop is not None and stop.is_set():
                return
            yield line
    except Exception:
        if stop is not None and stop.is_set():
            return
        raise
    finally:
        closer.done()
