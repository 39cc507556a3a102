"""The Kubernetes renderer, one mapping decision at a time (pure: no Docker, no cluster)."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import pytest

from stackctl import model as m
from stackctl.compose.loader import to_model
from stackctl.errors import InputError, ProfileError
from stackctl.kubernetes import write
from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
from stackctl.kubernetes.labels import A_CONFIG_HASH, A_SECRET_HASH, A_WAIT, A_WAVE
from stackctl.kubernetes.render import Rendered, render
from stackctl.kubernetes.validate import validate
from stackctl.profile.types import (
    Autoscaling,
    DisruptionBudget,
    Ingress,
    KubernetesSettings,
    Liveness,
    Resources,
    ResourceSpec,
    ServiceOverride,
    UpdateSettings,
    VolumeSettings,
)

HC = {"test": ["CMD", "curl", "-f", "http://localhost:8000/health"], "interval": "10s", "timeout": "3s",
      "retries": 3}


def stack(services: dict[str, Any], **top: Any) -> m.Stack:
    return to_model({"name": "demo", "services": services, **top})


def run(services: dict[str, Any], *, overrides: dict[str, ServiceOverride] | None = None,
        defaults: ServiceOverride | None = None, inputs: SecretInputs | None = None,
        host: dict[str, HostPath] | None = None, kube: dict[str, Any] | None = None, **top: Any) -> Rendered:
    settings = KubernetesSettings(namespace="demo-prod", **(kube or {}))
    target = Target(profile="production", profile_file="profiles/production.yaml", kubernetes=settings,
                    services=overrides or {}, defaults=defaults or ServiceOverride())
    return render(stack(services, **top), target, secrets=inputs, host=host)


def pod(r: Rendered, service: str) -> dict[str, Any]:
    w = r.workload(service)
    if w["kind"] == "CronJob":
        return w["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return w["spec"]["template"]["spec"]


def container(r: Rendered, service: str) -> dict[str, Any]:
    return pod(r, service)["containers"][0]


def annotations(r: Rendered, service: str) -> dict[str, str]:
    return r.workload(service)["spec"]["template"]["metadata"].get("annotations", {})


def warnings_of(r: Rendered) -> list[str]:
    return [str(w) for w in r.warnings]


def assert_valid(r: Rendered) -> None:
    assert validate(list(r.objects), "1.35") == []


# ---------------------------------------------------------------------------------------------
# Purity and determinism
# ---------------------------------------------------------------------------------------------
def test_same_input_gives_byte_identical_output() -> None:
    services = {"web": {"image": "nginx", "ports": [{"target": 80}], "environment": {"B": "2", "A": "1"}},
                "db": {"image": "postgres:16", "volumes": [{"type": "volume", "source": "pg", "target": "/d"}]}}
    first = write.to_stream(list(run(services, volumes={"pg": {}}).objects))
    second = write.to_stream(list(run(services, volumes={"pg": {}}).objects))
    assert first == second
    assert "&id" not in first  # no YAML anchors


def test_renderer_imports_no_kubernetes_client_and_no_docker() -> None:
    code = ("import sys, stackctl.kubernetes.render, stackctl.kubernetes.inputs; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'python_on_whales', 'docker', "
            "'kubernetes_validate')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_identity_labels_on_every_object_and_waves() -> None:
    r = run({"web": {"image": "nginx", "ports": [{"target": 80}], "environment": {"A": "1"}}})
    for obj in r.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "stackctl"
        assert labels["app.kubernetes.io/part-of"] == "demo"
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["stackctl.io/stack"] == "demo" and labels["stackctl.io/profile"] == "production"
        assert "app.kubernetes.io/name" in labels
        assert A_WAVE in obj["metadata"]["annotations"]
    assert [o["kind"] for o in r.objects] == ["Namespace", "ConfigMap", "Service", "Deployment"]
    assert_valid(r)


def test_reserved_namespace_is_not_rendered() -> None:
    r = run({"web": {"image": "nginx"}}, kube={})
    assert r.of_kind("Namespace")
    settings = KubernetesSettings(namespace="default")
    target = Target(profile="p", profile_file="profiles/p.yaml", kubernetes=settings)
    assert not render(stack({"web": {"image": "nginx"}}), target).of_kind("Namespace")


# ---------------------------------------------------------------------------------------------
# Workload kinds
# ---------------------------------------------------------------------------------------------
def test_workload_kinds() -> None:
    r = run({
        "web": {"image": "nginx", "depends_on": {"migrate": {"condition": "service_completed_successfully"}}},
        "db": {"image": "postgres:16"},
        "queue": {"image": "acme/queue", "volumes": [{"type": "volume", "source": "q", "target": "/q"}]},
        "agent": {"image": "acme/agent", "deploy": {"mode": "global"}},
        "migrate": {"image": "acme/app"},
        "batch": {"image": "acme/batch", "deploy": {"mode": "replicated-job"}},
        "report": {"image": "acme/report"},
        "cache": {"image": "redis:7"},
    }, overrides={"report": ServiceOverride(schedule="0 3 * * *"), "cache": ServiceOverride(kind="Deployment")},
        volumes={"q": {}})
    kinds = {name: r.workload(name)["kind"] for name in ("web", "db", "queue", "agent", "migrate", "batch",
                                                          "report", "cache")}
    assert kinds == {"web": "Deployment", "db": "StatefulSet", "queue": "StatefulSet", "agent": "DaemonSet",
                     "migrate": "Job", "batch": "Job", "report": "CronJob", "cache": "Deployment"}
    assert r.workload("report")["spec"]["schedule"] == "0 3 * * *"
    assert r.workload("report")["spec"]["concurrencyPolicy"] == "Forbid"
    assert_valid(r)


def test_statefulset_gets_headless_service_and_claim_templates() -> None:
    r = run({"db": {"image": "postgres:16", "expose": ["5432"],
                    "volumes": [{"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"}]}},
            volumes={"pgdata": {}},
            kube={"storage_class": "fast", "volumes": {"pgdata": VolumeSettings(size=20 * 2**30)}})
    sts = r.workload("db")
    assert sts["spec"]["serviceName"] == "db-headless"
    headless = r.get("Service", "db-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "pgdata"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}},
                             "storageClassName": "fast"}
    assert container(r, "db")["volumeMounts"] == [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}]
    assert r.get("Service", "db")["spec"]["type"] == "ClusterIP"
    assert not r.of_kind("PersistentVolumeClaim")
    assert_valid(r)


def test_job_restart_policies() -> None:
    base = {"app": {"image": "a", "depends_on": {
        "once": {"condition": "service_completed_successfully"},
        "retry": {"condition": "service_completed_successfully"},
        "swarm": {"condition": "service_completed_successfully"}}}}
    r = run({**base, "once": {"image": "m", "restart": "no"}, "retry": {"image": "m", "restart": "on-failure:3"},
             "swarm": {"image": "m", "deploy": {"restart_policy": {"condition": "on-failure", "max_attempts": 2}}}})
    assert r.workload("once")["spec"]["backoffLimit"] == 0
    assert r.workload("retry")["spec"]["backoffLimit"] == 3
    assert r.workload("swarm")["spec"]["backoffLimit"] == 2
    assert pod(r, "once")["restartPolicy"] == "Never"


# ---------------------------------------------------------------------------------------------
# depends_on: init containers, Jobs and waves
# ---------------------------------------------------------------------------------------------
def test_service_healthy_waits_on_the_dependency_service_port() -> None:
    r = run({
        "api": {"image": "a", "depends_on": {"db": {"condition": "service_healthy"},
                                             "cache": {"condition": "service_started"},
                                             "opt": {"condition": "service_healthy", "required": False},
                                             "worker": {"condition": "service_healthy"}}},
        "db": {"image": "postgres", "ports": [{"target": 5432, "published": "5433"}], "healthcheck": HC},
        "cache": {"image": "redis", "expose": ["6379"]},
        "opt": {"image": "o", "expose": ["1"]},
        "worker": {"image": "w", "healthcheck": {"test": ["CMD", "celery", "inspect", "ping"]}},
    }, kube={"wait_image": "mirror.example.com/busybox:1.37"})
    inits = pod(r, "api")["initContainers"]
    assert [c["name"] for c in inits] == ["wait-for-db"]
    assert inits[0]["image"] == "mirror.example.com/busybox:1.37"
    assert inits[0]["command"] == ["sh", "-c", ("until nc -z -w 2 db 5432; do echo 'waiting for db:5432'; "
                                                "sleep 2; done")]
    assert inits[0]["securityContext"]["runAsNonRoot"] is True
    assert any("services.api.depends_on.worker: service_healthy cannot be waited for (it has no port)" in w
               for w in warnings_of(r))
    assert any("services.api.depends_on.opt" in str(n) for n in r.notes)


def test_completed_successfully_becomes_an_awaited_job_in_an_earlier_wave() -> None:
    services = {
        "api": {"image": "acme/api:1", "depends_on": {"migrate": {"condition": "service_completed_successfully"},
                                                     "db": {"condition": "service_healthy"}}},
        "migrate": {"image": "acme/api:1", "command": ["migrate"],
                    "depends_on": {"db": {"condition": "service_healthy"}}},
        "seed": {"image": "acme/api:1", "depends_on": {"migrate": {"condition": "service_completed_successfully"}}},
        "web": {"image": "w", "depends_on": {"seed": {"condition": "service_completed_successfully"}}},
        "db": {"image": "postgres", "expose": ["5432"], "healthcheck": HC},
    }
    r = run(services)
    migrate, seed = r.workload("migrate"), r.workload("seed")
    assert migrate["kind"] == "Job" and migrate["metadata"]["name"].startswith("migrate-")
    assert migrate["metadata"]["annotations"][A_WAIT] == "complete"
    assert seed["metadata"]["annotations"][A_WAIT] == "complete"  # web waits for it
    wave = {name: int(r.workload(name)["metadata"]["annotations"][A_WAVE]) for name in services}
    assert wave == {"db": 2, "migrate": 2, "api": 3, "seed": 3, "web": 4}
    order = [o["metadata"].get("annotations", {}).get("stackctl.io/service") for o in r.objects]
    assert order.index("migrate") < order.index("api") < order.index("web")
    # a changed Job is a new Job; an unchanged one keeps its name
    again = run(services).workload("migrate")["metadata"]["name"]
    changed = run({**services, "migrate": {**services["migrate"], "image": "acme/api:2"}})
    assert again == migrate["metadata"]["name"] != changed.workload("migrate")["metadata"]["name"]
    assert_valid(r)


# ---------------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------------
def test_probes_from_healthcheck() -> None:
    r = run({
        "api": {"image": "a", "healthcheck": {**HC, "start_period": "30s"}},
        "db": {"image": "postgres", "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U $$POSTGRES_USER"],
                                                    "interval": "5s", "timeout": "2s", "retries": 5,
                                                    "start_period": "1m", "start_interval": "2s"}},
        "off": {"image": "o", "healthcheck": {"test": ["NONE"]}},
        "job": {"image": "j", "healthcheck": HC, "deploy": {"mode": "replicated-job"}},
    })
    api = container(r, "api")
    assert api["readinessProbe"] == {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10,
                                     "timeoutSeconds": 3, "failureThreshold": 3, "successThreshold": 1}
    # no start_interval: probed every 2 s while starting (Ready ~2 s after the app answers), within the
    # same budget: ceil(30 s / 2 s) + retries
    assert api["startupProbe"] == {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 2,
                                   "timeoutSeconds": 3, "failureThreshold": 18}
    assert "livenessProbe" not in api
    db = container(r, "db")
    assert db["readinessProbe"]["exec"] == {"command": ["/bin/sh", "-c", "pg_isready -U $POSTGRES_USER"]}
    assert db["startupProbe"]["periodSeconds"] == 2 and db["startupProbe"]["failureThreshold"] == 35
    slow = run({"w": {"image": "w", "healthcheck": {**HC, "interval": "1s", "start_period": "10s",
                                                     "start_interval": "5s"}}})
    assert container(slow, "w")["startupProbe"]["periodSeconds"] == 1  # never slower than the interval
    for name in ("off", "job"):
        assert not {"readinessProbe", "startupProbe", "livenessProbe"} & set(container(r, name))
    assert_valid(r)


def test_liveness_only_when_asked() -> None:
    services = {"api": {"image": "a", "ports": [{"target": 8000}], "healthcheck": HC},
                "worker": {"image": "w", "healthcheck": {"test": ["CMD", "celery", "inspect", "ping"]}}}
    r = run(services, overrides={"api": ServiceOverride(liveness=Liveness(path="/livez")),
                                 "worker": ServiceOverride(liveness=Liveness())})
    assert container(r, "api")["livenessProbe"]["httpGet"] == {"path": "/livez", "port": 8000}
    assert container(r, "worker")["livenessProbe"]["exec"] == {"command": ["celery", "inspect", "ping"]}
    with pytest.raises(ProfileError, match=r"profiles/production.yaml: services.web.liveness: the service has no "
                                           r"health check"):
        run({"web": {"image": "n"}}, overrides={"web": ServiceOverride(liveness=Liveness())})


# ---------------------------------------------------------------------------------------------
# Environment, Secrets and checksums
# ---------------------------------------------------------------------------------------------
ENV_SERVICES = {
    "api": {"image": "a", "environment": {"LOG_LEVEL": "info", "DB_PASSWORD": "s3cr3t-pw",
                                          "DATABASE_URL": "postgres://app:s3cr3t-pw@db/app", "STRIPE": "sk_live",
                                          "GITHUB_TOKEN": "ghp_x", "EMPTY": None, "CMD": "echo $(id)"}},
    "db": {"image": "postgres", "environment": {"POSTGRES_PASSWORD": "s3cr3t-pw", "POSTGRES_DB": "app"}},
    "worker": {"image": "w", "environment": {"LOG_LEVEL": "debug", "QUEUE": "jobs"}},
}
ENV_SECRETS = SecretInputs(
    keys=frozenset({"DB_PASSWORD", "STRIPE"}),
    digests={"DB_PASSWORD": "d1", "STRIPE": "d2"},
    templates={("api", "DB_PASSWORD"): "${DB_PASSWORD}", ("db", "POSTGRES_PASSWORD"): "${DB_PASSWORD:?required}",
               ("api", "DATABASE_URL"): "postgres://app:${DB_PASSWORD}@db/app", ("api", "LOG_LEVEL"): "info"})


def env_of(r: Rendered, service: str) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(r, service).get("env", [])}


def test_environment_split_into_configmap_and_secret_refs() -> None:
    r = run(ENV_SERVICES, inputs=ENV_SECRETS)
    secret = r.get("Secret", "demo-env")
    assert set(secret["data"]) == {"DB_PASSWORD", "STRIPE", "api.DATABASE_URL", "GITHUB_TOKEN"}
    # envFrom values are not expanded by the kubelet: `$(id)` stays as written
    assert r.get("ConfigMap", "api-env")["data"] == {"CMD": "echo $(id)", "LOG_LEVEL": "info"}
    assert r.get("ConfigMap", "db-env")["data"] == {"POSTGRES_DB": "app"}
    assert container(r, "api")["envFrom"] == [{"configMapRef": {"name": "api-env"}}]

    def ref(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": "demo-env", "key": key}}

    assert env_of(r, "api") == {"DB_PASSWORD": ref("DB_PASSWORD"),
                                "DATABASE_URL": ref("api.DATABASE_URL"), "GITHUB_TOKEN": ref("GITHUB_TOKEN"),
                                "STRIPE": ref("STRIPE")}
    # one store value, one Secret key: POSTGRES_PASSWORD is ${DB_PASSWORD}
    assert env_of(r, "db") == {"POSTGRES_PASSWORD": ref("DB_PASSWORD")}
    assert "services.api.environment.EMPTY: has no value" in "\n".join(warnings_of(r))
    assert any("GITHUB_TOKEN: kept in a Secret because its name looks like a credential" in str(n) for n in r.notes)
    assert_valid(r)


def test_secret_values_never_printed_unless_given() -> None:
    r = run(ENV_SERVICES, inputs=ENV_SECRETS)
    text = write.to_stream(list(r.objects))
    assert "s3cr3t" not in text and base64.b64encode(b"s3cr3t-pw").decode() not in text
    secret = r.get("Secret", "demo-env")
    assert set(secret["data"].values()) == {""}
    assert secret["metadata"]["annotations"]["stackctl.io/values"] == "omitted"

    full = run(ENV_SERVICES, inputs=SecretInputs(**{**ENV_SECRETS.__dict__, "values": {"DB_PASSWORD": "from-store"}}))
    data = full.get("Secret", "demo-env")["data"]
    assert base64.b64decode(data["DB_PASSWORD"]) == b"from-store"
    assert base64.b64decode(data["api.DATABASE_URL"]) == b"postgres://app:s3cr3t-pw@db/app"
    assert "stackctl.io/values" not in full.get("Secret", "demo-env")["metadata"]["annotations"]
    # the checksum does not depend on whether values are rendered
    for name in ENV_SERVICES:
        assert annotations(r, name) == annotations(full, name)


def test_rotation_rolls_only_the_workloads_that_use_the_value() -> None:
    before = run(ENV_SERVICES, inputs=ENV_SECRETS)
    rotated = run(ENV_SERVICES, inputs=SecretInputs(**{**ENV_SECRETS.__dict__,
                                                        "digests": {"DB_PASSWORD": "d1", "STRIPE": "d3"}}))
    assert annotations(before, "api")[A_SECRET_HASH] != annotations(rotated, "api")[A_SECRET_HASH]
    assert annotations(before, "db") == annotations(rotated, "db")
    assert annotations(before, "worker") == annotations(rotated, "worker")
    assert A_SECRET_HASH not in annotations(before, "worker")
    # a config change rolls only the service whose ConfigMap changed
    changed = dict(ENV_SERVICES, worker={"image": "w", "environment": {"LOG_LEVEL": "debug", "QUEUE": "mail"}})
    after = run(changed, inputs=ENV_SECRETS)
    assert annotations(before, "worker")[A_CONFIG_HASH] != annotations(after, "worker")[A_CONFIG_HASH]
    assert annotations(before, "api") == annotations(after, "api")


# ---------------------------------------------------------------------------------------------
# Compose secrets and configs, bind mounts, volumes
# ---------------------------------------------------------------------------------------------
def test_compose_secrets_and_configs_mount_where_compose_puts_them() -> None:
    host = {"/p/secrets/db.txt": HostPath(kind="file", display="secrets/db.txt", files={"": b"pw"}),
            "/p/nginx.conf": HostPath(kind="file", display="nginx.conf", files={"": b"events {}\n"})}
    r = run({"web": {"image": "nginx",
                     "secrets": [{"source": "db_password"}, {"source": "api_key", "target": "keys/api", "mode": "0400"},
                                 {"source": "tls_key", "target": "/etc/ssl/private/key.pem", "uid": "101"}],
                     "configs": [{"source": "nginx_conf", "target": "/etc/nginx/nginx.conf"}, {"source": "motd"}]}},
            secrets={"db_password": {"file": "/p/secrets/db.txt"}, "api_key": {"environment": "API_KEY"},
                     "tls_key": {"external": True, "name": "prod-tls-key"}},
            configs={"nginx_conf": {"file": "/p/nginx.conf"}, "motd": {"content": "hello\n"}}, host=host)
    spec = pod(r, "web")
    mounts = {m["mountPath"]: m for m in container(r, "web")["volumeMounts"]}
    assert mounts["/run/secrets"]["readOnly"] is True
    projected = next(v for v in spec["volumes"] if v["name"] == mounts["/run/secrets"]["name"])["projected"]
    assert projected["sources"] == [
        {"secret": {"name": "demo-db-password",
                    "items": [{"key": "db_password", "path": "db_password", "mode": 0o444}]}},
        {"secret": {"name": "demo-api-key", "items": [{"key": "api_key", "path": "keys/api", "mode": 0o400}]}}]
    assert mounts["/etc/ssl/private/key.pem"]["subPath"] == "tls_key"
    assert mounts["/etc/nginx/nginx.conf"]["subPath"] == "nginx_conf"
    assert mounts["/motd"]["subPath"] == "motd"
    assert r.get("ConfigMap", "demo-nginx-conf")["data"] == {"nginx_conf": "events {}\n"}
    assert r.get("Secret", "demo-db-password")["data"] == {"db_password": ""}  # values omitted
    assert ("Secret", "prod-tls-key") not in {(o["kind"], o["metadata"]["name"]) for o in r.objects}
    assert any("uid/gid are not carried over" in w for w in warnings_of(r))
    assert A_SECRET_HASH in annotations(r, "web") and A_CONFIG_HASH in annotations(r, "web")
    assert_valid(r)


def test_bind_mounts() -> None:
    host = {
        "/p/nginx.conf": HostPath(kind="file", display="nginx.conf", files={"": b"events {}\n"}),
        "/p/initdb": HostPath(kind="dir", display="initdb", files={"01-schema.sql": b"create table t();",
                                                                  "sub/02.sh": b"#!/bin/sh\n"}),
        "/p/logo.png": HostPath(kind="file", display="logo.png", files={"": b"\x89PNG\xff\x00"}),
        "/var/run/docker.sock": HostPath(kind="host", display="/var/run/docker.sock"),
        "/var/log": HostPath(kind="host", display="/var/log"),
        "/p/src": HostPath(kind="too_large", display="src", reason="it holds node_modules/", source_tree=True),
    }
    r = run({
        "web": {"image": "nginx", "volumes": [
            {"type": "bind", "source": "/p/nginx.conf", "target": "/etc/nginx/nginx.conf", "read_only": True},
            {"type": "bind", "source": "/p/logo.png", "target": "/usr/share/nginx/html/logo.png"},
            {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"},
            {"type": "bind", "source": "/p/src", "target": "/app"},
            {"type": "bind", "source": "/p/gone", "target": "/gone"}]},
        "db": {"image": "postgres", "volumes": [
            {"type": "bind", "source": "/p/initdb", "target": "/docker-entrypoint-initdb.d"}]},
        "agent": {"image": "promtail", "deploy": {"mode": "global"}, "volumes": [
            {"type": "bind", "source": "/var/log", "target": "/var/log", "read_only": True}]},
    }, host=host)
    web = {m["mountPath"]: m for m in container(r, "web")["volumeMounts"]}
    assert set(web) == {"/etc/nginx/nginx.conf", "/usr/share/nginx/html/logo.png"}
    assert web["/etc/nginx/nginx.conf"]["subPath"] == "nginx.conf"
    assert r.get("ConfigMap", "web-logo-png")["binaryData"] == {
        "logo.png": base64.b64encode(b"\x89PNG\xff\x00").decode()}
    text = "\n".join(warnings_of(r))
    assert "host path /var/run/docker.sock cannot be carried over" in text
    assert "bind mount of src cannot be carried over: it holds node_modules/" in text
    assert "/p/gone: not found on this machine" in text
    initdb = r.get("ConfigMap", "db-initdb")
    assert set(initdb["data"]) == {"01-schema.sql", "sub__02.sh"}
    db_vol = next(v for v in pod(r, "db")["volumes"] if "configMap" in v)
    assert db_vol["configMap"]["items"] == [{"key": "01-schema.sql", "path": "01-schema.sql"},
                                            {"key": "sub__02.sh", "path": "sub/02.sh"}]
    agent_vol = next(v for v in pod(r, "agent")["volumes"])
    assert agent_vol["hostPath"] == {"path": "/var/log"}
    assert_valid(r)


def test_named_volume_shared_by_two_services_is_one_claim_and_forces_recreate() -> None:
    services = {
        "web": {"image": "nextcloud", "volumes": [{"type": "volume", "source": "data", "target": "/var/www"}],
                "user": "33:33", "deploy": {"replicas": 2}},
        "cron": {"image": "nextcloud", "volumes": [{"type": "volume", "source": "data", "target": "/var/www"}]},
    }
    r = run(services, volumes={"data": {}}, overrides={"web": ServiceOverride(strategy="rolling")})
    claim = r.get("PersistentVolumeClaim", "data")
    assert claim["metadata"]["annotations"]["stackctl.io/prune"] == "false"
    assert r.workload("web")["kind"] == "Deployment"
    assert r.workload("web")["spec"]["strategy"] == {"type": "Recreate"}
    text = "\n".join(warnings_of(r))
    assert "volumes.data: is shared by cron, web" in text and "Recreate is used instead" in text
    assert pod(r, "web")["securityContext"] == {"runAsUser": 33, "runAsGroup": 33, "runAsNonRoot": True,
                                                "fsGroup": 33, "fsGroupChangePolicy": "OnRootMismatch"}
    rwx = run(services, volumes={"data": {}},
              kube={"volumes": {"data": VolumeSettings(access_mode="ReadWriteMany")}})
    assert rwx.workload("web")["spec"]["strategy"] == {"type": "RollingUpdate",  # the zero-downtime default
                                                       "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert not [w for w in warnings_of(rwx) if "volumes.data" in w]
    assert_valid(r)


def test_tmpfs_anonymous_and_external_volumes() -> None:
    r = run({"app": {"image": "a", "volumes": [
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 67108864}},
        {"type": "volume", "target": "/cache"},
        {"type": "volume", "source": "shared", "target": "/shared", "volume": {"subpath": "app"}}]}},
        volumes={"shared": {"external": True, "name": "Team_Shared"}})
    vols = {v["name"]: v for v in pod(r, "app")["volumes"]}
    mounts = {m["mountPath"]: m for m in container(r, "app")["volumeMounts"]}
    assert vols[mounts["/tmp"]["name"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    assert vols[mounts["/cache"]["name"]]["emptyDir"] == {}
    assert vols[mounts["/shared"]["name"]]["persistentVolumeClaim"] == {"claimName": "team-shared"}
    assert mounts["/shared"]["subPath"] == "app"
    assert not r.of_kind("PersistentVolumeClaim")
    assert r.workload("app")["kind"] == "Deployment"
    assert_valid(r)


# ---------------------------------------------------------------------------------------------
# Services, Ingress, NetworkPolicy
# ---------------------------------------------------------------------------------------------
def test_ports_inferred_for_services_without_ports_or_expose() -> None:
    r = run({
        "web": {"image": "acme/web", "ports": [{"target": 80}],
                "environment": {"DATABASE_URL": "postgres://u:p@db/app", "CACHE": "cache:6380",
                                "SEARCH_HOST": "search", "SEARCH_PORT": "7700", "AMQP": "amqp://mq"}},
        "db": {"image": "postgres:16"},
        "cache": {"image": "redis:7"},
        "search": {"image": "acme/search"},
        "mq": {"image": "acme/mq"},
        "api": {"image": "acme/api", "healthcheck": HC},
        "mailer": {"image": "acme/mailer"},
    })
    ports = {o["metadata"]["name"]: [p["port"] for p in o["spec"]["ports"]] for o in r.of_kind("Service")
             if not o["metadata"]["name"].endswith("-headless")}
    assert ports == {"web": [80], "db": [5432], "cache": [6380], "search": [7700], "mq": [5672], "api": [8000]}
    notes = "\n".join(str(n) for n in r.notes)
    assert "services.cache: has no ports or expose; its Service listens on 6380 (services.web.environment.CACHE)" \
        in notes
    assert "services.api: has no ports or expose; its Service listens on 8000 (its health check)" in notes
    assert_valid(r)


def test_services_for_ports_and_expose_only() -> None:
    r = run({
        "web": {"image": "n", "ports": [{"target": 80, "published": "8080"}, {"target": 53, "protocol": "udp"}],
                "networks": {"default": {"aliases": ["www", "Bad_Alias!"]}}},
        "api": {"image": "a", "expose": ["9000-9002", "9100/udp"]},
        "worker": {"image": "w"},
    })
    assert [p["port"] for p in r.get("Service", "api")["spec"]["ports"]] == [9000, 9001, 9002, 9100]
    assert [(p["name"], p["protocol"]) for p in r.get("Service", "web")["spec"]["ports"]] == [
        ("tcp-80", "TCP"), ("udp-53", "UDP")]
    assert r.get("Service", "www")["spec"]["selector"] == r.get("Service", "web")["spec"]["selector"]
    assert ("Service", "worker") not in {(o["kind"], o["metadata"]["name"]) for o in r.objects}
    assert_valid(r)


def test_node_port_and_load_balancer() -> None:
    services = {"web": {"image": "n", "ports": [{"target": 80, "published": "30080"}]},
                "game": {"image": "g", "ports": [{"target": 7777, "published": "27015", "protocol": "udp"}]}}
    r = run(services, overrides={"web": ServiceOverride(service_type="NodePort"),
                                 "game": ServiceOverride(service_type="LoadBalancer")})
    assert r.get("Service", "web")["spec"]["ports"][0]["nodePort"] == 30080
    game = r.get("Service", "game")["spec"]
    assert game["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in game["ports"]] == [(7777, "udp-7777"), (27015, "udp-7777")]
    assert_valid(r)


def test_ingress_from_profile() -> None:
    r = run({"api": {"image": "a", "ports": [{"target": 8000}, {"target": 9090}]}},
            overrides={"api": ServiceOverride(ingress=Ingress(hosts=("api.example.com",), port=9090,
                                                              tls_secret="api-tls"))},
            kube={"ingress_class": "nginx"})
    spec = r.get("Ingress", "api")["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["rules"][0]["http"]["paths"][0]["backend"] == {"service": {"name": "api", "port": {"name": "tcp-9090"}}}
    assert spec["tls"] == [{"hosts": ["api.example.com"], "secretName": "api-tls"}]
    with pytest.raises(ProfileError, match=r"services.api.ingress.port: 1234 is not a port of the service"):
        run({"api": {"image": "a", "ports": [{"target": 8000}]}},
            overrides={"api": ServiceOverride(ingress=Ingress(hosts=("a.example.com",), port=1234))})
    with pytest.raises(ProfileError, match=r"services.worker.ingress: the service has no ports"):
        run({"worker": {"image": "w"}}, overrides={"worker": ServiceOverride(ingress=Ingress(hosts=("a.b.c",)))})
    assert_valid(r)


def test_internal_network_becomes_a_network_policy() -> None:
    r = run({
        "proxy": {"image": "p", "networks": {"front": None}},
        "api": {"image": "a", "networks": {"front": None, "back": None}},
        "db": {"image": "postgres", "networks": {"back": None}},
        "cache": {"image": "redis", "networks": {"back": None, "cachenet": None}},
    }, networks={"front": {}, "back": {"internal": True}, "cachenet": {"internal": True}})
    back = r.get("NetworkPolicy", "back-internal")["spec"]
    assert back["podSelector"]["matchExpressions"][0]["values"] == ["cache", "db"]
    assert back["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] == ["api", "cache", "db"]
    assert back["egress"][1] == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert r.get("NetworkPolicy", "cachenet-internal")["spec"]["podSelector"]["matchExpressions"][0]["values"] == [
        "cache"]
    assert len(r.of_kind("NetworkPolicy")) == 2
    off = run({"db": {"image": "postgres", "networks": {"back": None}}}, networks={"back": {"internal": True}},
              kube={"network_policies": False})
    assert not off.of_kind("NetworkPolicy")
    assert_valid(r)


# ---------------------------------------------------------------------------------------------
# Resources, scaling, strategy
# ---------------------------------------------------------------------------------------------
def test_resources_replicas_autoscaling_and_budget() -> None:
    services = {"api": {"image": "a", "deploy": {"replicas": 3, "resources": {
        "limits": {"cpus": 1, "memory": "536870912"}, "reservations": {"cpus": 0.25, "memory": "268435456"}}}}}
    hpa = Autoscaling(min_replicas=2, max_replicas=8, cpu=70)
    r = run(services, overrides={"api": ServiceOverride(autoscaling=hpa, pdb=DisruptionBudget(max_unavailable=1))})
    assert container(r, "api")["resources"] == {"limits": {"cpu": "1", "memory": "512Mi"},
                                                "requests": {"cpu": "250m", "memory": "256Mi"}}
    assert "replicas" not in r.workload("api")["spec"]  # the autoscaler owns it
    spec = r.get("HorizontalPodAutoscaler", "api")["spec"]
    assert spec["minReplicas"] == 2 and spec["maxReplicas"] == 8
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 70}}}]
    assert r.get("PodDisruptionBudget", "api")["spec"]["maxUnavailable"] == 1
    plain = run(services)
    assert plain.workload("api")["spec"]["replicas"] == 3
    assert_valid(r)


def test_autoscaling_needs_requests_and_a_scalable_kind() -> None:
    with pytest.raises(ProfileError, match=r"services.api.autoscaling: utilization is measured against the cpu "
                                           r"request, and the service has none"):
        run({"api": {"image": "a"}}, overrides={"api": ServiceOverride(autoscaling=Autoscaling(1, 3))})
    with pytest.raises(ProfileError, match=r"services.agent.autoscaling: only a Deployment or StatefulSet"):
        run({"agent": {"image": "a", "deploy": {"mode": "global"}}},
            overrides={"agent": ServiceOverride(autoscaling=Autoscaling(1, 3))})


def test_pdb_that_blocks_drains_is_a_warning() -> None:
    r = run({"api": {"image": "a"}}, overrides={"api": ServiceOverride(pdb=DisruptionBudget(min_available=1))})
    assert any("blocks every voluntary eviction" in w for w in warnings_of(r))


def test_rolling_update_from_profile_or_update_config() -> None:
    r = run({"a": {"image": "a", "deploy": {"update_config": {"parallelism": 2, "order": "start-first",
                                                              "delay": "10s"}}},
             "b": {"image": "b", "deploy": {"update_config": {"parallelism": 1}}},
             "c": {"image": "c"}, "d": {"image": "d"}},
            overrides={"c": ServiceOverride(update=UpdateSettings(max_surge="25%", max_unavailable=0)),
                       "d": ServiceOverride(strategy="recreate")})
    assert r.workload("a")["spec"]["strategy"] == {"type": "RollingUpdate",
                                                  "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}
    assert r.workload("a")["spec"]["minReadySeconds"] == 10
    assert r.workload("b")["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert r.workload("c")["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    assert r.workload("d")["spec"]["strategy"] == {"type": "Recreate"}
    assert_valid(r)


def test_defaults_apply_to_services_without_their_own() -> None:
    r = run({"a": {"image": "a"}, "b": {"image": "b"}},
            overrides={"b": ServiceOverride(pull_policy="Never")},
            defaults=ServiceOverride(pull_policy="Always",
                                     resources=Resources(limits=ResourceSpec(cpus=0.5))))
    assert container(r, "a")["imagePullPolicy"] == "Always"
    assert container(r, "b")["imagePullPolicy"] == "Never"


# ---------------------------------------------------------------------------------------------
# Pods: images, commands, security
# ---------------------------------------------------------------------------------------------
def test_images_built_and_reused() -> None:
    services = {"api": {"build": {"context": "/p/api"}, "image": "acme/shop-api:dev"},
                "migrate": {"image": "acme/shop-api:dev"},
                "worker": {"build": {"context": "/p/worker"}},
                "db": {"image": "postgres:16"}}
    r = run(services, kube={"registry": "registry.example.com/shop", "image_tag": "1.4.2"})
    assert container(r, "api")["image"] == "registry.example.com/shop/shop-api:1.4.2"
    assert container(r, "migrate")["image"] == "registry.example.com/shop/shop-api:1.4.2"
    assert container(r, "worker")["image"] == "registry.example.com/shop/demo-worker:1.4.2"
    assert container(r, "db")["image"] == "postgres:16"
    local = run(services)
    assert container(local, "worker")["image"] == "demo-worker:latest"
    assert any("services.worker.build: is built locally and the profile sets no kubernetes.registry" in w
               for w in warnings_of(local))


def test_command_entrypoint_and_pod_settings() -> None:
    r = run({"app": {"image": "a", "entrypoint": ["/bin/sh", "-c"], "command": ["echo $(hostname) $$HOME"],
                     "working_dir": "/srv", "user": "1000", "read_only": True, "init": True,
                     "stop_grace_period": "1m30s", "hostname": "app-1", "pull_policy": "always"},
             "named": {"image": "n", "user": "node"}})
    c = container(r, "app")
    assert c["command"] == ["/bin/sh", "-c"] and c["args"] == ["echo $$(hostname) $HOME"]
    assert c["workingDir"] == "/srv" and c["imagePullPolicy"] == "Always"
    assert c["securityContext"] == {"readOnlyRootFilesystem": True}
    spec = pod(r, "app")
    assert spec["securityContext"] == {"runAsUser": 1000, "runAsNonRoot": True}
    assert spec["shareProcessNamespace"] is True and spec["terminationGracePeriodSeconds"] == 90
    assert spec["hostname"] == "app-1"
    assert spec["enableServiceLinks"] is False and spec["automountServiceAccountToken"] is False
    assert any("services.named.user: 'node' is a user name" in w for w in warnings_of(r))


def test_compose_labels_become_pod_annotations() -> None:
    r = run({"web": {"image": "n", "labels": {"traefik.http.routers.web.rule": "Host(`x`)", "bad key": "v"}}})
    assert annotations(r, "web")["traefik.http.routers.web.rule"] == "Host(`x`)"
    assert any("labels.bad key: is not a valid Kubernetes annotation key" in w for w in warnings_of(r))


# ---------------------------------------------------------------------------------------------
# Names and located errors
# ---------------------------------------------------------------------------------------------
def test_compose_names_that_are_not_dns_labels() -> None:
    r = run({"my_db": {"image": "postgres", "expose": ["5432"]}})
    assert r.get("Service", "my-db")
    assert any("services.my_db: is named 'my-db' in Kubernetes" in w for w in warnings_of(r))
    with pytest.raises(InputError, match=r"services.1web: cannot be named in Kubernetes"):
        run({"1web": {"image": "n"}})
    with pytest.raises(InputError, match=r"services.my_db: becomes the Kubernetes name 'my-db', like services.my-db"):
        run({"my-db": {"image": "n"}, "my_db": {"image": "n"}})


def test_profile_names_unknown_services_or_volumes() -> None:
    with pytest.raises(ProfileError, match=r"profiles/production.yaml: services.wbe: no such service"):
        run({"web": {"image": "n"}}, overrides={"wbe": ServiceOverride()})
    with pytest.raises(ProfileError, match=r"profiles/production.yaml: kubernetes.volumes.pgdta: no such named volume"):
        run({"web": {"image": "n"}}, kube={"volumes": {"pgdta": VolumeSettings()}})


def test_long_names_stay_valid() -> None:
    name = "a-very-long-service-name-that-goes-on-and-on-and-on-beyond-limits"
    r = run({name: {"image": "postgres", "expose": ["5432"],
                    "depends_on": {"m" * 60: {"condition": "service_completed_successfully"}}},
             "m" * 60: {"image": "x"}, "cron" + "x" * 55: {"image": "c"}},
            overrides={"cron" + "x" * 55: ServiceOverride(schedule="@daily")})
    assert_valid(r)
