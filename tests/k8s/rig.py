"""A real Kubernetes control plane on loopback, for tests, benchmarks and humans.

etcd + kube-apiserver + kube-controller-manager + kube-scheduler + KWOK (simulated nodes: pods are
scheduled and become Running/Ready, Jobs complete), from the binaries `scripts/k8s-binaries.sh`
builds into its versioned cache. Everything listens on 127.0.0.1 only.

    rig = ControlPlane.start()          # builds nothing itself: calls scripts/k8s-binaries.sh
    rig.kubeconfig                      # contexts: stackctl-test (current), production, staging
    rig.stop()                          # kills every process group, removes the work dir

As a program (what `scripts/k8s-cluster.sh` runs):

    python tests/k8s/rig.py start [--dir D]   # start in the background, print `export KUBECONFIG=...`
    python tests/k8s/rig.py stop [--dir D]
    python tests/k8s/rig.py status [--dir D]

Pitfalls this handles (see ../shared/REFERENCE.md §2): kube-apiserver 1.35 refuses anonymous requests
under AlwaysAllow, so a static token of a `system:masters` user is used with Node,RBAC; `/readyz`
prints `ok` lines even while failing, so only the final verdict counts; KWOK does not create Node
objects, so they are created here (annotated for KWOK's selector, untainted).

Test-only KWOK stages are added to upstream's `fast` set: a pod annotated
`sim.stackctl.io/state` with `crashloop`, `imagepull`, `unready` or `fail` gets that status instead of
becoming Ready (or completing), with the events a kubelet would record; the renderer copies Compose
service labels to pod annotations, so a test stack asks for it with a label.

Standard library plus PyYAML only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BINARIES_SCRIPT = REPO / "scripts" / "k8s-binaries.sh"
CONTEXTS = ("stackctl-test", "production", "staging")
# Same cluster, other kinds of credentials: a client certificate (embedded, as kind writes it) and an
# exec credential plugin (what cloud providers use; stackctl hands those to the official client).
EXTRA_CONTEXTS = {"stackctl-certs": "admin-cert", "stackctl-exec": "admin-exec"}
SIM_ANNOTATION = "sim.stackctl.io/state"
NODE_SELECTOR_ANNOTATION = "kwok.x-k8s.io/node"
NODES = 3
STORAGE_CLASS = "kwok-volume"  # the name KWOK's volume stages act on
NODE_CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "250"}


class RigError(RuntimeError):
    pass


def unavailable(reason: str) -> None:
    """In a pytest session: the rig cannot be had. A failure under STACKCTL_REQUIRE_K8S=1 (CI), else a skip."""
    import pytest

    if os.environ.get("STACKCTL_REQUIRE_K8S") == "1":
        pytest.fail(f"the Kubernetes tier is required (STACKCTL_REQUIRE_K8S=1) but the rig is missing: {reason}",
                    pytrace=False)
    pytest.skip(f"no Kubernetes rig ({reason}); set STACKCTL_REQUIRE_K8S=1 to fail instead")


def binaries(*, build: bool = True) -> Path:
    """The bin dir of the cached binaries (scripts/k8s-binaries.sh builds them when missing)."""
    explicit = os.environ.get("STACKCTL_K8S_BIN")  # a bin dir of your own (skips the build script)
    if explicit:
        missing = [b for b in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
                   if not os.access(Path(explicit) / b, os.X_OK)]
        if missing:
            raise RigError(f"STACKCTL_K8S_BIN={explicit} lacks {', '.join(missing)}")
        return Path(explicit)
    if not build:
        raise RigError("STACKCTL_K8S_BIN is not set")
    proc = subprocess.run(["bash", str(BINARIES_SCRIPT)], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RigError(f"scripts/k8s-binaries.sh failed (exit {proc.returncode}):\n{tail}")
    lines = proc.stdout.strip().splitlines()
    if not lines or not Path(lines[-1]).is_dir():
        raise RigError(f"scripts/k8s-binaries.sh printed no bin dir: {proc.stdout[-300:]!r}")
    return Path(lines[-1])


def load_realnode() -> Any:
    """tests/k8s/realnode.py as module stackctl_k8s_realnode (this file is loaded by path, not as a package)."""
    import importlib.util

    name = "stackctl_k8s_realnode"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "realnode.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port free on loopback now: one implementation, realnode's."""
    return int(load_realnode().free_port())


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _own_session() -> None:
    os.setsid()


@dataclass
class ControlPlane:
    workdir: Path
    bin_dir: Path
    token: str = "stackctl-test-token"
    port: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    owns_workdir: bool = True
    kwok_nodes: int = NODES
    real_node: bool = False
    bind_address: str = "127.0.0.1"
    node: Any = None  # realnode.RealNode when real_node

    # -- paths ---------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.bind_address}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    # -- lifecycle -----------------------------------------------------------------------------
    @classmethod
    def start(cls, *, workdir: Path | None = None, bin_dir: Path | None = None, timeout: float = 120,
              detach: bool = False, real_node: bool = False, kwok_nodes: int | None = None,
              registry_port: int = 0) -> ControlPlane:
        """Start everything and wait until the nodes are Ready. On any failure everything started is
        stopped again before the error propagates. `detach` keeps the processes alive after this
        process exits (for scripts/k8s-cluster.sh); otherwise they die with it, however it ends.

        `real_node`: instead of KWOK nodes (unless `kwok_nodes` asks for some beside it), one real node
        (tests/k8s/realnode.py: containerd, kubelet, kube-proxy, CoreDNS, a default StorageClass and a
        loopback registry on `registry_port`, 0 = any free port). Its state lives in the fixed
        realnode.STATE_DIR (one real node per machine); whatever a previous run left there, crashed or
        still running, is cleaned up first."""
        bin_dir = bin_dir or binaries()
        node_dir = None
        if real_node:
            realnode = load_realnode()
            node_dir = realnode.node_binaries()
            if workdir is not None and workdir != realnode.STATE_DIR:
                raise RigError(f"a real-node cluster keeps its state in {realnode.STATE_DIR}, not {workdir}")
            workdir = realnode.STATE_DIR
            # One real node per machine: wait for another user's to end before cleaning up its state.
            realnode.acquire_machine(log=lambda m: print(f"rig: {m}", file=sys.stderr))
            if workdir.exists():
                left = realnode.cleanup(workdir)
                if left:
                    realnode.release_machine()
                    raise RigError(f"cannot clean up what a previous real node left: {'; '.join(left)}")
        owns = workdir is None or real_node
        if workdir is None:
            base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
            workdir = Path(tempfile.mkdtemp(prefix="stackctl-k8s-", dir=base))
        workdir.mkdir(parents=True, exist_ok=True)
        rig = cls(workdir=workdir, bin_dir=bin_dir, owns_workdir=owns, real_node=real_node,
                  kwok_nodes=(0 if real_node else NODES) if kwok_nodes is None else kwok_nodes)
        try:
            if real_node:
                realnode.RealNode.prepare_host(workdir)
                rig.bind_address = realnode.NODE_IP
            rig._start(timeout, detach)
            if real_node:
                rig.node = realnode.RealNode(
                    plane=rig, node_dir=node_dir, registry_port=registry_port or free_port(), state=workdir,
                    spawn=lambda name, argv, env=None: rig._spawn(name, argv, detach, env))
                rig.node.start(time.monotonic() + timeout)
        except BaseException:
            rig.stop()
            raise
        return rig

    def _spawn(self, name: str, argv: list[str], detach: bool, env: dict[str, str] | None = None) -> None:
        log = open(self.log(name), "wb")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    preexec_fn=_own_session if detach else _die_with_parent, close_fds=True)
        finally:
            log.close()
        self.pids[name] = proc.pid
        (self.workdir / "pids.json").write_text(json.dumps(self.pids))

    def _start(self, timeout: float, detach: bool) -> None:
        deadline = time.monotonic() + timeout
        (self.workdir / "logs").mkdir(exist_ok=True)
        self._pki()
        b = self.bin_dir
        etcd_port, peer_port = free_port(), free_port()
        self._spawn("etcd", [
            str(b / "etcd"), "--data-dir", str(self.workdir / "etcd"), "--name", "rig",
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"rig=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ], detach)
        self.port = free_port()
        pki = self.workdir / "pki"
        self._spawn("kube-apiserver", [
            str(b / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={self.bind_address}", f"--advertise-address={self.bind_address}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
            f"--token-auth-file={self.workdir / 'tokens.csv'}", "--anonymous-auth=false",
            "--enable-priority-and-fairness=false", "--event-ttl=30m", "-v=0",
            "--allow-privileged=true",  # as kubeadm and kwokctl clusters do (privileged pods are a workload's choice)
            *self._kubelet_client_flags(),
        ], detach)
        self._write_kubeconfig()
        self._wait_ready(deadline)
        kc = str(self.kubeconfig)
        self._spawn("kube-controller-manager", [
            str(b / "kube-controller-manager"), f"--kubeconfig={kc}", "--bind-address=127.0.0.1",
            "--secure-port=0", "--leader-elect=false", "--controllers=*,-serviceaccount-token",
            f"--root-ca-file={pki / 'ca.crt'}", "--use-service-account-credentials=false",
            "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
            "--concurrent-statefulset-syncs=10", "--concurrent-job-syncs=10",
            "--kube-api-qps=500", "--kube-api-burst=1000", "-v=0",
        ], detach)
        self._spawn("kube-scheduler", [
            str(b / "kube-scheduler"), f"--kubeconfig={kc}", "--bind-address=127.0.0.1", "--secure-port=0",
            "--leader-elect=false", "--kube-api-qps=500", "--kube-api-burst=1000", "-v=0",
        ], detach)
        if self.kwok_nodes:
            self._start_kwok(detach, deadline)

    def _kubelet_client_flags(self) -> list[str]:
        """How the API server reaches a real kubelet (logs, exec, port-forward)."""
        if not self.real_node:
            return []
        pki = self.workdir / "pki"
        return [f"--kubelet-client-certificate={pki / 'admin.crt'}", f"--kubelet-client-key={pki / 'admin.key'}",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP",  # else logs/exec look the node name up in DNS
                "--enable-admission-plugins=NodeRestriction"]

    def _start_kwok(self, detach: bool, deadline: float) -> None:
        kc, b = str(self.kubeconfig), self.bin_dir
        self._spawn("kwok", [
            str(b / "kwok"), f"--kubeconfig={kc}", "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={NODE_SELECTOR_ANNOTATION}=fake",
            "--node-lease-duration-seconds=40", f"--config={self._stages()}", "--cidr=10.0.0.1/16",
            "--server-address=127.0.0.1:0",
        ], detach)
        for i in range(self.kwok_nodes):
            self._node(f"kwok-node-{i}")
        self._storage_class()
        self._wait_nodes(deadline)

    def stop(self) -> None:
        """Kill every process group (TERM, then KILL), then remove the work dir when we made it."""
        pids = dict(self.pids)
        if not pids and (self.workdir / "pids.json").is_file():
            with contextlib.suppress(ValueError, OSError):
                pids = json.loads((self.workdir / "pids.json").read_text())
        order = ["kubelet", "kube-proxy", "coredns", "provisioner", "registry", "containerd",
                 "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
        names = [n for n in order if n in pids] + [n for n in pids if n not in order]
        for name in names:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pids[name], signal.SIGTERM)
        end = time.monotonic() + 2  # a throwaway cluster: no graceful shutdown worth waiting for
        for name in names:
            while time.monotonic() < end and _alive(pids[name]):
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pids[name], signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pids[name], 0)
        self.pids.clear()
        if self.real_node:
            # Container processes, shims, chains, bridge, mounts, cgroups, sysctls; the dir goes last.
            left = load_realnode().cleanup(self.workdir)
            if left:
                print(f"rig: real-node clean-up incomplete: {'; '.join(left)}", file=sys.stderr)
            load_realnode().release_machine()
            return
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / "pids.json").unlink()

    # -- setup pieces --------------------------------------------------------------------------
    def _pki(self) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(exist_ok=True)

        def ssl_(*args: str) -> None:
            load_realnode().openssl(pki, *args)

        ssl_("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
             "-subj", "/CN=stackctl-test-ca")
        ssl_("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=kube-apiserver")
        (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
                                     "DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1,"
                                     "IP:10.244.0.1\n"  # realnode.NODE_IP
                                     "extendedKeyUsage=serverAuth\n")
        ssl_("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "30", "-extfile", "san.ext")
        ssl_("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "admin.key", "-out", "admin.csr",
             "-subj", "/O=system:masters/CN=admin-cert")
        (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
        ssl_("x509", "-req", "-in", "admin.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "admin.crt", "-days", "30", "-extfile", "client.ext")
        ssl_("genrsa", "-out", "sa.key", "2048")
        ssl_("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        (self.workdir / "tokens.csv").write_text(f"{self.token},admin,admin-uid,system:masters\n")

    def _write_kubeconfig(self) -> None:
        import base64

        pki = self.workdir / "pki"

        def b64(name: str) -> str:
            return base64.b64encode((pki / name).read_bytes()).decode()

        credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                                 "status": {"token": self.token}})
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "rig", "cluster": {"server": self.server,
                                                     "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": "admin", "user": {"token": self.token}},
                      {"name": "admin-cert", "user": {"client-certificate-data": b64("admin.crt"),
                                                      "client-key-data": b64("admin.key")}},
                      {"name": "admin-exec", "user": {"exec": {
                          "apiVersion": "client.authentication.k8s.io/v1", "command": "sh",
                          "args": ["-c", f"echo '{credential}'"], "interactiveMode": "Never"}}}],
            "contexts": [{"name": c, "context": {"cluster": "rig", "user": "admin"}} for c in CONTEXTS]
            + [{"name": c, "context": {"cluster": "rig", "user": u}} for c, u in EXTRA_CONTEXTS.items()],
            "current-context": CONTEXTS[0],
        }
        self.kubeconfig.write_text(json.dumps(config, indent=1) + "\n")
        self.kubeconfig.chmod(0o600)

    def _stages(self) -> Path:
        """Upstream's fast stages, with pod-ready/pod-complete skipping simulated pods, plus ours."""
        import yaml

        src = self.bin_dir.parent / "stages" / "fast.yaml"
        docs = [d for d in yaml.safe_load_all(src.read_text()) if d]
        for doc in docs:
            if doc["metadata"]["name"] in ("pod-ready", "pod-complete"):
                doc["spec"]["selector"]["matchExpressions"].append(
                    {"key": f'.metadata.annotations["{SIM_ANNOTATION}"]', "operator": "DoesNotExist"})
        for extra in sorted((self.bin_dir.parent / "stages" / "volume" / "fast").glob("*.yaml")):
            docs.extend(d for d in yaml.safe_load_all(extra.read_text()) if d)  # PVCs of class kwok-volume bind
        docs.extend(_sim_stages())
        out = self.workdir / "stages.yaml"
        out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return out

    def request(self, method: str, path: str, body: Any = None, *, timeout: float = 10,
                content_type: str = "application/json") -> tuple[int, Any]:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type,
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def _wait_ready(self, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                status, body = self.request("GET", "/readyz", timeout=2)
                last = f"HTTP {status}: {str(body)[-200:]}"
                # /readyz lists `[+]... ok` lines even when failing; only the verdict counts.
                if status == 200 and str(body).strip().endswith("ok"):
                    return
            except (OSError, ssl.SSLError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RigError(f"kube-apiserver not ready in time ({last}); log: {self.log('kube-apiserver')}")

    def _node(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "annotations": {NODE_SELECTOR_ANNOTATION: "fake"},
                             "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": "amd64"}},
                "spec": {"taints": []},
                "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY}}
        status, resp = self.request("POST", "/api/v1/nodes", body)
        if status not in (201, 409):
            raise RigError(f"creating node {name} failed: HTTP {status}: {resp}")

    def _storage_class(self) -> None:
        """The default StorageClass: KWOK's volume stages provision and bind its claims."""
        body = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": STORAGE_CLASS,
                             "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "kwok.x-k8s.io/volume", "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate"}
        status, resp = self.request("POST", "/apis/storage.k8s.io/v1/storageclasses", body)
        if status not in (201, 409):
            raise RigError(f"creating the StorageClass failed: HTTP {status}: {resp}")

    def _wait_nodes(self, deadline: float) -> None:
        ready: list[str] = []
        while time.monotonic() < deadline:
            self._check_alive()
            status, body = self.request("GET", "/api/v1/nodes")
            if status == 200:
                ready = [n["metadata"]["name"] for n in body.get("items", [])
                         if any(c.get("type") == "Ready" and c.get("status") == "True"
                                for c in n.get("status", {}).get("conditions", []))]
                if len([n for n in ready if n.startswith("kwok-node-")]) >= self.kwok_nodes:
                    # the default ServiceAccount of `default` shows the controller-manager works
                    s, _ = self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
                    if s == 200:
                        return
            time.sleep(0.2)
        raise RigError(f"nodes not Ready in time (ready: {ready}); logs in {self.workdir / 'logs'}")

    def _check_alive(self) -> None:
        for name, pid in self.pids.items():
            if not _alive(pid):
                tail = ""
                with contextlib.suppress(OSError):
                    tail = "\n".join(self.log(name).read_text(errors="replace").splitlines()[-15:])
                raise RigError(f"{name} exited during start-up:\n{tail}")

    # -- helpers for tests ---------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}


def _alive(pid: int) -> bool:
    """Whether pid runs (a zombie counts as dead): one implementation, realnode's."""
    return bool(load_realnode().alive(pid))


# ---------------------------------------------------------------------------------------------
# Argo Rollouts (controller and CRDs from scripts/argo-rollouts.sh), for the argo-rollouts canary
# ---------------------------------------------------------------------------------------------
ARGO_SCRIPT = REPO / "scripts" / "argo-rollouts.sh"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def argo_rollouts_dir() -> Path:
    """The cached Argo Rollouts build (bin/rollouts-controller, crds/); built when missing."""
    proc = subprocess.run(["bash", str(ARGO_SCRIPT)], capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not (Path(lines[-1]) / "bin" / "rollouts-controller").is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RigError(f"scripts/argo-rollouts.sh failed (exit {proc.returncode}):\n{tail}")
    return Path(lines[-1])


@dataclass
class ArgoRollouts:
    """Argo Rollouts installed on a control plane: its CRDs, and its controller as a process."""

    plane: ControlPlane
    crds: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def install(cls, plane: ControlPlane, directory: Path, timeout: float = 60) -> ArgoRollouts:
        argo = cls(plane)
        try:
            argo._install(directory, time.monotonic() + timeout)
        except BaseException:
            argo.uninstall()
            raise
        return argo

    def _install(self, directory: Path, deadline: float) -> None:
        import yaml

        for path in sorted((directory / "crds").glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            status, data = self.plane.request("POST", CRD_PATH, crd)
            if status not in (201, 409):
                raise RigError(f"cannot create the CRD in {path.name}: HTTP {status}: {str(data)[:300]}")
            self.crds.append(crd["metadata"]["name"])
        for name in self.crds:  # established: the API server serves the kind
            while True:
                status, data = self.plane.request("GET", f"{CRD_PATH}/{name}")
                conds = {c["type"]: c["status"] for c in ((data or {}).get("status") or {}).get("conditions") or []}
                if status == 200 and conds.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise RigError(f"CRD {name} was not established in time")
                time.sleep(0.1)
        log = open(self.plane.log("rollouts-controller"), "wb")  # noqa: SIM115 - the child owns it
        health = free_port()
        try:
            self.proc = subprocess.Popen(
                [str(directory / "bin" / "rollouts-controller"), f"--kubeconfig={self.plane.kubeconfig}",
                 "--leader-elect=false", f"--metricsport={free_port()}", f"--healthzPort={health}",
                 "--loglevel=warn", "--qps=200", "--burst=400"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                close_fds=True)
        finally:
            log.close()
        while True:  # ready once its health endpoint answers
            if self.proc.poll() is not None:
                log = self.plane.log("rollouts-controller").read_text()
                raise RigError(f"rollouts-controller exited: {log[-500:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1).read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RigError("rollouts-controller did not become healthy in time") from None
                time.sleep(0.1)

    def uninstall(self) -> None:
        """Stop the controller and delete the CRDs (and with them every Rollout), waiting until gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for name in self.crds:
            self.plane.request("DELETE", f"{CRD_PATH}/{name}")
        end = time.monotonic() + 30
        for name in self.crds:
            while time.monotonic() < end and self.plane.request("GET", f"{CRD_PATH}/{name}")[0] == 200:
                time.sleep(0.1)
        self.crds.clear()


# ---------------------------------------------------------------------------------------------
# Simulated failures (KWOK stages)
# ---------------------------------------------------------------------------------------------
def _sim_stage(name: str, state: str, status_template: str, event: dict[str, str] | None,
               phase_in: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": [
            {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
            {"key": f'.metadata.annotations["{SIM_ANNOTATION}"]', "operator": "In", "values": [state]},
            {"key": ".status.phase", "operator": "In", "values": phase_in},
            {"key": ".spec.nodeName", "operator": "Exists"},
            {"key": f'.status.conditions.[] | select( .type == "{name}" ) | .status', "operator": "DoesNotExist"},
        ]},
        "next": {"statusTemplate": status_template},
    }
    if event:
        spec["next"]["event"] = event
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": f"sim-{state}"},
            "spec": spec}


_CONTAINERS = """
      {{{{ $now := Now }}}}
      conditions:
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        message: 'containers with unready status: [{{{{ range .spec.containers }}}}{{{{ .name }}}} {{{{ end }}}}]'
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: {marker}
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: false
{container}
      {{{{ end }}}}
      {{{{ with NodeIPWith .spec.nodeName }}}}
      hostIP: {{{{ . | Quote }}}}
      {{{{ end }}}}
      phase: {phase}
      startTime: {{{{ $now | Quote }}}}
"""


def _sim_stages() -> list[dict[str, Any]]:
    crash = """\
        restartCount: 5
        started: false
        lastState:
          terminated:
            exitCode: 1
            reason: Error
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
        state:
          waiting:
            reason: CrashLoopBackOff
            message: back-off 2m40s restarting failed container={{ .name }}"""
    pull = """\
        restartCount: 0
        started: false
        state:
          waiting:
            reason: ImagePullBackOff
            message: 'Back-off pulling image {{ .image | Quote }}: ErrImagePull: manifest unknown'"""
    unready = """\
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}"""
    failed = """\
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 3
            reason: Error
            message: 'migration failed: relation "items" already exists'
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}"""

    def tmpl(marker: str, container: str, phase: str) -> str:
        return _CONTAINERS.format(marker=marker, container=container, phase=phase)

    return [
        _sim_stage("SimCrash", "crashloop", tmpl("SimCrash", crash, "Running"),
                   {"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container"},
                   ["Pending"]),
        _sim_stage("SimPull", "imagepull", tmpl("SimPull", pull, "Pending"),
                   {"type": "Warning", "reason": "Failed",
                    "message": "Failed to pull image: rpc error: code = NotFound desc = manifest unknown"},
                   ["Pending"]),
        _sim_stage("SimUnready", "unready", tmpl("SimUnready", unready, "Running"),
                   {"type": "Warning", "reason": "Unhealthy",
                    "message": "Readiness probe failed: HTTP probe failed with statuscode: 503"},
                   ["Pending"]),
        _sim_stage("SimFail", "fail", tmpl("SimFail", failed, "Failed"), None, ["Pending"]),
    ]


# ---------------------------------------------------------------------------------------------
# Command line (scripts/k8s-cluster.sh)
# ---------------------------------------------------------------------------------------------
def _default_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / "stackctl-k8s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8s-cluster", description="A local Kubernetes cluster: etcd, "
                                     "kube-apiserver, controller-manager, scheduler, and KWOK nodes or one real node.")
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"state directory of a KWOK cluster (default: {_default_dir()}); with it, stop and "
                             "status look at that cluster only")
    parser.add_argument("--real-node", action="store_true",
                        help="one real node (containerd, kubelet, kube-proxy, CoreDNS, a loopback registry) "
                             "instead of KWOK nodes; state in the fixed realnode.STATE_DIR")
    parser.add_argument("--registry-port", type=int, default=5000,
                        help="port of the real node's loopback registry (default: %(default)s)")
    args = parser.parse_args(argv)
    real_state: Path = load_realnode().STATE_DIR
    explicit_dir = args.dir is not None
    args.dir = args.dir or _default_dir()
    if args.action == "start":
        state = real_state if args.real_node else args.dir
        if (state / "pids.json").is_file() and any(_alive(p) for p in _pids(state).values()):
            print(f"already running (state in {state}); `stop` it first", file=sys.stderr)
            return 1
        if state.exists() and not args.real_node:
            shutil.rmtree(state)
        t0 = time.monotonic()
        if args.real_node:
            print("# real node: building or checking the node binaries (a cold build takes ~25 min; "
                  "cached after that)", file=sys.stderr)
        try:
            rig = ControlPlane.start(workdir=state, detach=True, real_node=args.real_node,
                                     registry_port=args.registry_port, timeout=180)
        except (RigError, load_realnode().NodeError) as exc:
            print(f"k8s-cluster: error: {exc}", file=sys.stderr)
            return 1
        if args.real_node:
            (state / "real-node").write_text(rig.node.registry + "\n")
        what = f"1 real node, registry {rig.node.registry}" if args.real_node else f"{rig.kwok_nodes} KWOK nodes"
        print(f"# cluster up in {time.monotonic() - t0:.1f}s: {rig.server}, {what} "
              f"(contexts: {', '.join(CONTEXTS)}); logs in {state / 'logs'}", file=sys.stderr)
        print(f"export KUBECONFIG={rig.kubeconfig}")
        return 0
    states = [args.dir] if not args.real_node else []
    if args.real_node or (not explicit_dir and real_state.exists()):
        states.append(real_state)
    if args.action == "stop":
        stopped = False
        for state in states:
            if not state.exists():
                continue
            rig = ControlPlane(workdir=state, bin_dir=Path("."), owns_workdir=False,
                               real_node=state == real_state)
            rig.stop()
            shutil.rmtree(state, ignore_errors=True)
            stopped = True
            print(f"stopped ({state})", file=sys.stderr)
        if not stopped:
            print("not running", file=sys.stderr)
        return 0
    code = 1
    for state in states:
        pids = _pids(state)
        if not pids:
            continue
        print(f"# {state}" + (f" (real node, registry {(state / 'real-node').read_text().strip()})"
                              if (state / "real-node").is_file() else ""))
        for name, pid in pids.items():
            print(f"{name:<24} pid {pid:<8} {'running' if _alive(pid) else 'DEAD'}")
        print(f"export KUBECONFIG={state / 'kubeconfig'}")
        code = 0 if all(_alive(p) for p in pids.values()) else 1
    if code and not any(_pids(s) for s in states):
        print("not running")
    return code


def _pids(state: Path) -> dict[str, int]:
    try:
        return dict(json.loads((state / "pids.json").read_text()))
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())
