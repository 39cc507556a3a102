"""HTTPS to the API server: a transport turns (method, path, body) into (status, body bytes), or a
line stream for a watch. `Cluster` (in `cluster`) is the only caller.

Two transports, chosen per context by `open_transport()`:

* `_HttpTransport`, standard library only, for static credentials over a direct connection (a
  bearer token or token file, a client certificate, basic auth): what kind, k3d, minikube, KWOK and
  most CI kubeconfigs hold. It costs nothing to import.
* `_ClientTransport`, the official `kubernetes` client's authenticated urllib3 pool, for everything
  else a kubeconfig can say: `exec` credential plugins (EKS `aws eks get-token`, GKE
  `gke-gcloud-auth-plugin`, AKS `kubelogin`: most cloud clusters), `auth-provider` (OIDC with token
  refresh), proxies (`proxy-url`, HTTPS_PROXY), `tls-server-name` and impersonation (`as`, ...).

Why the official client is not the only path (measured on the dev container, Python 3.12,
kubernetes 37.0.3, `python -X importtime`, cumulative, three runs): `import kubernetes.client`
0.72-0.93 s, `import kubernetes.config` 0.68-0.79 s, `kubernetes.client.api_client` +
`config.kube_config` 0.53-0.85 s — as long as a whole `kubectl apply` of a small stack — against
0.05-0.09 s for this package with its `stackctl` imports. It also brings aiohttp, requests,
oauthlib, websocket-client and dateutil (~12 MB installed, beside its own 126 MB) for no other user.
Why it is kept at all: exec plugins are how cloud clusters authenticate, and re-implementing
them (running the plugin, the ExecCredential protocol, refreshing a token that expires during a
long promote), OIDC refresh and proxy tunnelling here would be a client of our own for
credentials we cannot test against a real provider. So `doctor` and `promote` share one path,
`Cluster`; the official client is imported only for a context whose credentials need it, and on a
thread (`connect_in_background`) so that the import overlaps with rendering.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from stackctl.errors import InputError
from stackctl.kubernetes.client.kubeconfig import Contexts


class Stream(Protocol):
    """The body of a watch: its lines, until the server ends it or `shutdown()` is called."""

    def lines(self) -> Iterator[str]: ...

    def shutdown(self) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    server: str

    def request(self, method: str, url_path: str, body: bytes | None, headers: dict[str, str], timeout: Any,
                stream: bool) -> tuple[int, Any]: ...

    def close(self) -> None: ...


def open_transport(found: Contexts, context: str) -> Transport:
    """The transport for one context of the kubeconfig (see the module docstring for which)."""
    lean = _lean_transport(found, context)
    if lean is not None:
        return lean
    from kubernetes.client.api_client import ApiClient

    config = _official_configuration(found, context)
    config.connection_pool_maxsize = 32
    return _ClientTransport(ApiClient(configuration=config))


def _official_configuration(found: Contexts, context: str) -> Any:
    """The official client's Configuration for one context of the kubeconfig (exec/OIDC credentials
    included); a kubeconfig it cannot read is an InputError naming the file."""
    from kubernetes.client.configuration import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import load_kube_config

    config = Configuration()
    try:
        load_kube_config(  # type: ignore[no-untyped-call]  # the official client has no annotations there
            config_file=found.path, context=context, client_configuration=config, persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        raise InputError(f"context {context!r}: {exc}", file=found.path) from None
    return config


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

        yield from iter_resp_lines(self.resp)  # type: ignore[no-untyped-call]  # untyped in the client

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
            with contextlib.suppress(OSError):
                conn.close()


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
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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




def _short(exc: BaseException) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1][:200] if len(text) > 200 else text




# ---------------------------------------------------------------------------------------------
# exec and port-forward: WebSocket streams (`stackctl dev`)
# ---------------------------------------------------------------------------------------------
class Streams:
    """`exec` into a container and `port-forward` to a pod, over the WebSocket subprotocols of the
    API server (`v5.channel.k8s.io` for exec, whose CLOSE frame ends the command's stdin as kubectl's
    does; `portforward.k8s.io`), through the official client's `stream` module. Only `stackctl dev`
    needs them, a long-running command: the client's import (0.7-0.9 s, see the module docstring) is
    paid once there, and re-implementing WebSocket framing here would be a second client to keep."""

    def __init__(self, found: Contexts, context: str) -> None:
        from kubernetes.client.api.core_v1_api import CoreV1Api
        from kubernetes.client.api_client import ApiClient

        self.core = CoreV1Api(ApiClient(configuration=_official_configuration(found, context)))
        # The client's `stream`/`portforward` swap the ApiClient's `call_api` while they connect:
        # two threads connecting at once (a sync and a forwarded request) would get each other's.
        self.connecting = threading.Lock()

    def exec(self, namespace: str, pod: str, container: str, command: list[str], stdin: bytes | None = None,
             *, timeout: float = 60) -> tuple[int, bytes, bytes]:
        """Run `command` in the container: (exit code, stdout, stderr). `stdin`, when given, is
        written and then closed (the command sees its end, as `tar -x` needs)."""
        import time

        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import V5_CHANNEL_PROTOCOL

        try:
            with self.connecting:
                client = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                                command=command, stdin=stdin is not None, stdout=True, stderr=True, tty=False,
                                _preload_content=False, binary=True)
        except (ApiException, ValueError) as exc:  # ValueError: the client's ApiValueError
            raise TransportError(f"exec in pod {pod}: {getattr(exc, 'reason', None) or exc}") from None
        out, err = bytearray(), bytearray()
        try:
            if stdin is not None:
                if client.subprotocol != V5_CHANNEL_PROTOCOL:
                    raise TransportError(f"exec in pod {pod}: the API server does not speak {V5_CHANNEL_PROTOCOL} "
                                         "(Kubernetes 1.30 or later), so the command's input cannot be closed")
                for at in range(0, len(stdin), 1 << 20):
                    client.write_stdin(stdin[at:at + (1 << 20)])
                client.close_channel(0)
            deadline = time.monotonic() + timeout
            while client.is_open():
                if time.monotonic() > deadline:
                    raise TransportError(f"exec in pod {pod}: no end after {timeout:.0f}s")
                client.update(timeout=1)
                out += client.read_stdout(timeout=0) if client.peek_stdout() else b""
                err += client.read_stderr(timeout=0) if client.peek_stderr() else b""
            out += client.read_stdout(timeout=0) if client.peek_stdout() else b""
            err += client.read_stderr(timeout=0) if client.peek_stderr() else b""
            code = client.returncode
        except (OSError, ValueError, KeyError, IndexError) as exc:  # the socket, or a malformed status
            raise TransportError(f"exec in pod {pod}: {_short(exc)}") from None
        finally:
            with contextlib.suppress(Exception):
                client.close()
        return int(code if code is not None else 1), bytes(out), bytes(err)

    def port_forward(self, namespace: str, pod: str, port: int) -> Any:
        """A socket connected to `port` of the pod (close it to end the forward)."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import portforward

        try:
            with self.connecting:
                forward = portforward(self.core.connect_get_namespaced_pod_portforward, pod, namespace,
                                      ports=str(port))
        except (ApiException, ValueError) as exc:
            raise TransportError(f"port-forward to pod {pod}: {getattr(exc, 'reason', None) or exc}") from None
        return _ForwardSocket(forward, port)

    def close(self) -> None:
        self.core.api_client.rest_client.close()


class _ForwardSocket:
    """One port of a `PortForward`: its socket, and `close()` ending the WebSocket too."""

    def __init__(self, forward: Any, port: int) -> None:
        self.forward = forward
        self.sock = forward.socket(port)

    def recv(self, size: int) -> bytes:
        return bytes(self.sock.recv(size))

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.forward.close()
        with contextlib.suppress(Exception):
            self.forward.websocket.close()


def open_streams(found: Contexts, context: str) -> Streams:
    return Streams(found, context)
