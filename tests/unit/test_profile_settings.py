"""Per-service settings resolved once (stackctl.kubernetes.settings): defaults merged, combinations
checked in one place, so `doctor`, `render` and the local backend agree on what a profile means."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl import doctor
from stackctl.compose.loader import to_model
from stackctl.errors import ProfileError, StackctlError
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.render import render
from stackctl.kubernetes.settings import from_profile, resolve
from stackctl.profile import load_profile
from stackctl.profile.types import BlueGreen, Canary, Profile, ServiceOverride

WEB = {"image": "nginx:1.27", "ports": [{"target": 80, "protocol": "tcp"}]}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    return tmp_path


def write(root: Path, body: str) -> None:
    (root / "profiles" / "production.yaml").write_text("compose: {files: [compose.yaml]}\n" + body)


def load(root: Path, body: str) -> Profile:
    write(root, body)
    return load_profile(root, "production")


def render_profile(profile: Profile) -> None:
    render(to_model({"name": "demo", "services": {"web": WEB}}), Target.from_profile(profile))


@pytest.mark.parametrize("key", ["replicas: 5", "ingress: {hosts: [a.example.com]}",
                                 "placement: {anti_affinity: required}"])
def test_a_per_service_key_under_defaults_is_refused_not_ignored(root: Path, key: str) -> None:
    # `defaults: {replicas: 5}` used to be accepted and then applied nowhere
    with pytest.raises(ProfileError) as info:
        load(root, f"defaults: {{{key}}}\n")
    name = key.split(":")[0]
    assert str(info.value) == (f"profiles/production.yaml: defaults.{name}: can only be set per service "
                               f"(services.<name>.{name})")


def test_blue_green_settings_without_the_strategy_fail_doctor_as_they_fail_render(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = "services:\n  web:\n    strategy: rolling\n    blue_green: {keep_previous: false}\n"
    expected = "profiles/production.yaml: services.web.blue_green: only applies with strategy: blue-green"
    profile = load(root, body)  # each key is valid on its own
    with pytest.raises(ProfileError) as info:
        render_profile(profile)
    assert str(info.value) == expected

    def no_docker() -> tuple[str, str]:
        raise StackctlError("not in this test")

    monkeypatch.setattr(doctor, "_docker_engine", no_docker)
    monkeypatch.setattr(doctor, "_compose", no_docker)
    check = next(c for c in doctor.run_checks(root, "production", reach_cluster=False) if c.name == "profile")
    assert (check.status, check.detail) == ("fail", expected)


def test_a_valid_profile_is_valid_for_doctor_too(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(root, "services:\n  web:\n    strategy: blue-green\n    blue_green: {keep_previous: false}\n")
    monkeypatch.setattr(doctor, "_docker_engine", lambda: ("ok", "stub"))
    monkeypatch.setattr(doctor, "_compose", lambda: (_ for _ in ()).throw(StackctlError("stub")))
    check = next(c for c in doctor.run_checks(root, "production", reach_cluster=False) if c.name == "profile")
    assert check.status == "ok"


def test_defaults_fill_what_a_service_leaves_unset_and_errors_name_the_key_written() -> None:
    settings = resolve({"web": ServiceOverride(strategy="canary"), "db": ServiceOverride(replicas=1)},
                       ServiceOverride(strategy="rolling", shutdown_delay=3), file="profiles/production.yaml")
    db = settings.of("db")
    assert (db.strategy, db.replicas, db.where("strategy"), db.where("replicas")) == (
        "rolling", 1, "defaults.strategy", "services.db.replicas")
    assert settings.of("unnamed").shutdown_delay == 3
    assert settings.replicas == {"db": 1}
    with pytest.raises(ProfileError, match=r"^profiles/production.yaml: defaults.blue_green: only applies with "
                                           r"strategy: blue-green \(services.web sets strategy: canary\)$"):
        resolve({"web": ServiceOverride(strategy="canary", canary=Canary())},
                ServiceOverride(strategy="blue-green", blue_green=BlueGreen()), file="profiles/production.yaml")


def test_replicas_reach_the_model_once(root: Path) -> None:
    from stackctl.pipeline import apply_overrides

    profile = load(root, "services:\n  web: {replicas: 3}\n")
    stack = apply_overrides(to_model({"name": "demo", "services": {"web": WEB}}), profile)
    assert stack.services[0].deploy.replicas == 3
    assert from_profile(profile).replicas == {"web": 3}
