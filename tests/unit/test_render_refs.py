"""Services that others talk to: where one service names another (environment, command, health checks,
mounted config files), the Service ports read from that, the warning when none can be, and health
checks that call the service's own name (pure: no Docker, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackctl.compose.loader import to_model
from stackctl.errors import ProfileError
from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
from stackctl.kubernetes.render import Rendered, refs, render
from stackctl.kubernetes.validate import validate
from stackctl.profile import load_profile
from stackctl.profile.types import KubernetesSettings, ServiceOverride

NAMES = {"db": "db", "backend": "backend", "cache": "cache", "api": "api", "m1": "mongo", "m2": "mongo"}
NGINX_CONF = b"""
events {}
http {
  # upstream old { server legacy-api:9999; }
  upstream admin_pool { server admin weight=2; }
  server {
    listen 80;
    location /api/ { proxy_pass http://backend:8000/; }
    location /static/ { root /srv/db/static; }
  }
}
"""


def run(services: dict[str, Any], *, overrides: dict[str, ServiceOverride] | None = None,
        host: dict[str, HostPath] | None = None, secrets: SecretInputs | None = None, **top: Any) -> Rendered:
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod"), services=overrides or {})
    return render(to_model({"name": "demo", "services": services, **top}), target, host=host, secrets=secrets)


def service_ports(r: Rendered) -> dict[str, list[int]]:
    return {o["metadata"]["name"]: [p["port"] for p in o["spec"]["ports"]] for o in r.of_kind("Service")
            if not o["metadata"]["name"].endswith("-headless")}


def probe(r: Rendered, service: str) -> dict[str, Any]:
    probe: dict[str, Any] = r.workload(service)["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    return probe


def texts(items: Any) -> list[str]:
    return [str(i) for i in items]


# ---------------------------------------------------------------------------------------------
# Finding references: only names in a connecting position
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("postgres://u:p@db:5432/x", [("db", 5432, True)]),
    ("postgresql+asyncpg://app:<secret:DB_PASSWORD>@db/app", [("db", 5432, False)]),
    ("redis://cache/0", [("cache", 6379, False)]),
    ("jdbc:postgresql://db/app?ssl=false", [("db", 5432, False)]),
    ("mongodb://m1:27017,m2/app", [("m1", 27017, True), ("m2", 27017, False)]),
    ("tcp://backend", [("backend", None, False)]),
    ("<url>http://backend:8000</url>", [("backend", 8000, True)]),
    ("brokers=cache:6380,backend:9000", [("cache", 6380, True), ("backend", 9000, True)]),
    ("DB=api.db:5432 and http://db.example.com/", []),  # other hosts that merely contain a name
    ("the db is down; see /var/lib/db:5432 and db_backup", []),  # prose and paths
    ("redis:7-alpine and cache:7.2", []),  # image tags
])
def test_connections_in_a_value(text: str, expected: list[tuple[str, int | None, bool]]) -> None:
    assert [(h.host, h.port, h.written) for h in refs.find(text, NAMES)] == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("pg_isready -h db -U app && echo ok", [("db", 5432, False)]),
    ("psql --host=db -p 5433 -c 'select 1'", [("db", 5433, True)]),
    ("mysqladmin ping -h db -p secret", [("db", 3306, False)]),  # mysql's -p is the password
    ("mysqladmin ping -hdb -P 3307", [("db", 3307, True)]),
    ("redis-cli -h cache -p 6380 ping", [("cache", 6380, True)]),
    ("nc -z -w 2 db 5432", [("db", 5432, True)]),
    ("wait-for db:5432 -- ./start", [("db", 5432, True)]),
    ("some-tool -h db", [("db", None, False)]),  # a client whose port is not known
    ("curl -fsS http://api:8080/health?db=db || exit 1", [("api", 8080, True)]),
])
def test_connections_in_a_command(text: str, expected: list[tuple[str, int | None, bool]]) -> None:
    assert [(h.host, h.port, h.written) for h in refs.find(text, NAMES, command=True)] == expected
    assert all(h.port is None or h.written or "-h" in text or "://" in text for h in refs.find(text, NAMES))


def test_connections_in_a_config_file_skip_comments_and_name_the_directive() -> None:
    stack = to_model({"name": "demo", "services": {
        "proxy": {"image": "nginx",
                  "volumes": [{"type": "bind", "source": "/p/nginx.conf", "target": "/etc/nginx.conf"}]},
        "backend": {"image": "b"}, "admin": {"image": "a"}, "legacy-api": {"image": "l"}, "db": {"image": "d"}}})
    host = {"/p/nginx.conf": HostPath(kind="file", display="nginx.conf", files={"": NGINX_CONF})}
    found = refs.references(stack, host, refs.hostnames(stack))
    assert set(found) == {"admin", "backend"}
    assert [(r.port, r.written, r.user, r.where) for r in found["admin"]] == [
        (80, False, "proxy", "server in nginx.conf, used by services.proxy")]
    assert [(r.port, r.written, r.where) for r in found["backend"]] == [
        (8000, True, "proxy_pass in nginx.conf, used by services.proxy")]


def test_an_image_tag_in_a_mounted_file_is_no_connection() -> None:
    """`image: postgres:13` in a Compose file the service mounts (Airflow's init mounts the project)
    and `FROM redis:7` in a Dockerfile name images, not `postgres` on port 13."""
    stack = to_model({"name": "demo", "services": {
        "init": {"image": "i", "volumes": [{"type": "bind", "source": "/p/src", "target": "/sources"}]},
        "postgres": {"image": "postgres:13"}, "redis": {"image": "redis:7"}}})
    text = b"services:\n  postgres:\n    image: postgres:13\n  x:\n    image: 'redis:7'\n" \
           b"    environment: {URL: 'redis:6380'}\n"
    host = {"/p/src": HostPath(kind="dir", display="src", files={"docker-compose.yaml": text,
                                                                   "Dockerfile": b"FROM redis:7\n"})}
    found = refs.references(stack, host, refs.hostnames(stack))
    assert set(found) == {"redis"}
    assert [(r.port, r.written) for r in found["redis"]] == [(6380, True)]


def test_environment_host_and_port_variables() -> None:
    env = {"REDIS_HOST": "cache", "REDIS_PORT": "6380", "DB_HOST": "db", "PGHOST": "db", "MODE": "api",
           "CACHE_IMAGE": "cache:7", "API_SERVERS": "api, backend", "API_PORT": "9000", "redis_host": "cache"}
    found = [(key, h.host, h.port, h.written) for key, h in refs.in_environment(env, NAMES)]
    assert found == [("API_SERVERS", "api", 9000, True), ("API_SERVERS", "backend", 9000, True),
                     ("DB_HOST", "db", None, False), ("PGHOST", "db", 5432, False),
                     ("REDIS_HOST", "cache", 6380, True), ("redis_host", "cache", 6379, False)]


def test_to_local_changes_only_the_connection() -> None:
    argv = ("/bin/sh", "-c", "pg_isready -h db -p 5433 && curl -f 'http://api:8080/x?host=api' && echo db")
    assert refs.to_local(argv, {"db": "db", "api": "api"}) == (
        ("/bin/sh", "-c", "pg_isready -h 127.0.0.1 -p 5433 && curl -f 'http://127.0.0.1:8080/x?host=api' && echo db"),
        ["api", "db"])
    assert refs.to_local(("curl", "-f", "http://backend:8000/"), {"db": "db"}) == (
        ("curl", "-f", "http://backend:8000/"), [])
    # the exec form: `-h` and the name are separate words (it was left calling the Service)
    assert refs.to_local(("redis-cli", "-h", "redis", "ping"), {"redis": "redis"}) == (
        ("redis-cli", "-h", "127.0.0.1", "ping"), ["redis"])
    assert refs.to_local(("pg_isready", "-h", "db", "-U", "db"), {"db": "db"}) == (
        ("pg_isready", "-h", "127.0.0.1", "-U", "db"), ["db"])


# ---------------------------------------------------------------------------------------------
# Service ports from references
# ---------------------------------------------------------------------------------------------
def test_nginx_proxy_to_a_portless_backend_gives_it_a_service() -> None:
    r = run({"proxy": {"image": "nginx:1.27", "ports": [{"target": 80, "published": "8080"}],
                       "volumes": [{"type": "bind", "source": "/p/nginx.conf", "target": "/etc/nginx/nginx.conf"}],
                       "depends_on": {"backend": {"condition": "service_healthy"}}},
             "backend": {"image": "ghcr.io/acme/backend:1", "healthcheck": {"test": ["CMD", "true"]}},
             "admin": {"image": "ghcr.io/acme/admin:1"},
             "db": {"image": "ghcr.io/acme/tool:1"}},
            host={"/p/nginx.conf": HostPath(kind="file", display="nginx/nginx.conf", files={"": NGINX_CONF})})
    assert service_ports(r) == {"proxy": [80], "backend": [8000], "admin": [80]}  # db: only named in a path
    assert ("services.backend: has no ports or expose; its Service listens on 8000 (proxy_pass in "
            "nginx/nginx.conf, used by services.proxy). Add `expose: [\"8000\"]` to say so") in texts(r.notes)
    init = r.workload("proxy")["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["wait-for-backend"]  # service_healthy can now be waited for
    assert not r.warnings
    assert validate(list(r.objects), "1.35") == []


def test_database_url_to_a_portless_postgres_and_an_alias() -> None:
    r = run({"app": {"image": "ghcr.io/acme/app:1", "ports": [{"target": 8000}],
                     "environment": {"DATABASE_URL": "postgres://app:pw@db/app", "QUEUE": "amqp://rabbit",
                                     "REPORTS_HOST": "reports"}},
             "db": {"image": "postgres:16"},
             "mq": {"image": "ghcr.io/acme/mq:1", "networks": {"default": {"aliases": ["rabbit"]}}},
             "reports": {"image": "ghcr.io/acme/reports:1", "healthcheck": {
                 "test": ["CMD", "curl", "-f", "http://localhost:9300/health"]}}})
    assert service_ports(r) == {"app": [8000], "db": [5432], "mq": [5672], "rabbit": [5672], "reports": [9300]}
    notes = texts(r.notes)
    assert any(n.startswith("services.db: has no ports or expose; its Service listens on 5432 "
                            "(services.app.environment.DATABASE_URL)") for n in notes)
    assert any(n.startswith("services.mq: has no ports or expose; its Service listens on 5672 "
                            "(services.app.environment.QUEUE)") for n in notes)
    assert not r.warnings  # REPORTS_HOST names no port, but the health check's port is reports' own


def test_a_declared_service_gets_the_ports_written_by_its_clients_only() -> None:
    r = run({"kafka": {"image": "ghcr.io/acme/kafka:1", "ports": [{"target": 29092, "published": "29092"}],
                       "environment": {"LISTENERS": "PLAINTEXT://kafka:9092,CONTROLLER://kafka:9093"}},
             "web": {"image": "ghcr.io/acme/web:1", "expose": ["3000"]},
             "consumer": {"image": "c", "environment": {"BROKERS": "kafka:9092", "WEB": "http://web/"}}})
    # `http://web/` implies 80 (not written: not added); 9093 only kafka itself names
    assert service_ports(r) == {"kafka": [29092, 9092], "web": [3000]}
    assert ("services.kafka: its Service also listens on 9092 (services.consumer.environment.BROKERS), where it is "
            "connected to; add `expose: [\"9092\"]` to say so") in texts(r.notes)


def test_a_reference_without_any_port_warns_with_who_and_the_fix() -> None:
    services = {"app": {"image": "ghcr.io/acme/app:1", "environment": {"RENDERER_HOST": "renderer"},
                        "command": ["app", "--renderer", "renderer"]},
                "renderer": {"image": "ghcr.io/acme/renderer:1"},
                "lonely": {"image": "ghcr.io/acme/lonely:1", "environment": {"SELF_HOST": "lonely"}}}
    r = run(services)
    assert texts(r.warnings) == [
        "services.renderer: other services connect to it (services.app.environment.RENDERER_HOST) but on no port "
        "that can be inferred (no ports, expose, port in those references or well-known image), so it gets no "
        "Service and the name renderer does not resolve in Kubernetes; set the ports it listens on in the profile "
        "(`services.renderer.ports: [<port>]`) or add `expose` to the Compose file"]
    assert service_ports(r) == {}
    again = run(services)
    assert texts(again.warnings) == texts(r.warnings) and texts(again.notes) == texts(r.notes)


def test_profile_ports_are_the_services_ports() -> None:
    services = {"app": {"image": "a", "environment": {"RENDERER_HOST": "renderer", "R": "renderer:9999"}},
                "renderer": {"image": "ghcr.io/acme/renderer:1"}}
    r = run(services, overrides={"renderer": ServiceOverride(ports=(7000, 7001))})
    assert service_ports(r) == {"renderer": [7000, 7001]}
    assert not r.warnings and not any(n.field == "services.renderer" for n in r.notes)
    with pytest.raises(ProfileError, match=r"services.renderer.ports: a Job gets no Service"):
        run(services, overrides={"renderer": ServiceOverride(ports=(7000,), kind="Job")})


def test_profile_ports_setting(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    path = tmp_path / "profiles" / "production.yaml"
    path.write_text("compose: {files: [compose.yaml]}\nservices: {web: {ports: [8000, 9090, 8000]}}\n")
    assert load_profile(tmp_path, "production").services["web"].ports == (8000, 9090)
    for body, where in (("services: {web: {ports: [http]}}", "services.web.ports"),
                        ("services: {web: {ports: 8000}}", "services.web.ports"),
                        ("services: {web: {ports: [70000]}}", "services.web.ports"),
                        ("defaults: {ports: [8000]}", "defaults.ports")):
        path.write_text("compose: {files: [compose.yaml]}\n" + body + "\n")
        with pytest.raises(ProfileError) as info:
            load_profile(tmp_path, "production")
        assert str(info.value).startswith(f"profiles/production.yaml: {where}: ")


# ---------------------------------------------------------------------------------------------
# Health checks that call a service by name
# ---------------------------------------------------------------------------------------------
def test_a_health_check_calling_its_own_name_calls_the_container() -> None:
    r = run({"api": {"image": "ghcr.io/acme/api:1", "healthcheck": {
                 "test": ["CMD-SHELL", "curl -fsS http://api:8080/health || exit 1"]}},
             "store": {"image": "chrislusf/seaweedfs", "networks": {"default": {"aliases": ["s3"]}},
                       "healthcheck": {"test": ["CMD", "wget", "-q", "-O-", "--post-data=x", "http://s3:9340/x"]}},
             "db": {"image": "postgres:16", "healthcheck": {"test": ["CMD-SHELL", "pg_isready -h db -U app"]}}})
    assert probe(r, "api")["httpGet"] == {"path": "/health", "port": 8080}
    assert probe(r, "store")["exec"]["command"] == ["wget", "-q", "-O-", "--post-data=x", "http://127.0.0.1:9340/x"]
    assert probe(r, "db")["exec"]["command"] == ["/bin/sh", "-c", "pg_isready -h 127.0.0.1 -U app"]
    assert service_ports(r) == {"api": [8080], "store": [9340], "s3": [9340], "db": [5432]}
    notes = texts(r.notes)
    assert ("services.db.healthcheck: calls the service by its own name (db), which in Kubernetes goes through its "
            "Service, and a Service routes only to ready pods: the probe calls 127.0.0.1 instead") in notes
    assert any(n.startswith("services.store.healthcheck: calls the service by its own name (s3)") for n in notes)
    assert not r.warnings


def test_a_health_check_calling_another_service_is_kept_with_a_note_and_a_cycle_warns() -> None:
    check = {"test": ["CMD", "curl", "-f", "http://api:8080/ready"]}
    r = run({"worker": {"image": "w", "healthcheck": check},
             "api": {"image": "a", "expose": ["8080"]}})
    assert probe(r, "worker")["exec"]["command"] == ["curl", "-f", "http://api:8080/ready"]
    assert ("services.worker.healthcheck: calls api: the readiness probe depends on services.api, so while that is "
            "not ready (down, restarting) worker is not ready either (out of its Service, a rollout waits)") \
        in texts(r.notes)
    assert not r.warnings
    r = run({"orders": {"image": "o", "expose": ["8080"], "healthcheck": {
                 "test": ["CMD", "curl", "-f", "http://billing:8080/ready"]}},
             "billing": {"image": "b", "expose": ["8080"], "healthcheck": {
                 "test": ["CMD", "curl", "-f", "http://orders:8080/ready"]}}})
    assert [w.field for w in r.warnings] == ["services.billing.healthcheck", "services.orders.healthcheck"]
    assert "neither ever becomes ready" in r.warnings[0].message


def test_a_host_inside_a_secret_is_found_neither_with_values_nor_without() -> None:
    """`render` (markers) and promote (values) must agree on the Service ports."""
    def services(url: str, check: str) -> dict[str, Any]:
        return {"app": {"image": "a", "environment": {"DATABASE_URL": url, "PLAIN": "postgres://db:5433/x"},
                        "healthcheck": {"test": ["CMD-SHELL", check]}},
                "db": {"image": "ghcr.io/acme/pg:1"}, "other": {"image": "o", "expose": ["80"]}}
    masked = run(services("<secret:DATABASE_URL>", "curl -f <secret:PROBE_URL>"),
                 secrets=SecretInputs(keys=frozenset({"DATABASE_URL", "PROBE_URL"})))
    shown = run(services("postgres://u:p@db:6000/x", "curl -f http://other:80/"),
                secrets=SecretInputs(keys=frozenset({"DATABASE_URL", "PROBE_URL"}),
                                     values={"DATABASE_URL": "postgres://u:p@db:6000/x",
                                             "PROBE_URL": "http://other:80/"}))
    assert service_ports(masked) == service_ports(shown) == {"db": [5433], "other": [80]}
    assert texts(masked.notes) == texts(shown.notes)
