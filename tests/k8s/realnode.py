"""A real Kubernetes node for the rig: containerd + runc + kubelet + kube-proxy + CoreDNS on this machine.

Pods on it are real containers (runc), probes are real, Services go through kube-proxy's iptables
rules, names resolve through CoreDNS, Secrets are mounted by the kubelet. Used by tests/k8s/rig.py
when a control plane is started with `real_node=True` (`scripts/k8s-cluster.sh start --real-node`).

Host layout (see ../shared/REFERENCE.md §2b for why each piece is as it is):

    bridge stkbr0 10.244.0.1/24   the pod network; 10.244.0.1 is also the node IP: the API server,
                                  kubelet, kube-proxy and CoreDNS bind to it or to loopback, never to
                                  the machine's external interface
    10.96.0.0/16                  Service CIDR, blackholed: a Service IP without kube-proxy rules is
                                  never routed out of the machine
    STACKCTL-GUARD (filter, mangle FORWARD, IPv4 and IPv6): anything from the pod bridge to any other
                                  interface is rejected (filter) and dropped (mangle, which nothing
                                  else on the machine writes to, so no later rule can come before it)
    CoreDNS on 10.244.0.1:53      kubernetes plugin only, no `forward`: outside names do not resolve
    docker-registry 127.0.0.1:P   the loopback registry containerd pulls from over plain HTTP

Everything the node writes lives in one state directory (STATE_DIR, fixed because only one real node
can exist per machine: the bridge, the chains and kube-proxy's rules are machine-wide). `cleanup()`
is complete and idempotent: it kills what is left of a previous run (a crashed one included), removes
our iptables chains and Kubernetes' KUBE-*/CNI-* chains (never Docker's), the bridge and the route,
unmounts everything under the state directory, removes the kubepods cgroups, and restores the
sysctls the kubelet changes. The Docker engine's containers, images and rules are never touched.

Images: nothing can be pulled from outside, so the sandbox image (the `pause` binary built by
scripts/k8s-node-binaries.sh, FROM scratch) and stackctl's default wait image (`busybox:1.37`; here
a Debian image with netcat-openbsd, whose `nc -z` the wait init containers use) are built with the
local Docker engine and imported into containerd under the names the node asks for.

Standard library only (plus PyYAML where the rig already uses it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NODE_SCRIPT = REPO / "scripts" / "k8s-node-binaries.sh"
STATE_DIR = Path(os.environ.get("STACKCTL_REALNODE_DIR") or "/var/tmp/stackctl-realnode")

NODE_NAME = "stackctl-node"
BRIDGE = "stkbr0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
GUARD = "STACKCTL-GUARD"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
WAIT_IMAGE = "docker.io/library/busybox:1.37"  # stackctl's default kubernetes.wait_image
STORAGE_CLASS = "stackctl-local"
PROVISIONER = "stackctl.io/hostpath"
# What the kubelet rewrites at start (protectKernelDefaults: false), plus what routing pods needs.
SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward",
           "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
NODE_PROCESSES = ("provisioner", "coredns", "kube-proxy", "kubelet", "registry", "containerd")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class NodeError(RuntimeError):
    pass


def node_binaries() -> Path:
    """The cached node build (bin/, cni/); scripts/k8s-node-binaries.sh builds it when missing."""
    explicit = os.environ.get("STACKCTL_NODE_DIR")
    if explicit:
        return Path(explicit)
    proc = subprocess.run(["bash", str(NODE_SCRIPT)], capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not (Path(lines[-1]) / "bin" / "kubelet").is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise NodeError(f"scripts/k8s-node-binaries.sh failed (exit {proc.returncode}):\n{tail}")
    return Path(lines[-1])


def missing_prerequisites() -> str | None:
    """Why this machine cannot run a real node (None when it can)."""
    if os.geteuid() != 0:
        return "a real node needs root (bridge, iptables, mounts, cgroups)"
    for tool in ("ip", "iptables", "ip6tables", "mount", "docker", "docker-registry", "openssl"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/setup.sh installs what a real node needs)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers (needed to build the node's pause and wait images)"
    return None


# ------------------------------------------------------------------------------------------------
# small host helpers
# ------------------------------------------------------------------------------------------------
def run(*argv: str, check: bool = True, input: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(list(argv), capture_output=True, input=input, env=env)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(argv[:6])} failed (exit {proc.returncode}): "
                        f"{proc.stderr.decode(errors='replace').strip()[-600:]}")
    return proc


def free_port() -> int:
    """A TCP port free on loopback now (used by the rig too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openssl(cwd: Path, *args: str) -> None:
    """Run openssl in cwd (the rig's PKI directory); NodeError with its message when it fails."""
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise NodeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    out = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            out[name] = sysctl_path(name).read_text().strip()
    return out


def write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        if sysctl_path(name).read_text().strip() != value:
            sysctl_path(name).write_text(value + "\n")


def iptables_chains(tool: str, table: str) -> list[str]:
    proc = run(tool, "-w", "5", "-t", table, "-S", check=False)
    return [line.split()[1] for line in proc.stdout.decode().splitlines() if line.startswith("-N ")]


def iptables_rules(tool: str, table: str, chain: str) -> list[str]:
    proc = run(tool, "-w", "5", "-t", table, "-S", chain, check=False)
    return [line for line in proc.stdout.decode().splitlines() if line.startswith("-A ")]


def ours(chain: str) -> bool:
    """Chains this node's components create: ours, Kubernetes' (kubelet, kube-proxy) and CNI's.
    Docker's (DOCKER*) never match."""
    return chain == GUARD or chain.startswith(("KUBE-", "CNI-"))


def remove_chains(tool: str) -> None:
    """Delete every rule that jumps to one of our chains from a built-in chain, then the chains."""
    for table in ("filter", "nat", "mangle", "raw"):
        chains = [c for c in iptables_chains(tool, table) if ours(c)]
        if not chains:
            continue
        # Rules in non-ours chains (built-ins, Docker's) that jump to ours.
        for builtin in ("INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"):
            for rule in iptables_rules(tool, table, builtin):
                parts = shlex.split(rule)  # comments are quoted: --comment "CNI firewall plugin rules"
                if ("-j" in parts and ours(parts[parts.index("-j") + 1])) or ("-g" in parts and ours(
                        parts[parts.index("-g") + 1])):
                    run(tool, "-w", "5", "-t", table, "-D", *parts[1:], check=False)
        for chain in chains:
            run(tool, "-w", "5", "-t", table, "-F", chain, check=False)
        for chain in chains:
            run(tool, "-w", "5", "-t", table, "-X", chain, check=False)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1].replace("\\040", " ")
            if target == prefix or target.startswith(prefix + "/"):
                out.append(target)
    return out


def unmount_all(path: Path) -> list[str]:
    """Unmount everything at or below path, deepest first; returns what is still mounted."""
    for _ in range(5):
        targets = sorted(mounts_under(path), key=lambda t: t.count("/"), reverse=True)
        if not targets:
            return []
        for target in targets:
            if run("umount", target, check=False).returncode != 0:
                run("umount", "-l", target, check=False)
    return mounts_under(path)


def kubepods_cgroups() -> list[Path]:
    """Every kubepods cgroup the kubelet made (all v1 hierarchies, or the v2 tree), deepest first."""
    found: list[Path] = []
    roots = [p for p in CGROUP_ROOT.iterdir() if p.is_dir()] if CGROUP_ROOT.is_dir() else []
    roots.append(CGROUP_ROOT)
    for root in roots:
        for name in ("kubepods", "kubepods.slice"):
            top = root / name
            if top.is_dir():
                found.extend(Path(p) for p, _, _ in os.walk(top))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def kill_cgroup_processes() -> None:
    for _ in range(20):
        pids = set()
        for cg in kubepods_cgroups():
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (cg / "cgroup.procs").read_text().split())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_cgroups() -> list[Path]:
    left = []
    for cg in kubepods_cgroups():
        for _ in range(20):
            try:
                cg.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
        else:
            left.append(cg)
    return left


def processes_of(paths: list[str]) -> list[int]:
    """PIDs whose executable is one of paths (our containerd shims, left running by a crashed run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            exe = os.readlink(entry / "exe")
            if exe.removesuffix(" (deleted)") in paths:
                found.append(int(entry.name))
    return found


def kill_pid(pid: int, grace: float = 3) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and alive(pid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def alive(pid: int) -> bool:
    """Whether pid runs; a zombie counts as dead (used by the rig too)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


# ------------------------------------------------------------------------------------------------
# one real node per machine
# ------------------------------------------------------------------------------------------------
LOCK_FILE = Path(os.environ.get("STACKCTL_REALNODE_LOCK") or "/var/tmp/stackctl-realnode.lock")
_lock_fd: int | None = None


def acquire_machine(timeout: float = 1800, *, log: Callable[[str], None] = lambda _m: None) -> None:
    """Hold the machine's real-node lock (an exclusive flock) for the node's lifetime.

    The node uses fixed names (STATE_DIR, the bridge, the guard chains, the registry port), and a
    start cleans up whatever is there first, so two users at once (a test run, a benchmark, a demo)
    would destroy each other's node. The second one waits here instead, up to `timeout` seconds. The
    kernel drops the lock when the holder exits, crashed or not; `release_machine()` drops it sooner.
    Reentrant within a process."""
    global _lock_fd
    if _lock_fd is not None:
        return
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    end = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > end:
                os.close(fd)
                raise NodeError(f"another real node has held {LOCK_FILE} for {timeout:.0f} s; "
                                "one real node per machine (is a test run or benchmark still going?)") from None
            if not told:
                log(f"waiting for the real node in use by another process ({LOCK_FILE})")
                told = True
            time.sleep(1)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _lock_fd = fd


def release_machine() -> None:
    global _lock_fd
    if _lock_fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(_lock_fd, fcntl.LOCK_UN)
            os.close(_lock_fd)
        _lock_fd = None


# ------------------------------------------------------------------------------------------------
# clean-up (also of a crashed run)
# ------------------------------------------------------------------------------------------------
def cleanup(state: Path = STATE_DIR, *, log: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Remove everything a real node (this run's or a crashed one's) left on the machine.
    Idempotent. Returns what could not be removed (empty when the machine is clean)."""
    problems: list[str] = []
    pids_file = state / "pids.json"
    pids: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        pids = json.loads(pids_file.read_text())
    # kubelet first (it would restart containers), then every container process, then the shims.
    for name in ("kubelet", "provisioner", "coredns", "kube-proxy", "registry"):
        if name in pids and alive(pids[name]):
            kill_pid(pids[name], grace=1)
    kill_cgroup_processes()
    node_bin = _recorded_bin(state)
    if node_bin:
        for pid in processes_of([str(node_bin / "containerd-shim-runc-v2")]):
            kill_pid(pid, grace=0.5)
    if "containerd" in pids and alive(pids["containerd"]):
        kill_pid(pids["containerd"], grace=3)
    # kube-proxy's own clean-up, then every KUBE-*/CNI-* chain and our guard (IPv4 and IPv6).
    if node_bin and (node_bin / "kube-proxy").is_file():
        run(str(node_bin / "kube-proxy"), "--cleanup", "--v=0", check=False)
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool):
            remove_chains(tool)
    run("ip", "route", "del", "blackhole", SERVICE_CIDR, check=False)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        run("ip", "link", "del", BRIDGE, check=False)
    # veth ends of pods whose CNI DEL never ran go with their network namespaces (unmounted below).
    left = unmount_all(state)
    if left:
        problems.append(f"still mounted: {', '.join(left[:5])}")
    left_cg = remove_cgroups()
    if left_cg:
        problems.append(f"cgroups not removed: {', '.join(map(str, left_cg[:5]))}")
    saved = state / "sysctls.json"
    if saved.is_file():
        with contextlib.suppress(OSError, ValueError):
            for name, value in json.loads(saved.read_text()).items():
                write_sysctl(name, value)
    if state.exists() and not mounts_under(state):
        shutil.rmtree(state, ignore_errors=True)
    elif state.exists():
        problems.append(f"{state} kept: mounts remain below it")
    log("real node cleaned up" if not problems else f"real node clean-up incomplete: {problems}")
    return problems


def _recorded_bin(state: Path) -> Path | None:
    with contextlib.suppress(OSError):
        return Path((state / "node-bin").read_text().strip())
    return None


def leftovers(state: Path = STATE_DIR) -> list[str]:
    """What of a real node is still on the machine (for tests that prove clean-up is complete)."""
    found = []
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        found.append(f"bridge {BRIDGE}")
    routes = run("ip", "route", "show", "type", "blackhole", check=False).stdout.decode()
    if SERVICE_CIDR in routes:
        found.append(f"route blackhole {SERVICE_CIDR}")
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            found.extend(f"{tool} -t {table} chain {c}" for c in iptables_chains(tool, table) if ours(c))
    found.extend(f"mount {m}" for m in mounts_under(state))
    found.extend(f"cgroup {c}" for c in kubepods_cgroups())
    node_bin = _recorded_bin(state)
    for path in ([str(node_bin / b) for b in ("containerd", "containerd-shim-runc-v2", "kubelet", "kube-proxy",
                                                "coredns")] if node_bin else []):
        found.extend(f"process {pid} ({Path(path).name})" for pid in processes_of([path]))
    if state.exists():
        found.append(f"directory {state}")
    return found


# ------------------------------------------------------------------------------------------------
# the node
# ------------------------------------------------------------------------------------------------
@dataclass
class RealNode:
    """One real node joined to `plane` (a tests/k8s/rig.py ControlPlane bound to NODE_IP)."""

    plane: Any
    node_dir: Path
    spawn: Callable[..., None]  # spawn(name, argv, env=None): the rig's process starter (pids.json)
    registry_port: int
    state: Path = STATE_DIR
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.node_dir / "bin"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def socket(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    # -- host network (before the API server, which binds to NODE_IP) ----------------------------
    @staticmethod
    def prepare_host(state: Path = STATE_DIR) -> None:
        """Save the sysctls, create the bridge with the node IP, the guard and the blackhole route."""
        state.mkdir(parents=True, exist_ok=True)
        saved = state / "sysctls.json"
        if not saved.exists():
            saved.write_text(json.dumps(read_sysctls(), indent=1))
        write_sysctl("net.ipv4.ip_forward", "1")
        for name in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            write_sysctl(name, "1")
        if not Path(f"/sys/class/net/{BRIDGE}").exists():
            run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "replace", f"{NODE_IP}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        run("ip", "route", "replace", "blackhole", SERVICE_CIDR)
        for tool in ("iptables", "ip6tables"):
            for table, target in (("filter", ["REJECT"]), ("mangle", ["DROP"])):
                if GUARD not in iptables_chains(tool, table):
                    run(tool, "-w", "5", "-t", table, "-N", GUARD)
                run(tool, "-w", "5", "-t", table, "-F", GUARD)
                # Nothing that comes in on the pod bridge may leave on another interface (what a pod
                # sends to the host itself is local delivery, not forwarding: DNS, the API server).
                run(tool, "-w", "5", "-t", table, "-A", GUARD, "-i", BRIDGE, "!", "-o", BRIDGE, "-j", *target)
                jump = ["FORWARD", "-j", GUARD]
                if run(tool, "-w", "5", "-t", table, "-C", *jump, check=False).returncode != 0:
                    run(tool, "-w", "5", "-t", table, "-I", *jump[:1], "1", *jump[1:])

    # -- start ---------------------------------------------------------------------------------
    def start(self, deadline: float) -> None:
        (self.state / "node-bin").write_text(str(self.bin))
        self._pki()
        self._start_registry()
        self._start_containerd(deadline)
        self._load_images(deadline)
        self._cni()
        self._start_kubelet()
        self._start_kube_proxy()
        self._dns()
        self._start_coredns()
        self._storage()
        self._wait_node(deadline)
        self._wait_dns(deadline)

    def _path(self, *parts: str) -> Path:
        p = self.state.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def _pki(self) -> None:
        pki = self.plane.workdir / "pki"

        def ssl_(*args: str) -> None:
            openssl(pki, *args)

        # The kubelet's client identity (Node authorizer + NodeRestriction) and its serving cert.
        ssl_("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "kubelet.key", "-out", "kubelet.csr",
             "-subj", f"/O=system:nodes/CN=system:node:{NODE_NAME}")
        (pki / "kubelet.ext").write_text(f"subjectAltName=IP:{NODE_IP},DNS:{NODE_NAME}\n"
                                         "extendedKeyUsage=clientAuth,serverAuth\n")
        ssl_("x509", "-req", "-in", "kubelet.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "kubelet.crt", "-days", "30", "-extfile", "kubelet.ext")
        kc = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "rig", "cluster": {"server": self.plane.server,
                                                     "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": "kubelet", "user": {"client-certificate": str(pki / "kubelet.crt"),
                                                   "client-key": str(pki / "kubelet.key")}}],
            "contexts": [{"name": "kubelet", "context": {"cluster": "rig", "user": "kubelet"}}],
            "current-context": "kubelet",
        }
        self._path("kubelet.kubeconfig").write_text(json.dumps(kc, indent=1))

    def _start_registry(self) -> None:
        data = self._path("registry", "data")
        data.mkdir(exist_ok=True)
        config = self._path("registry", "config.yml")
        config.write_text("version: 0.1\nlog: {level: warn}\n"
                          f"storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}\n"
                          f"http: {{addr: 127.0.0.1:{self.registry_port}}}\n")
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the registry does: TIME_WAIT is no owner
            try:
                s.bind(("127.0.0.1", self.registry_port))
            except OSError:
                raise NodeError(f"127.0.0.1:{self.registry_port} is already in use: the node's registry needs "
                                "it (stop what listens there, or pick another port)") from None
        self.spawn("registry", [shutil.which("docker-registry") or "docker-registry", "serve", str(config)])
        self.trust_registry(self.registry)

    def trust_registry(self, host: str) -> None:
        """Let containerd pull from an HTTP registry on loopback (hosts.toml under config_path)."""
        hosts = self._path("containerd", "certs.d", host, "hosts.toml")
        hosts.write_text(f'server = "http://{host}"\n\n[host."http://{host}"]\n'
                         '  capabilities = ["pull", "resolve"]\n  skip_verify = true\n')

    def _start_containerd(self, deadline: float) -> None:
        cd = self.state / "containerd"
        cni_conf = self._path("cni", "net.d", "x").parent
        cni_conf.mkdir(parents=True, exist_ok=True)
        config = f"""\
version = 3
root = "{cd / 'root'}"
state = "{cd / 'state'}"
temp = "{cd / 'tmp'}"
imports = []
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{cd / 'containerd.sock'}"

[ttrpc]
  address = "{cd / 'containerd.sock.ttrpc'}"

[debug]
  address = ""
  level = "warn"

[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = "{cd / 'opt'}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{PAUSE_IMAGE}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{cd / 'certs.d'}"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{self.bin / 'runc'}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{self.node_dir / 'cni'}"]
    conf_dir = "{cni_conf}"
"""
        path = self._path("containerd", "config.toml")
        path.write_text(config)
        # containerd finds containerd-shim-runc-v2 on its PATH.
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}
        self.spawn("containerd", [str(self.bin / "containerd"), "--config", str(path)], env)
        while not self.socket.exists() or self.ctr("version", check=False).returncode != 0:
            self._check(deadline, "containerd")
            time.sleep(0.1)

    def ctr(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return run(str(self.bin / "ctr"), "--address", str(self.socket), "--namespace", "k8s.io", *args,
                   check=check, input=input)

    def _load_images(self, deadline: float) -> None:
        for name, builder in ((PAUSE_IMAGE, self._pause_image), (WAIT_IMAGE, self._wait_image)):
            local = builder()
            saved = run("docker", "save", local).stdout
            self.ctr("images", "import", "-", input=saved)
            self.ctr("images", "tag", "--force", _normal(local), name)
            self._check(deadline, "containerd")

    def _pause_image(self) -> str:
        """FROM scratch + the static pause binary; tagged by the binary's size+mtime (rebuilt when it changes)."""
        pause = self.bin / "pause"
        st = pause.stat()
        tag = f"stackctl-rig/pause:{st.st_size:x}{int(st.st_mtime):x}"
        if run("docker", "image", "inspect", tag, check=False).returncode != 0:
            ctx = self._path("images", "pause", "Dockerfile").parent
            shutil.copy2(pause, ctx / "pause")
            (ctx / "Dockerfile").write_text('FROM scratch\nCOPY pause /pause\nUSER 65535:65535\n'
                                            'ENTRYPOINT ["/pause"]\n')
            run("docker", "build", "-q", "-t", tag, str(ctx))
        return tag

    @staticmethod
    def _wait_image() -> str:
        """Debian + netcat-openbsd: `sh` and an `nc -z` for stackctl's wait-for init containers."""
        tag = "stackctl-rig/wait:1"
        if run("docker", "image", "inspect", tag, check=False).returncode != 0:
            dockerfile = ("FROM debian:bookworm-slim\n"
                          "RUN apt-get update && apt-get install -y --no-install-recommends netcat-openbsd "
                          "&& rm -rf /var/lib/apt/lists/*\n")
            run("docker", "build", "-q", "-t", tag, "-", input=dockerfile.encode())
        return tag

    def _cni(self) -> None:
        conf = {
            "cniVersion": "1.0.0", "name": "stackctl",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.state / "cni" / "ipam")}},
                # Docker sets FORWARD's policy to DROP: this lets pod traffic through (after our guard).
                {"type": "firewall", "backend": "iptables"},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        self._path("cni", "net.d", "10-stackctl.conflist").write_text(json.dumps(conf, indent=1))

    def _start_kubelet(self) -> None:
        pki = self.plane.workdir / "pki"
        self.ports["kubelet"] = free_port()
        self.ports["kubelet-healthz"] = free_port()
        resolv = self._path("resolv.conf")
        resolv.write_text("# no upstream resolvers: pods resolve cluster names only\n")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "failCgroupV1": False, "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": NODE_IP, "port": self.ports["kubelet"], "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": self.ports["kubelet-healthz"],
            "tlsCertFile": str(pki / "kubelet.crt"), "tlsPrivateKeyFile": str(pki / "kubelet.key"),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "clusterDomain": CLUSTER_DOMAIN, "clusterDNS": [DNS_IP], "resolvConf": str(resolv),
            "failSwapOn": False,
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99, "imageMaximumGCAge": "0s",
            "evictionHard": {"memory.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%",
                             "imagefs.available": "0%", "imagefs.inodesFree": "0%", "pid.available": "0%"},
            "podLogsDir": str(self.state / "pod-logs"),
            "serializeImagePulls": False,
            "syncFrequency": "10s",  # Secret/ConfigMap volumes refresh within seconds, as on small clusters
            "nodeStatusUpdateFrequency": "4s",
            "maxPods": 110,
            "protectKernelDefaults": False,
            "staticPodPath": "",
            "shutdownGracePeriod": "0s",
        }
        path = self._path("kubelet", "config.yaml")
        path.write_text(json.dumps(config, indent=1))
        (self.state / "pod-logs").mkdir(exist_ok=True)
        self.spawn("kubelet", [
            str(self.bin / "kubelet"), f"--config={path}", f"--kubeconfig={self.state / 'kubelet.kubeconfig'}",
            f"--root-dir={self.state / 'kubelet' / 'root'}", f"--cert-dir={self.state / 'kubelet' / 'pki'}",
            f"--node-ip={NODE_IP}", f"--hostname-override={NODE_NAME}", "--v=1",
        ])

    def _start_kube_proxy(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.plane.kubeconfig)},
            "mode": "iptables", "clusterCIDR": POD_CIDR, "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "nodePortAddresses": [f"{NODE_IP}/32"],
            # 0 everywhere: kube-proxy leaves the machine's conntrack sysctls alone.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
                          "udpTimeout": "0s", "udpStreamTimeout": "0s"},
            "iptables": {"localhostNodePorts": False, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        }
        path = self._path("kube-proxy", "config.yaml")
        path.write_text(json.dumps(config, indent=1))
        self.spawn("kube-proxy", [str(self.bin / "kube-proxy"), f"--config={path}", "--v=0"])

    def _dns(self) -> None:
        """kube-dns: a Service whose endpoint is the CoreDNS process on the node IP."""
        ns = "kube-system"
        svc = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": ns, "labels": {"k8s-app": "kube-dns"}},
               "spec": {"clusterIP": DNS_IP, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                       {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}
        eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "kube-dns-node", "namespace": ns,
                            "labels": {"kubernetes.io/service-name": "kube-dns",
                                       "endpointslice.kubernetes.io/managed-by": "stackctl-rig"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
               "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                         {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}
        for path, body in (("/api/v1/namespaces/kube-system/services", svc),
                           ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", eps)):
            status, resp = self.plane.request("POST", path, body)
            if status not in (201, 409):
                raise NodeError(f"creating {body['kind']} kube-dns failed: HTTP {status}: {resp}")

    def _start_coredns(self) -> None:
        self.ports["coredns-health"] = free_port()
        corefile = f"""\
.:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{self.ports['coredns-health']}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {self.plane.kubeconfig} stackctl-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""
        # No `forward`: a name outside the cluster gets no answer from anywhere (network guard).
        path = self._path("coredns", "Corefile")
        path.write_text(corefile)
        self.spawn("coredns", [str(self.bin / "coredns"), "-conf", str(path)])

    def _storage(self) -> None:
        body = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": STORAGE_CLASS,
                             "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}
        status, resp = self.plane.request("POST", "/apis/storage.k8s.io/v1/storageclasses", body)
        if status not in (201, 409):
            raise NodeError(f"creating the StorageClass failed: HTTP {status}: {resp}")
        volumes = self._path("volumes", "x").parent
        volumes.mkdir(exist_ok=True)
        self.spawn("provisioner", [sys.executable, str(Path(__file__)), "provisioner",
                                   str(self.plane.workdir), str(volumes)])

    # -- waiting -------------------------------------------------------------------------------
    def _check(self, deadline: float, what: str) -> None:
        self.plane._check_alive()
        if time.monotonic() > deadline:
            raise NodeError(f"{what} not ready in time; logs in {self.plane.workdir / 'logs'}")

    def _wait_node(self, deadline: float) -> None:
        while True:
            status, node = self.plane.request("GET", f"/api/v1/nodes/{NODE_NAME}")
            conds = {c["type"]: c["status"] for c in ((node or {}).get("status") or {}).get("conditions") or []} \
                if status == 200 else {}
            if conds.get("Ready") == "True":
                return
            self._check(deadline, f"node {NODE_NAME} (conditions {conds})")
            time.sleep(0.2)

    def _wait_dns(self, deadline: float) -> None:
        port = self.ports["coredns-health"]
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                return
            except OSError:
                self._check(deadline, "CoreDNS")
                time.sleep(0.1)


def _normal(ref: str) -> str:
    """What containerd calls a Docker-style reference (docker.io/<repo>:tag)."""
    name = ref.split("/", 1)[0]
    if "/" in ref and ("." in name or ":" in name or name == "localhost"):
        return ref
    if "/" not in ref:
        ref = f"library/{ref}"
    return f"docker.io/{ref}"


# ------------------------------------------------------------------------------------------------
# the hostPath provisioner (a process of the rig: python realnode.py provisioner WORKDIR VOLUMES)
# ------------------------------------------------------------------------------------------------
def provisioner(workdir: Path, volumes: Path) -> None:
    """Bind claims of STORAGE_CLASS to hostPath PVs under `volumes` (created on demand once the
    scheduler picked the node, deleted with the claim): what local-path provisioners do."""
    kubeconfig = json.loads((workdir / "kubeconfig").read_text())
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    token = kubeconfig["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(cafile=str(workdir / "pki" / "ca.crt"))

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None

    while True:
        try:
            _, claims = call("GET", "/api/v1/persistentvolumeclaims")
            for pvc in (claims or {}).get("items", []):
                meta, spec = pvc["metadata"], pvc["spec"]
                node = (meta.get("annotations") or {}).get("volume.kubernetes.io/selected-node")
                if spec.get("storageClassName") != STORAGE_CLASS or spec.get("volumeName") or not node:
                    continue
                name = f"pvc-{meta['uid']}"
                path = volumes / f"{meta['namespace']}-{meta['name']}-{meta['uid'][:8]}"
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(0o777)  # any uid the pod runs as can write, as local-path provisioners do
                pv = {"apiVersion": "v1", "kind": "PersistentVolume",
                      "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                      "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                               "accessModes": spec["accessModes"], "storageClassName": STORAGE_CLASS,
                               "persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Filesystem",
                               "hostPath": {"path": str(path), "type": "Directory"},
                               "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                            "namespace": meta["namespace"], "name": meta["name"],
                                            "uid": meta["uid"]},
                               "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                                   {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}
                call("POST", "/api/v1/persistentvolumes", pv)
            _, pvs = call("GET", "/api/v1/persistentvolumes")
            for pv in (pvs or {}).get("items", []):
                meta, spec = pv["metadata"], pv["spec"]
                if (meta.get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                    continue
                if (pv.get("status") or {}).get("phase") in ("Released", "Failed") \
                        and spec.get("persistentVolumeReclaimPolicy") == "Delete":
                    path = Path(spec["hostPath"]["path"])
                    if path.parent == volumes:
                        shutil.rmtree(path, ignore_errors=True)
                    call("DELETE", f"/api/v1/persistentvolumes/{meta['name']}")
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "provisioner":
        with contextlib.suppress(KeyboardInterrupt):
            provisioner(Path(sys.argv[2]), Path(sys.argv[3]))
        sys.exit(0)
    if len(sys.argv) >= 2 and sys.argv[1] == "cleanup":
        left = cleanup(log=print)
        sys.exit(1 if left else 0)
    if len(sys.argv) >= 2 and sys.argv[1] == "leftovers":
        found = leftovers()
        print("\n".join(found) or "nothing left")
        sys.exit(1 if found else 0)
    print("usage: realnode.py provisioner WORKDIR VOLUMES | cleanup | leftovers", file=sys.stderr)
    sys.exit(2)
