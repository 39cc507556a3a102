"""Storage on Kubernetes: bind-mounted data directories become claims, file modes survive, tmpfs is an
in-memory emptyDir, and identical ConfigMaps are one object (pure: no Docker, no cluster)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stackctl import model as m
from stackctl.compose.loader import to_model
from stackctl.kubernetes.gather import read_host_path
from stackctl.kubernetes.inputs import HostPath, Target
from stackctl.kubernetes.render import Rendered, render
from stackctl.kubernetes.validate import validate
from stackctl.profile.types import KubernetesSettings, ServiceOverride

PNG = b"\x89PNG\r\n\x1a\n\x00\x00"


def run(services: dict[str, Any], host: dict[str, HostPath] | None = None, *,
        overrides: dict[str, ServiceOverride] | None = None, **top: Any) -> Rendered:
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo"), services=overrides or {})
    return render(to_model({"name": "demo", "services": services, **top}), target, host=host or {})


def bind(source: str, target: str, *, read_only: bool = False) -> dict[str, Any]:
    return {"type": "bind", "source": source, "target": target, "read_only": read_only}


def pod(r: Rendered, service: str) -> dict[str, Any]:
    return r.workload(service)["spec"]["template"]["spec"]


def volume_of(r: Rendered, service: str, path: str) -> dict[str, Any]:
    spec = pod(r, service)
    name = next(mt["name"] for mt in spec["containers"][0]["volumeMounts"] if mt["mountPath"] == path)
    return next(v for v in spec.get("volumes", []) if v["name"] == name)


def messages(items: tuple[m.Warning_, ...]) -> list[str]:
    return [str(w) for w in items]


def valid(r: Rendered) -> None:
    assert validate(list(r.objects), "1.35") == []


# ---------------------------------------------------------------------------------------------
# Data directories
# ---------------------------------------------------------------------------------------------
def test_a_database_data_directory_that_does_not_exist_yet_is_a_claim_template() -> None:
    host = {"/p/pgdata": HostPath(kind="missing", display="pgdata", reason="it does not exist")}
    r = run({"db": {"image": "postgres:16", "volumes": [bind("/p/pgdata", "/var/lib/postgresql/data")]}}, host)
    db = r.workload("db")
    assert db["kind"] == "StatefulSet"
    assert [t["metadata"]["name"] for t in db["spec"]["volumeClaimTemplates"]] == ["pgdata"]
    mount = pod(r, "db")["containers"][0]["volumeMounts"]
    assert mount == [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}]
    assert not r.of_kind("ConfigMap") and not r.of_kind("PersistentVolumeClaim")
    # missing here, but it holds the data where the stack runs with Compose: a warning all the same
    assert any("services.db.volumes[0]: bind mount of pgdata is a directory the service writes to (the data "
               "directory of the postgres image)" in w and "it is empty or missing here" in w
               and "NOT copied" in w for w in messages(r.warnings))
    valid(r)


def test_a_data_directory_with_contents_warns_that_they_are_not_copied() -> None:
    host = {"/p/redis": HostPath(kind="dir", display="redis", files={"dump.rdb": b"REDIS\x00\xff"})}
    r = run({"cache": {"image": "redis:7", "volumes": [bind("/p/redis", "/data")]}}, host)
    assert messages(r.warnings) == [
        "services.cache.volumes[0]: bind mount of redis is a directory the service writes to (the data directory "
        "of the redis image): it becomes the volumeClaimTemplate redis (a claim per pod), created empty; its "
        "contents on this machine are NOT copied (copy them in with `kubectl cp`, or restore a backup, before the "
        "service needs them)"]
    assert "binaryData" not in str(r.objects)


@pytest.mark.parametrize(("info", "read_only", "data"), [
    (HostPath(kind="dir", display="d", files={"app.conf": b"a = 1\n", "sub/b.yaml": b"b: 2\n"}), False, False),
    (HostPath(kind="dir", display="d", files={"blob.bin": b"\x00\x01\xfe"}), True, False),  # read-only: config
    (HostPath(kind="dir", display="d", files={"logo.png": PNG, "index.html": b"<h1>hi</h1>"}), False, False),
    (HostPath(kind="dir", display="d", files={"blob.bin": b"\x00\x01\xfe"}), False, True),
    (HostPath(kind="dir", display="d", files={"PG_VERSION": b"16\n"}), False, True),  # a database's layout
    (HostPath(kind="dir", display="d", files={"app.sqlite3": b"SQLite format 3"}), False, True),
    (HostPath(kind="dir", display="d"), False, True),  # empty and writable
    (HostPath(kind="missing", display="d", reason="it does not exist"), False, True),
    (HostPath(kind="missing", display="d", reason="it does not exist"), True, False),
    (HostPath(kind="missing", display="app.conf", reason="it does not exist"), False, False),  # a file
    (HostPath(kind="too_large", display="d", reason="more than 256 files"), False, True),
    (HostPath(kind="too_large", display="d", reason="more than 256 files"), True, False),
    (HostPath(kind="too_large", display="d", reason="it holds .git/", source_tree=True), False, False),
    (HostPath(kind="file", display="f", files={"": b"\x00\x01"}), False, False),  # a file: never a claim
])
def test_which_bind_mounts_are_data(info: HostPath, read_only: bool, data: bool) -> None:
    r = run({"app": {"image": "acme/app", "volumes": [bind("/p/d", "/srv/d", read_only=read_only)]}},
            {"/p/d": info})
    claimed = "volumeClaimTemplates" in r.workload("app")["spec"]
    assert claimed is data
    assert r.workload("app")["kind"] == ("StatefulSet" if data else "Deployment")  # like a named volume
    if data:
        assert not r.of_kind("ConfigMap")
    valid(r)


def test_read_only_files_inside_a_data_path_are_configuration() -> None:
    host = {"/p/tls": HostPath(kind="dir", display="tls", files={"ca.crt": b"-----BEGIN CERTIFICATE-----\n"})}
    r = run({"cache": {"image": "redis:7", "volumes": [bind("/p/tls", "/data/tls", read_only=True)]}}, host)
    assert volume_of(r, "cache", "/data/tls")["configMap"] == {"name": "cache-tls"}
    assert "volumeClaimTemplates" not in r.workload("cache")["spec"]


def test_a_deployment_with_replicas_and_a_data_directory_gets_a_claim_and_a_warning() -> None:
    host = {"/p/uploads": HostPath(kind="dir", display="uploads", files={"a.jpg.bin": b"\xff\xd8\xff\x00"})}
    r = run({"app": {"image": "acme/app", "deploy": {"replicas": 3}, "volumes": [bind("/p/uploads", "/uploads")]}},
            host, overrides={"app": ServiceOverride(kind="Deployment")})
    app = r.workload("app")
    assert app["kind"] == "Deployment" and app["spec"]["strategy"] == {"type": "Recreate"}
    assert r.get("PersistentVolumeClaim", "uploads")["metadata"]["annotations"]["stackctl.io/prune"] == "false"
    assert volume_of(r, "app", "/uploads")["persistentVolumeClaim"] == {"claimName": "uploads"}
    text = "\n".join(messages(r.warnings))
    assert ("services.app.volumes[0]: the ReadWriteOnce claim uploads is mounted by the 3 replicas of this "
            "Deployment") in text
    assert "its contents on this machine are NOT copied" in text
    valid(r)


def test_one_data_directory_bound_by_two_services_is_one_claim_named_apart_from_named_volumes() -> None:
    host = {"/p/pgdata": HostPath(kind="missing", display="pgdata", reason="it does not exist"),
            "/p/media": HostPath(kind="dir", display="media")}
    r = run({
        "db": {"image": "postgres", "volumes": [bind("/p/pgdata", "/var/lib/postgresql/data")]},
        "old": {"image": "postgres", "volumes": [{"type": "volume", "source": "pgdata",
                                                  "target": "/var/lib/postgresql/data"}]},
        "web": {"image": "acme/web", "volumes": [bind("/p/media", "/media")]},
        "thumbs": {"image": "acme/thumbs", "volumes": [bind("/p/media", "/in")]},
    }, host, volumes={"pgdata": {}})
    templates = {s: [t["metadata"]["name"] for t in r.workload(s)["spec"].get("volumeClaimTemplates", [])]
                 for s in ("db", "old")}
    assert templates["old"] == ["pgdata"]
    assert templates["db"][0].startswith("pgdata-") and templates["db"][0] != "pgdata"
    assert [c["metadata"]["name"] for c in r.of_kind("PersistentVolumeClaim")] == ["media"]
    assert volume_of(r, "web", "/media") == volume_of(r, "thumbs", "/in")
    assert any(w.startswith("services.thumbs.volumes[0]: is shared by thumbs, web") for w in messages(r.warnings))
    valid(r)


def test_an_absolute_host_data_directory_is_a_claim_except_on_a_daemonset() -> None:
    host = {"/srv/pg": HostPath(kind="host", display="/srv/pg")}
    db = run({"db": {"image": "postgres", "volumes": [bind("/srv/pg", "/var/lib/postgresql/data")]}}, host)
    assert [t["metadata"]["name"] for t in db.workload("db")["spec"]["volumeClaimTemplates"]] == ["pg"]
    assert any("NOT copied" in w for w in messages(db.warnings))
    agent = run({"db": {"image": "postgres", "deploy": {"mode": "global"},
                        "volumes": [bind("/srv/pg", "/var/lib/postgresql/data")]}}, host)
    assert volume_of(agent, "db", "/var/lib/postgresql/data")["hostPath"] == {"path": "/srv/pg"}


# ---------------------------------------------------------------------------------------------
# File modes
# ---------------------------------------------------------------------------------------------
def test_an_executable_file_keeps_its_bit_and_a_config_file_keeps_the_default() -> None:
    host = {"/p/entry.sh": HostPath(kind="file", display="entry.sh", files={"": b"#!/bin/sh\n"}, modes={"": 0o755}),
            "/p/app.conf": HostPath(kind="file", display="app.conf", files={"": b"a=1\n"}, modes={"": 0o644}),
            "/p/run.sh": HostPath(kind="file", display="run.sh", files={"": b"#!/bin/sh\n"}, modes={"": 0o700})}
    r = run({"app": {"image": "alpine", "entrypoint": ["/entry.sh"], "volumes": [
        bind("/p/entry.sh", "/entry.sh", read_only=True), bind("/p/app.conf", "/etc/app.conf", read_only=True),
        bind("/p/run.sh", "/run.sh")]}}, host)
    assert volume_of(r, "app", "/entry.sh")["configMap"] == {"name": "app-entry-sh", "defaultMode": 0o755}
    assert volume_of(r, "app", "/etc/app.conf")["configMap"] == {"name": "app-app-conf"}
    assert volume_of(r, "app", "/run.sh")["configMap"]["defaultMode"] == 0o755  # owner-only x: runnable by all
    valid(r)


def test_a_directory_of_scripts_keeps_each_files_mode() -> None:
    files = {"10-init.sh": b"#!/bin/sh\n", "README": b"docs\n"}
    mixed = HostPath(kind="dir", display="init", files=files, modes={"10-init.sh": 0o755, "README": 0o644})
    scripts = HostPath(kind="dir", display="hooks", files=files, modes={"10-init.sh": 0o755, "README": 0o775})
    r = run({"app": {"image": "alpine", "volumes": [bind("/p/init", "/init", read_only=True),
                                                     bind("/p/hooks", "/hooks", read_only=True)]}},
            {"/p/init": mixed, "/p/hooks": scripts})
    assert volume_of(r, "app", "/init")["configMap"]["items"] == [
        {"key": "10-init.sh", "path": "10-init.sh", "mode": 0o755}, {"key": "README", "path": "README"}]
    assert volume_of(r, "app", "/hooks")["configMap"] == {"name": "app-init", "defaultMode": 0o755}  # same data
    valid(r)


def test_a_compose_config_whose_file_is_a_script_is_0555_unless_its_mode_is_set() -> None:
    host = {"/p/hc.sh": HostPath(kind="file", display="hc.sh", files={"": b"#!/bin/sh\n"}, modes={"": 0o755}),
            "/p/a.conf": HostPath(kind="file", display="a.conf", files={"": b"a\n"}, modes={"": 0o644})}
    r = run({"app": {"image": "alpine", "configs": [{"source": "hc", "target": "/hc"},
                                                    {"source": "conf", "target": "/a.conf"},
                                                    {"source": "hc", "target": "/hc2", "mode": 0o500}]}},
            host, configs={"hc": {"file": "/p/hc.sh"}, "conf": {"file": "/p/a.conf"}})
    modes = {mt["mountPath"]: v["configMap"]["items"][0]["mode"]
             for mt in pod(r, "app")["containers"][0]["volumeMounts"] for v in pod(r, "app")["volumes"]
             if v["name"] == mt["name"]}
    assert modes == {"/hc": 0o555, "/a.conf": 0o444, "/hc2": 0o500}


def test_gather_reads_modes_and_tells_a_source_tree(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "conf" / "app.conf").write_text("a=1\n")
    os.chmod(tmp_path / "conf" / "run.sh", 0o750)
    os.chmod(tmp_path / "conf" / "app.conf", 0o640)
    info = read_host_path(tmp_path / "conf", tmp_path)
    assert info.kind == "dir" and info.modes == {"run.sh": 0o750, "app.conf": 0o640}
    assert read_host_path(tmp_path / "conf" / "run.sh", tmp_path).modes == {"": 0o750}
    (tmp_path / "src" / ".git").mkdir(parents=True)
    tree = read_host_path(tmp_path / "src", tmp_path)
    assert tree.kind == "too_large" and tree.source_tree
    assert not read_host_path(tmp_path / "conf", tmp_path).source_tree


# ---------------------------------------------------------------------------------------------
# tmpfs
# ---------------------------------------------------------------------------------------------
def test_service_level_tmpfs_is_read_from_compose_json() -> None:
    stack = to_model({"name": "demo", "services": {"app": {"image": "a", "tmpfs": [
        "/run", "/tmp:size=64m,mode=1777", "/cache:size=100000,uid=1000", "/big:size=50%"]}}})
    app = stack.services[0]
    assert [(t.type, t.target, t.tmpfs_size, t.tmpfs_mode) for t in app.tmpfs] == [
        ("tmpfs", "/run", None, None), ("tmpfs", "/tmp", 64 * 2**20, 0o1777), ("tmpfs", "/cache", 100000, None),
        ("tmpfs", "/big", None, None)]
    assert [str(w) for w in stack.warnings] == [
        "services.app.tmpfs[3]: size=50% cannot be carried over (only a size in bytes, k, m, g or t); no size limit"]
    assert app.volumes == ()


def test_tmpfs_is_a_writable_memory_emptydir_under_a_read_only_root() -> None:
    r = run({"app": {"image": "nginx", "read_only": True, "tmpfs": ["/run", "/var/cache/nginx:size=64m"],
                     "volumes": [{"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1048576}}]}})
    container = pod(r, "app")["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert all("readOnly" not in mt for mt in container["volumeMounts"])
    assert volume_of(r, "app", "/run")["emptyDir"] == {"medium": "Memory"}
    assert volume_of(r, "app", "/var/cache/nginx")["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    assert volume_of(r, "app", "/tmp")["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Mi"}
    assert not r.warnings
    valid(r)


# ---------------------------------------------------------------------------------------------
# One ConfigMap per content
# ---------------------------------------------------------------------------------------------
def test_identical_config_directories_and_environments_are_one_configmap() -> None:
    files = {"app.yaml": b"a: 1\n", "log.yaml": b"level: info\n"}
    host = {"/p/conf": HostPath(kind="dir", display="conf", files=files),
            "/p/copy": HostPath(kind="dir", display="copy", files=files),
            "/p/other": HostPath(kind="dir", display="other", files={**files, "log.yaml": b"level: debug\n"}),
            "/p/conf/app.yaml": HostPath(kind="file", display="conf/app.yaml", files={"": b"a: 1\n"}),
            "/p/app2.yaml": HostPath(kind="file", display="app2.yaml", files={"": b"a: 1\n"})}
    common = {"image": "acme/app", "environment": {"REGION": "eu"}}
    services = {
        "b": {**common, "volumes": [bind("/p/conf", "/etc/app", read_only=True)]},
        "a": {**common, "volumes": [bind("/p/copy", "/etc/app", read_only=True)]},
        "c": {**common, "volumes": [bind("/p/other", "/etc/app", read_only=True)]},
        "d": {"image": "acme/app", "environment": {"REGION": "us"},
              "volumes": [bind("/p/conf/app.yaml", "/a.yaml", read_only=True),
                          bind("/p/app2.yaml", "/b.yaml", read_only=True)]},
    }
    r = run(services, host)
    names = sorted(c["metadata"]["name"] for c in r.of_kind("ConfigMap"))
    # a's copy and b's original are one (named after the first user), c differs in one file, the env of
    # a, b, c is one; d's two files hold the same bytes under different keys: two objects
    assert names == ["a-copy", "a-env", "c-other", "d-app-yaml", "d-app2-yaml", "d-env"]
    for svc in ("a", "b"):
        assert volume_of(r, svc, "/etc/app")["configMap"]["name"] == "a-copy"
        assert pod(r, svc)["containers"][0]["envFrom"] == [{"configMapRef": {"name": "a-env"}}]
    assert volume_of(r, "c", "/etc/app")["configMap"]["name"] == "c-other"
    hashes = {s: r.workload(s)["spec"]["template"]["metadata"]["annotations"]["stackctl.io/config-hash"]
              for s in ("a", "b", "c")}
    assert hashes["a"] == hashes["b"] != hashes["c"]
    assert render_twice_is_identical(services, host)
    valid(r)


def render_twice_is_identical(services: dict[str, Any], host: dict[str, HostPath]) -> bool:
    first, second = run(services, host), run(dict(reversed(list(services.items()))), host)
    return first.objects == second.objects and first.warnings == second.warnings


def test_a_directory_the_service_s_own_command_writes_to_is_data() -> None:
    """Airflow's init mounts the project (small text files) and runs `mkdir -p /sources/logs; chown -R
    ... /sources/{logs,dags}`: a read-only ConfigMap there makes the Job fail, so it is a claim."""
    host = {"/p": HostPath(kind="dir", display=".", files={"compose.yaml": b"services: {}\n", "dags/a.py": b"x=1\n"})}
    script = "mkdir -p /sources/logs /sources/dags\nchown -R \"50000:0\" /sources/{logs,dags}\nexec /entrypoint"
    r = run({"init": {"image": "apache/airflow:2.9", "entrypoint": ["/bin/bash"], "command": ["-c", script],
                      "volumes": [bind("/p", "/sources")]}}, host)
    assert not r.of_kind("ConfigMap") or all("sources" not in str(c) for c in r.of_kind("ConfigMap"))
    assert any("services.init.volumes[0]" in w and "the service's own command writes there (`mkdir -p "
               "/sources/logs /sources/dags`)" in w for w in messages(r.warnings))
    # the same files read by a command that does not write there stay configuration
    r = run({"web": {"image": "nginx", "command": ["cat", "/sources/compose.yaml"],
                     "volumes": [bind("/p", "/sources")]}}, host)
    assert r.of_kind("ConfigMap") and not [w for w in messages(r.warnings) if "volumes[0]" in w]
