"""compose.loader without a Compose run: blank variables named once with every use, the `.env` a
profile does not read, and the notes where the Compose environment and the profile disagree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackctl import model as m
from stackctl.compose import loader
from stackctl.errors import ComposeFileError
from stackctl.profile import load_profile

COMPOSE = """\
services:
  api:
    image: ghcr.io/acme/api:${IMAGE_TAG}
    user: "${UID}:${GID}"
    read_only: ${READ_ONLY}
    environment: {LEVEL: "${LEVEL:-info}", OPT: "${OPT-x}"}
  worker:
    image: ghcr.io/acme/api:${IMAGE_TAG}
"""


def _project(tmp_path: Path, compose: str = COMPOSE, profile: str = "compose: {files: [compose.yaml]}\n",
             files: dict[str, str] | None = None) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text(compose)
    (tmp_path / "profiles" / "local.yaml").write_text(profile)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMPOSE_FILE", "COMPOSE_PROFILES", "IMAGE_TAG", "UID", "GID", "READ_ONLY", "LEVEL", "OPT"):
        monkeypatch.delenv(name, raising=False)


def _invocation(root: Path) -> loader.ComposeInvocation:
    return loader.invocation_for(load_profile(root, "local"))[0]


def test_blank_image_is_one_error_per_variable_with_every_use(tmp_path: Path) -> None:
    root = _project(tmp_path)
    data = {"services": {"api": {"image": "ghcr.io/acme/api:", "user": "1000:1000"},
                         "worker": {"image": "ghcr.io/acme/api:"}}}
    err = loader.blank_field_error(data, _invocation(root), root, {"UID": "1000", "GID": "1000"}, hint="set it")
    assert err is not None and err.hint == "set it"
    assert err.message == (
        "IMAGE_TAG is not set (used in compose.yaml: services.api.image, services.worker.image), so the result "
        "cannot work (services.api.image: image 'ghcr.io/acme/api:' is not an image reference (empty tag), "
        "services.worker.image: image 'ghcr.io/acme/api:' is not an image reference (empty tag))")


def test_blank_user_part_and_a_set_but_empty_variable(tmp_path: Path) -> None:
    root = _project(tmp_path)
    data = {"services": {"api": {"image": "ghcr.io/acme/api:1", "user": "1000:"}}}
    err = loader.blank_field_error(data, _invocation(root), root, {"IMAGE_TAG": "1", "UID": "1000", "GID": ""})
    assert err is not None
    assert err.message.startswith("GID is blank (used in compose.yaml: services.api.user), so the result cannot work")
    assert "UID" not in err.message  # it has a value: not a cause


def test_valid_or_unexplained_values_are_not_errors(tmp_path: Path) -> None:
    root = _project(tmp_path)
    env = {"IMAGE_TAG": "1", "UID": "1", "GID": "2"}
    ok = {"services": {"api": {"image": "ghcr.io/acme/api:1", "user": "1:2"}, "worker": {"build": {}}}}
    assert loader.blank_field_error(ok, _invocation(root), root, env) is None
    # an invalid reference that no blank variable made (uppercase): not this check's business
    odd = {"services": {"api": {"image": "Acme/API:1"}}}
    assert loader.blank_field_error(odd, _invocation(root), root, env) is None


def test_compose_cast_error_gets_the_blank_variable(tmp_path: Path) -> None:
    root = _project(tmp_path)
    exc = ComposeFileError("failed to cast to expected type: invalid boolean: ", file="compose.yaml",
                           field="services.api.read_only")
    out = loader.explain_blank(exc, _invocation(root), root, {"READ_ONLY": ""}, hint="set it")
    assert out.message == ("READ_ONLY is blank (used in compose.yaml: services.api.read_only): failed to cast to "
                           "expected type: invalid boolean: ")
    assert (out.file, out.field, out.hint) == ("compose.yaml", "services.api.read_only", "set it")
    # a value that is there but wrong: Compose's message stands alone
    assert loader.explain_blank(exc, _invocation(root), root, {"READ_ONLY": "maybe"}) is exc


def test_fieldless_compose_errors(tmp_path: Path) -> None:
    root = _project(tmp_path, compose="services:\n  a:\n    image: ${IMG}\n  b:\n    image: x\n"
                                      "    volumes: ['${DATA}:/data']\n    environment: {E: $EMPTY}\n")
    inv = _invocation(root)
    no_image = ComposeFileError('service "a" has neither an image nor a build context specified: invalid compose '
                                'project')
    out = loader.explain_blank(no_image, inv, root, {})
    assert out.message.startswith("IMG is not set (used in compose.yaml: services.a.image): service \"a\" has")
    spec = ComposeFileError("invalid spec: :/data: empty section between colons")
    out = loader.explain_blank(spec, inv, root, {})
    assert out.message == ("DATA is not set (used in compose.yaml: services.b.volumes[0]); IMG is not set (used in "
                           "compose.yaml: services.a.image): invalid spec: :/data: empty section between colons")
    assert "EMPTY" not in out.message  # a blank environment value is legitimate
    other = ComposeFileError("services.b.ports must be a list")
    assert loader.explain_blank(other, inv, root, {}) is other
    required = ComposeFileError("required variable IMG is missing a value", field="services.a.image")
    assert loader.explain_blank(required, inv, root, {}) is required


def test_unset_warnings_are_grouped_once_per_variable(tmp_path: Path) -> None:
    root = _project(tmp_path)
    unset = 'The "IMAGE_TAG" variable is not set. Defaulting to a blank string.'
    other = m.Warning_("compose", "something else")
    out = loader.grouped_unset_warnings([m.Warning_("compose", unset), other, m.Warning_("compose", unset)],
                                        _invocation(root), root)
    assert out == [m.Warning_("compose", "IMAGE_TAG is not set (used in compose.yaml: services.api.image, "
                                         "services.worker.image); Compose uses a blank string"), other]
    nowhere = m.Warning_("compose", 'The "ELSEWHERE" variable is not set. Defaulting to a blank string.')
    assert loader.grouped_unset_warnings([nowhere], _invocation(root), root) == [nowhere]


def test_unread_dotenv_warns_only_for_used_undefined_values(tmp_path: Path) -> None:
    profile = "compose: {files: [compose.yaml]}\nenv: {file: .env.production}\n"
    root = _project(tmp_path, profile=profile, files={".env": "IMAGE_TAG=1\nUID=1\nUNUSED=x\nCOMPOSE_PROFILES=a\n",
                                                       ".env.example": "UID=\n"})
    _, warnings = loader.invocation_for(load_profile(root, "local"))
    unread = [w for w in warnings if w.field == "profiles/local.yaml: env"]
    assert len(unread) == 1 and "the Compose files use IMAGE_TAG from it" in unread[0].message
    assert "UID" not in unread[0].message and "UNUSED" not in unread[0].message
    assert "`stackctl init --import-env`" in unread[0].message
    # the profile that reads .env (the local default) hears nothing
    (root / "profiles" / "local.yaml").write_text("compose: {files: [compose.yaml]}\n")
    _, warnings = loader.invocation_for(load_profile(root, "local"))
    assert not [w for w in warnings if w.field.endswith(": env")]


def test_environment_notes(tmp_path: Path) -> None:
    root = _project(tmp_path, profile="compose: {files: [compose.yaml], profiles: [web]}\nenv: {file: .env.x}\n",
                    files={".env": "COMPOSE_FILE=compose.yaml:more.yaml\nCOMPOSE_PROFILES=web,debug\n",
                           "docker-compose.override.yml": "services: {}\n"})
    prof = load_profile(root, "local")
    inv = loader.invocation_for(prof)[0]
    notes = loader.environment_notes(prof, inv, {"COMPOSE_PROFILES": "web"})
    assert notes == [
        "COMPOSE_FILE in .env (not read for this profile) names compose.yaml, more.yaml; stackctl uses "
        "profiles/local.yaml compose.files (compose.yaml)",
        "docker-compose.override.yml is not in profiles/local.yaml compose.files (`docker compose` alone loads it); "
        "add it there if this profile needs it",
    ]  # the shell's COMPOSE_PROFILES wins over .env and agrees with the profile
    notes = loader.environment_notes(prof, inv, {})
    assert ("COMPOSE_PROFILES in .env (not read for this profile) is web,debug; stackctl uses profiles/local.yaml "
            "compose.profiles (web)") in notes
    sep = {"COMPOSE_FILE": f"compose.yaml{os.pathsep}docker-compose.override.yml", "COMPOSE_PROFILES": "web"}
    (root / "profiles" / "local.yaml").write_text(
        "compose: {files: [compose.yaml, docker-compose.override.yml], profiles: [web]}\n")
    prof = load_profile(root, "local")
    assert loader.environment_notes(prof, loader.invocation_for(prof)[0], sep) == []


@pytest.mark.parametrize(("value", "expected"), [
    ("a,b", ["a", "b"]), (" a , ,b,a ", ["a", "b"]), ("", []),
])
def test_profile_list(value: str, expected: list[str]) -> None:
    assert loader.profile_list(value) == expected


def test_compose_file_list() -> None:
    assert loader.compose_file_list("a.yml:b.yml", None if os.pathsep == ":" else ":") == ["a.yml", "b.yml"]
    assert loader.compose_file_list("a.yml;b.yml", ";") == ["a.yml", "b.yml"]
