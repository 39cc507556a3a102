"""The small translations the Kubernetes renderer is built from (stackctl.kubernetes.render.mapping and
stackctl.kubernetes.names), and how it maps the Compose security fields (cap_add, cap_drop, privileged, sysctls)."""

from __future__ import annotations

from typing import Any

import pytest

from stackctl.compose.loader import to_model
from stackctl.kubernetes import names as k
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.render import Rendered, capabilities, mapping, render
from stackctl.kubernetes.validate import validate
from stackctl.profile.types import KubernetesSettings, Placement, ServiceOverride


@pytest.mark.parametrize(("argv", "expected"), [
    (["curl", "-f", "http://localhost:8000/health"], mapping.HttpCheck(8000, "/health")),
    (["curl", "-fsS", "http://localhost:8000/ready"], mapping.HttpCheck(8000, "/ready")),
    (["curl", "--fail", "--silent", "http://127.0.0.1/"], mapping.HttpCheck(80, "/")),
    (["curl", "-fk", "https://localhost:8443/health/ready"], mapping.HttpCheck(8443, "/health/ready", "HTTPS")),
    (["curl", "-f", "-H", "Host: api.local", "http://localhost:3000/ping?full=1"],
     mapping.HttpCheck(3000, "/ping?full=1", headers=(("Host", "api.local"),))),
    (["curl", "-f", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost:9090/-/healthy"],
     mapping.HttpCheck(9090, "/-/healthy")),
    (["/bin/sh", "-c", "curl -f http://localhost:8080/actuator/health || exit 1"],
     mapping.HttpCheck(8080, "/actuator/health")),
    (["wget", "-q", "--spider", "http://localhost:3000/api/health"], mapping.HttpCheck(3000, "/api/health")),
    (["wget", "--no-verbose", "--tries=1", "--spider", "http://localhost:9093/-/healthy"],
     mapping.HttpCheck(9093, "/-/healthy")),
    (["wget", "-qO-", "http://127.0.0.1:5601/api/status"], mapping.HttpCheck(5601, "/api/status")),
    (["wget", "-qO", "/dev/null", "http://localhost:8080/"], mapping.HttpCheck(8080, "/")),
    (["/usr/bin/curl", "-f", "http://0.0.0.0:80"], mapping.HttpCheck(80, "/")),
])
def test_local_http_checks_become_http_get(argv: list[str], expected: mapping.HttpCheck) -> None:
    assert mapping.http_check(argv) == expected


@pytest.mark.parametrize("argv", [
    ["curl", "http://localhost:8000/health"],  # no --fail: curl succeeds on a 500, httpGet would not
    ["curl", "-f", "http://db:5432/"],  # not local: checks another service
    ["curl", "-f", "-X", "POST", "http://localhost/graphql"],  # changes the request
    ["curl", "-f", "-u", "admin:pw", "http://localhost/"],
    ["/bin/sh", "-c", "curl -f http://localhost/ && test -f /tmp/ready"],
    ["/bin/sh", "-c", "wget -qO- http://localhost/ | grep ok"],
    ["pg_isready", "-U", "postgres"],
    ["redis-cli", "ping"],
    ["curl", "-f", "localhost:8000"],  # no scheme
])
def test_other_checks_stay_commands(argv: list[str]) -> None:
    assert mapping.http_check(argv) is None


@pytest.mark.parametrize(("cores", "text"), [(0.5, "500m"), (1.0, "1"), (2.5, "2500m"), (0.25, "250m"),
                                             (0.0001, "1m"), (4, "4"), (0.1, "100m"), (1.5, "1500m")])
def test_cpu_quantity(cores: float, text: str) -> None:
    assert mapping.cpu_quantity(cores) == text


@pytest.mark.parametrize(("size", "text"), [(268435456, "256Mi"), (2**30, "1Gi"), (1536 * 2**20, "1536Mi"),
                                            (500 * 10**6, "500M"), (1000, "1k"), (1023, "1023"),
                                            (5 * 2**40, "5Ti")])
def test_memory_quantity(size: int, text: str) -> None:
    assert mapping.memory_quantity(size) == text


@pytest.mark.parametrize(("text", "expected"), [
    ("web", "web"), ("my_db", "my-db"), ("API.v2", "api-v2"), ("__x__", "x"), ("a" * 70, None)])
def test_dns_label(text: str, expected: str | None) -> None:
    if expected is None:
        out = k.dns_label(text)
        assert out is not None and len(out) <= 63 and k.DNS1123_LABEL.match(out)
    else:
        assert k.dns_label(text) == expected


def test_service_names_must_start_with_a_letter() -> None:
    assert k.service_name("1web") is None
    assert k.service_name("web1") == "web1"


def test_with_suffix_keeps_names_short_and_distinct() -> None:
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    assert k.with_suffix("db", "headless") == "db-headless"
    assert len(k.with_suffix(long_a, "headless")) <= 63
    assert k.with_suffix(long_a, "headless") != k.with_suffix(long_b, "headless")


@pytest.mark.parametrize(("port", "proto", "given", "expected"), [
    (8000, "TCP", None, "tcp-8000"), (53, "UDP", None, "udp-53"), (80, "TCP", "web", "web"),
    (80, "TCP", "a-very-long-port-name", "tcp-80"), (80, "TCP", "8080", "tcp-80"), (80, "TCP", "HTTP", "http")])
def test_port_name(port: int, proto: str, given: str | None, expected: str) -> None:
    assert k.port_name(port, proto, given) == expected


@pytest.mark.parametrize(("ref", "registry", "repository", "tag"), [
    ("postgres:16", None, "postgres", "16"),
    ("bitnami/redis", None, "bitnami/redis", None),
    ("ghcr.io/acme/api:1.2", "ghcr.io", "acme/api", "1.2"),
    ("localhost:5000/app", "localhost:5000", "app", None),
    ("127.0.0.1:5000/shop/api:dev", "127.0.0.1:5000", "shop/api", "dev"),
])
def test_parse_image(ref: str, registry: str | None, repository: str, tag: str | None) -> None:
    image = k.parse_image(ref)
    assert (image.registry, image.repository, image.tag) == (registry, repository, tag)
    assert str(image) == ref


def test_built_images() -> None:
    assert k.built_image("shop", "api", "acme/shop-api:dev", "reg.example.com/shop", None) == \
        "reg.example.com/shop/shop-api:dev"
    assert k.built_image("shop", "api", None, "reg.example.com/shop", "1.4.0") == "reg.example.com/shop/shop-api:1.4.0"
    assert k.built_image("shop", "worker", None, None, None) == "shop-worker:latest"
    assert k.built_image("shop", "api", "acme/api", None, "v2") == "acme/api:v2"


@pytest.mark.parametrize(("image", "database"), [
    ("postgres:16-alpine", True), ("docker.io/library/mysql:8", True), ("bitnami/postgresql:15", True),
    ("redis:7", True), ("mongo", True), ("nginx:1.27", False), ("acme/postgres-exporter", False),
    ("grafana/grafana", False), (None, False)])
def test_database_images(image: str | None, database: bool) -> None:
    assert mapping.is_database_image(image) is database


@pytest.mark.parametrize(("text", "escaped"), [
    ("echo $(date)", "echo $$(date)"), ("echo $$", "echo $$$"), ("$HOME", "$HOME"), ("price: 5$", "price: 5$"),
    ("$$(x)", "$$$$(x)")])
def test_escape_dollar(text: str, escaped: str) -> None:
    assert mapping.escape_dollar(text) == escaped
    assert _kube_expand(escaped) == text


def _kube_expand(text: str) -> str:
    """The kubelet's expansion with no variables defined (third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i)
                if end == -1:
                    out.append(text[i:])
                    break
                out.append(text[i:end + 1])  # an undefined variable is left as written
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def test_annotation_keys() -> None:
    assert k.annotation_key_ok("org.stackctl.component")
    assert k.annotation_key_ok("traefik.http.routers.web.rule")
    assert k.annotation_key_ok("example.com/owner")
    assert not k.annotation_key_ok("has space")
    assert not k.annotation_key_ok("x" * 64)


# ---------------------------------------------------------------------------------------------
# Security fields: cap_add, cap_drop, privileged, sysctls
# ---------------------------------------------------------------------------------------------
def _render(**fields: Any) -> Rendered:
    stack = to_model({"name": "demo", "services": {"app": {"image": "nginx", **fields}}})
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod"), services={}, defaults=ServiceOverride())
    rendered = render(stack, target)
    assert validate(list(rendered.objects), "1.35") == []
    return rendered


def _pod(r: Rendered) -> dict[str, Any]:
    return r.workload("app")["spec"]["template"]["spec"]


def _warnings(r: Rendered) -> list[str]:
    return [str(w) for w in r.warnings]


@pytest.mark.parametrize(("names", "expected"), [
    (["NET_ADMIN", "CAP_SYS_TIME"], ["NET_ADMIN", "SYS_TIME"]),
    (["cap_net_raw", "NET_RAW", "CAP_NET_RAW", "chown"], ["NET_RAW", "CHOWN"]),
    (["ALL"], ["ALL"]), (["all", "CAP_ALL"], ["ALL"]), ([], [])])
def test_capability_names(names: list[str], expected: list[str]) -> None:
    assert capabilities(names) == expected


def test_cap_add_and_cap_drop_become_container_capabilities() -> None:
    r = _render(cap_add=["NET_ADMIN", "CAP_SYS_TIME", "NET_ADMIN"], cap_drop=["ALL"], read_only=True)
    assert _pod(r)["containers"][0]["securityContext"] == {
        "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"], "drop": ["ALL"]}, "readOnlyRootFilesystem": True}
    assert "securityContext" not in _pod(r)
    assert _warnings(r) == []


def test_cap_drop_alone() -> None:
    r = _render(cap_drop=["CAP_NET_RAW", "MKNOD"])
    assert _pod(r)["containers"][0]["securityContext"] == {"capabilities": {"drop": ["NET_RAW", "MKNOD"]}}


def test_privileged_is_rendered_with_a_pod_security_warning() -> None:
    r = _render(privileged=True)
    assert _pod(r)["containers"][0]["securityContext"] == {"privileged": True}
    assert _warnings(r) == [("services.app.privileged: the container runs privileged; namespaces that enforce the "
                             "baseline or restricted Pod Security Standard reject the pod")]


def test_privileged_false_renders_nothing() -> None:
    r = _render(privileged=False)
    assert "securityContext" not in _pod(r)["containers"][0]
    assert _warnings(r) == []


@pytest.mark.parametrize("sysctls", [
    {"net.ipv4.tcp_syncookies": 0, "kernel.shm_rmid_forced": "1", "net.ipv4.ip_local_port_range": "1024 65000"},
    ["net.ipv4.tcp_syncookies=0", "kernel.shm_rmid_forced=1", "net.ipv4.ip_local_port_range=1024 65000"]])
def test_sysctls_become_pod_sysctls_sorted_by_name(sysctls: object) -> None:
    r = _render(sysctls=sysctls)
    assert _pod(r)["securityContext"] == {"sysctls": [
        {"name": "kernel.shm_rmid_forced", "value": "1"},
        {"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"},
        {"name": "net.ipv4.tcp_syncookies", "value": "0"}]}
    assert "securityContext" not in _pod(r)["containers"][0]
    assert _warnings(r) == []


def test_unsafe_sysctls_are_rendered_with_a_warning_each() -> None:
    r = _render(sysctls={"vm.max_map_count": "262144", "net.ipv4.tcp_fin_timeout": "30",
                         "net.core.somaxconn": "1024"})
    assert [s["name"] for s in _pod(r)["securityContext"]["sysctls"]] == [
        "net.core.somaxconn", "net.ipv4.tcp_fin_timeout", "vm.max_map_count"]
    assert [w.field for w in r.warnings] == ["services.app.sysctls.net.core.somaxconn",
                                             "services.app.sysctls.vm.max_map_count"]
    assert all("--allowed-unsafe-sysctls" in w.message for w in r.warnings)


def test_sysctls_join_the_existing_pod_security_context() -> None:
    r = _render(user="1000:1000", volumes=[{"type": "tmpfs", "target": "/tmp"}],
                sysctls={"net.ipv4.tcp_syncookies": "1"}, cap_add=["NET_BIND_SERVICE"])
    assert _pod(r)["securityContext"] == {
        "runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch", "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}
    assert _pod(r)["containers"][0]["securityContext"] == {"capabilities": {"add": ["NET_BIND_SERVICE"]}}


# ------------------------------------------------------------------------------- Swarm placement
def _pod(rendered: Rendered) -> dict[str, Any]:
    return dict(rendered.workload("app")["spec"]["template"]["spec"])


def _placement(**placement: Any) -> Rendered:
    return _render(deploy={"replicas": 3, "placement": placement})


def test_swarm_constraints_become_required_node_affinity() -> None:
    r = _placement(constraints=["node.labels.zone == eu-1", "node.labels.disk != hdd", "node.hostname == box-1",
                                "node.platform.os == Linux", "node.platform.arch == x86_64", "node.role == worker"])
    terms = _pod(r)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [  # all ANDed, as Swarm does
        {"key": "zone", "operator": "In", "values": ["eu-1"]},
        {"key": "disk", "operator": "NotIn", "values": ["hdd"]},
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["box-1"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}]
    assert not [w for w in r.warnings if "placement" in str(w)]
    assert r == _placement(constraints=["node.labels.zone == eu-1", "node.labels.disk != hdd", "node.hostname == box-1",
                                        "node.platform.os == Linux", "node.platform.arch == x86_64",
                                        "node.role == worker"])  # deterministic


def test_swarm_constraints_without_a_kubernetes_meaning_are_dropped_with_a_warning() -> None:
    r = _placement(constraints=["node.id == 2ivku8v2gvtg4", "engine.labels.operatingsystem == ubuntu",
                                "node.role == boss", "node.labels.zone == not a value", "zone is eu"])
    assert "affinity" not in _pod(r)
    warned = {str(w).split(":")[0] for w in r.warnings}
    assert {f"services.app.deploy.placement.constraints[{i}]" for i in range(5)} <= warned


def test_swarm_spread_preferences_and_one_replica_per_node() -> None:
    r = _placement(preferences=[{"spread": "node.labels.zone"}, {"spread": "node.id"}], max_replicas_per_node=1)
    pod = _pod(r)
    assert [(c["topologyKey"], c["whenUnsatisfiable"]) for c in pod["topologySpreadConstraints"]] == \
        [("zone", "ScheduleAnyway")]  # soft, as Swarm's spread is
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == \
        "kubernetes.io/hostname"
    assert any("preferences[1]" in str(w) for w in r.warnings)
    r = _placement(max_replicas_per_node=2)
    assert "affinity" not in _pod(r)
    assert any("max_replicas_per_node: 2 per node has no Kubernetes equivalent" in str(w) for w in r.warnings)


def test_the_profiles_placement_wins_and_merges_with_swarm_constraints() -> None:
    stack = to_model({"name": "demo", "services": {"app": {"image": "nginx", "deploy": {"replicas": 3, "placement": {
        "constraints": ["node.labels.zone == eu-1"], "preferences": [{"spread": "node.labels.rack"}],
        "max_replicas_per_node": 1}}}}})
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod"), defaults=ServiceOverride(),
                    services={"app": ServiceOverride(placement=Placement(spread=("topology.kubernetes.io/zone",),
                                                                         anti_affinity="preferred"))})
    rendered = render(stack, target)
    assert validate(list(rendered.objects), "1.35") == []
    pod = _pod(rendered)
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == ["topology.kubernetes.io/zone", "rack"]
    assert set(pod["affinity"]) == {"nodeAffinity", "podAntiAffinity"}
    assert "preferredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]  # the profile's
