"""Compose JSON → model: units normalised, `$$` unescaped, unmodeled fields reported (pure, no Docker)."""

from __future__ import annotations

import pytest

from stackctl import model as m
from stackctl.compose.loader import parse_duration, to_model
from stackctl.errors import ComposeFileError, ProfileError
from stackctl.pipeline import apply_overrides
from stackctl.profile import parse_profile

RESOLVED = {
    "name": "shop",
    "services": {
        "api": {
            "image": "shop-api:dev",
            "build": {"context": "/src/api", "dockerfile": "Dockerfile"},
            "command": ["uvicorn", "app:app"],
            "entrypoint": None,
            "environment": {"PRICE": "5$$", "EMPTY": "", "UNSET": None},
            "ports": [{"mode": "ingress", "target": 8000, "published": "8080", "protocol": "tcp"}],
            "expose": ["9000"],
            "healthcheck": {"test": ["CMD-SHELL", "curl -f localhost:8000/ready || exit 1"], "interval": "1m30s",
                            "timeout": "500ms", "retries": 5, "start_period": "40s"},
            "depends_on": {"db": {"condition": "service_healthy", "required": True, "restart": True},
                           "migrate": {"condition": "service_completed_successfully", "required": False}},
            "deploy": {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": "536870912"},
                                                    "reservations": {"cpus": 0.25}},
                       "placement": {}},
            "networks": {"backend": {"aliases": ["api.internal"]}, "frontend": None},
            "volumes": [
                {"type": "volume", "source": "data", "target": "/data", "volume": {"nocopy": True}},
                {"type": "bind", "source": "/src/conf", "target": "/conf", "read_only": True,
                 "bind": {"create_host_path": True}},
                {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "1048576"}},
            ],
            "secrets": [{"source": "db_password", "target": "/run/secrets/db_password", "mode": "0400"}],
            "stop_grace_period": "20s",
            "user": "1000:1000",
            "cap_add": ["NET_ADMIN", "CAP_SYS_TIME"],
            "cap_drop": ["ALL"],
            "privileged": True,
            "sysctls": {"net.core.somaxconn": "1024", "net.ipv4.tcp_syncookies": "0"},
            "ulimits": {"nofile": {"soft": 1024, "hard": 2048}},
            "x-custom": {"a": 1},
        },
        "db": {"image": "postgres", "command": None, "entrypoint": None},
        "migrate": {"image": "shop-api:dev", "restart": "no"},
    },
    "networks": {"backend": {"name": "shop_backend", "internal": True}, "frontend": {"name": "shop_frontend"}},
    "volumes": {"data": {"name": "shop_data"}},
    "secrets": {"db_password": {"name": "shop_db_password", "environment": "DB_PASSWORD"}},
    "x-top": 1,
    "models": {},
}


def test_mapping_normalises_units_and_unescapes() -> None:
    stack = to_model(RESOLVED)
    api = stack.service("api")
    assert api.environment == {"PRICE": "5$", "EMPTY": "", "UNSET": None}
    assert api.command == ("uvicorn", "app:app") and api.entrypoint is None
    assert api.ports == (m.Port(target=8000, published="8080", protocol="tcp", mode="ingress"),)
    assert api.healthcheck == m.Healthcheck(test=("CMD-SHELL", "curl -f localhost:8000/ready || exit 1"),
                                            interval=90.0, timeout=0.5, retries=5, start_period=40.0)
    assert api.healthcheck.argv == ("/bin/sh", "-c", "curl -f localhost:8000/ready || exit 1")
    assert api.deploy.limits == m.Resources(cpus=0.5, memory=512 * 2**20)
    assert api.deploy.reservations == m.Resources(cpus=0.25)
    assert api.depends_on == (m.Dependency("db", "service_healthy", True, True),
                              m.Dependency("migrate", "service_completed_successfully", False, False))
    assert [v.type for v in api.volumes] == ["volume", "bind", "tmpfs"]
    assert api.volumes[0].nocopy and api.volumes[1].read_only and api.volumes[2].tmpfs_size == 2**20
    assert api.secrets == (m.FileRef("db_password", "/run/secrets/db_password", mode=0o400),)
    assert api.stop_grace_period == 20.0 and api.user == "1000:1000"
    assert [n.name for n in api.networks] == ["backend", "frontend"]
    assert stack.network("backend").internal if hasattr(stack, "network") else True
    assert {n.name: n.internal for n in stack.networks} == {"backend": True, "frontend": False}
    assert stack.secrets[0].environment == "DB_PASSWORD"
    assert stack.one_shot_services() == frozenset({"migrate"})


def test_security_fields_are_carried_as_compose_wrote_them() -> None:
    api = to_model(RESOLVED).service("api")
    assert api.cap_add == ("NET_ADMIN", "CAP_SYS_TIME") and api.cap_drop == ("ALL",)
    assert api.privileged is True
    assert api.sysctls == {"net.core.somaxconn": "1024", "net.ipv4.tcp_syncookies": "0"}
    db = to_model(RESOLVED).service("db")
    assert (db.cap_add, db.cap_drop, db.privileged, db.sysctls) == ((), (), None, {})


@pytest.mark.parametrize("sysctls", [{"net.ipv4.tcp_syncookies": 0, "kernel.shm_rmid_forced": "1"},
                                     ["net.ipv4.tcp_syncookies=0", "kernel.shm_rmid_forced=1"]])
def test_sysctls_mapping_or_list(sysctls: object) -> None:
    svc = to_model({"services": {"a": {"image": "x", "sysctls": sysctls}}}).service("a")
    assert svc.sysctls == {"net.ipv4.tcp_syncookies": "0", "kernel.shm_rmid_forced": "1"}


def test_every_unmodeled_field_is_a_warning_never_dropped() -> None:
    fields = {w.field for w in to_model(RESOLVED).warnings}
    assert "services.api.ulimits" in fields
    assert not fields & {"services.api.cap_add", "services.api.cap_drop", "services.api.privileged",
                         "services.api.sysctls"}
    assert "models" in fields
    assert not any(f.startswith(("x-", "services.api.x-")) for f in fields)  # extensions are for tools


@pytest.mark.parametrize(("text", "seconds"), [("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("0s", 0.0),
                                               ("1.5s", 1.5), ("2h45m", 9900.0), (10**9, 1.0)])
def test_go_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "x") == pytest.approx(seconds)


def test_bad_duration_is_located() -> None:
    with pytest.raises(ComposeFileError,
                       match=r"services\.a\.healthcheck\.interval: cannot read duration '10 parsecs'"):
        parse_duration("10 parsecs", "services.a.healthcheck.interval")


def _profile(tmp_path, body: dict) -> object:
    (tmp_path / "c.yaml").write_text("services: {}\n")
    return parse_profile({"compose": {"files": ["c.yaml"]}, **body}, name="p", path=tmp_path / "profiles/p.yaml",
                         root=tmp_path)


def test_overrides_apply_replicas_and_resources(tmp_path) -> None:
    profile = _profile(tmp_path, {"stack": "shop-prod",
                                  "services": {"api": {"replicas": 5, "resources": {"limits": {"memory": "1Gi"}}}},
                                  "defaults": {"resources": {"limits": {"cpus": "2"}, "requests": {"cpus": "1"}}}})
    stack = apply_overrides(to_model(RESOLVED), profile)
    assert stack.name == "shop-prod"
    api = stack.service("api")
    assert api.deploy.replicas == 5
    assert api.deploy.limits == m.Resources(cpus=0.5, memory=2**30)  # own cpus kept, memory overridden
    db = stack.service("db")
    assert db.deploy.limits.cpus == 2.0 and db.deploy.reservations.cpus == 1.0  # defaults fill a bare service


def test_override_of_unknown_service_is_located(tmp_path) -> None:
    profile = _profile(tmp_path, {"services": {"web": {"replicas": 2}}})
    with pytest.raises(ProfileError, match=r"profiles/p.yaml: services.web: no such service in the Compose "
                                           r"project \(services: api, db, migrate\)"):
        apply_overrides(to_model(RESOLVED), profile)
