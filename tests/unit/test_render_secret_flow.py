"""A value is secret when any secret flows into it (issue 18, "Secrets leak by side paths"):
wherever it was written (`env_file:`, a `.env.example` default, a Compose value), the renderer
sees it as a marker (`<secret:NAME>`, a render without values) or as the store's plaintext (a
render with values), and puts the key in the Secret either way."""

from __future__ import annotations

import base64
from typing import Any

from stackctl.kubernetes.inputs import HostPath, SecretInputs
from tests.unit.test_render import container, pod, run

SERVICES: dict[str, Any] = {"web": {"image": "w", "environment": {
    "LOG_LEVEL": "info",
    "JAVA_OPTS": "-Xmx1g -Ddb.password=<secret:DB_PASSWORD>",
    "CACHE_URL": "redis://:<secret:REDIS_PASSWORD>@cache:6379/0",
    "SIGNING_PUBLIC": "<public:SIGNING_KEY>",
}}}
KEYS = frozenset({"DB_PASSWORD", "REDIS_PASSWORD"})


def _where(r: Any) -> dict[str, str]:
    """Container variable → "secret" or "config"."""
    c = container(r, "web")
    out = {e["name"]: "secret" for e in c.get("env", []) if "valueFrom" in e}
    for ref in c.get("envFrom", []):
        data = r.get("ConfigMap", ref["configMapRef"]["name"])["data"]
        out.update(dict.fromkeys(data, "config"))
    return out


def test_a_marker_in_a_value_puts_it_in_the_secret() -> None:
    r = run(SERVICES, inputs=SecretInputs(keys=KEYS))
    assert _where(r) == {"LOG_LEVEL": "config", "JAVA_OPTS": "secret", "CACHE_URL": "secret",
                         "SIGNING_PUBLIC": "config"}


def test_the_plaintext_in_a_value_puts_it_in_the_secret_with_its_value() -> None:
    real = {"web": {"image": "w", "environment": {
        "LOG_LEVEL": "info", "JAVA_OPTS": "-Xmx1g -Ddb.password=pw-0123456789",
        "CACHE_URL": "redis://:rd-9876543210@cache:6379/0", "SIGNING_PUBLIC": "ssh-ed25519 AAAA"}}}
    values = {"DB_PASSWORD": "pw-0123456789", "REDIS_PASSWORD": "rd-9876543210", "SHORT": "in"}
    r = run(real, inputs=SecretInputs(keys=KEYS, values=values))
    assert _where(r) == {"LOG_LEVEL": "config", "JAVA_OPTS": "secret", "CACHE_URL": "secret",
                         "SIGNING_PUBLIC": "config"}  # "in" (too short to track) is inside "info"
    data = r.get("Secret", "demo-env")["data"]
    assert base64.b64decode(data["web.JAVA_OPTS"]) == b"-Xmx1g -Ddb.password=pw-0123456789"


def test_url_credentials_without_a_user_are_found() -> None:
    r = run({"web": {"image": "w", "environment": {"QUEUE": "redis://:hunter2@cache:6379/0"}}})
    assert _where(r) == {"QUEUE": "secret"}


def test_a_bind_mounted_env_file_is_a_secret() -> None:
    services = {"web": {"image": "w", "volumes": [{"type": "bind", "source": "/p/.env", "target": "/app/.env",
                                                   "read_only": True}]}}
    host = {"/p/.env": HostPath(kind="file", display=".env", files={"": b"DB_PASSWORD=pw\n"}, secret=True)}
    masked = run(services, host=host)
    assert not [o for o in masked.objects if o["kind"] == "ConfigMap"]
    secret = masked.get("Secret", "web-env")
    assert secret["data"] == {".env": ""} and secret["metadata"]["annotations"]["stackctl.io/values"] == "omitted"
    assert pod(masked, "web")["volumes"][0]["secret"] == {"secretName": "web-env"}
    full = run(services, host=host, inputs=SecretInputs(values={}))
    assert base64.b64decode(full.get("Secret", "web-env")["data"][".env"]) == b"DB_PASSWORD=pw\n"


def test_a_secret_in_the_command_is_a_variable_from_the_secret() -> None:
    masked = {"cache": {"image": "redis", "command": ["redis-server", "--requirepass", "<secret:REDIS_PASSWORD>",
                                                       "--x=$(date)-<secret:REDIS_PASSWORD>"],
                        "environment": {"REDIS_PASSWORD": "other"}}}
    # Not an @secret key here: the container's own REDIS_PASSWORD (a credential by its name) may be
    # another value than the store's.
    r = run(masked, inputs=SecretInputs(keys=frozenset({"DB_PASSWORD"}), digests={"REDIS_PASSWORD": "d1"}))
    c = container(r, "cache")
    var = "STACKCTL_SECRET_REDIS_PASSWORD"
    assert c["args"] == ["redis-server", "--requirepass", f"$({var})", f"--x=$$(date)-$({var})"]
    assert {"name": var, "valueFrom": {"secretKeyRef": {"name": "demo-env", "key": f"cache.{var}"}}} in c["env"]
    real = {"cache": {"image": "redis", "command": ["redis-server", "--requirepass", "rd-9876543210"]}}
    full = run(real, inputs=SecretInputs(keys=KEYS, values={"REDIS_PASSWORD": "rd-9876543210"}))
    c = container(full, "cache")
    assert c["args"] == ["redis-server", "--requirepass", "$(REDIS_PASSWORD)"]
    assert c["env"] == [{"name": "REDIS_PASSWORD",
                         "valueFrom": {"secretKeyRef": {"name": "demo-env", "key": "REDIS_PASSWORD"}}}]
    assert base64.b64decode(full.get("Secret", "demo-env")["data"]["REDIS_PASSWORD"]) == b"rd-9876543210"


def test_a_label_holding_a_secret_is_dropped() -> None:
    r = run({"web": {"image": "w", "labels": {"example.io/dsn": "postgres://app:<secret:DB_PASSWORD>@db/app",
                                              "example.io/team": "shop"}}}, inputs=SecretInputs(keys=KEYS))
    annotations = r.workload("web")["spec"]["template"]["metadata"]["annotations"]
    assert "example.io/dsn" not in annotations and annotations["example.io/team"] == "shop"
    assert any("labels.example.io/dsn: holds a secret" in str(w) for w in r.warnings)


def test_a_secret_in_a_probe_is_read_by_a_shell_from_the_environment() -> None:
    cache = {"cache": {"image": "redis", "healthcheck": {
        "test": ["CMD", "redis-cli", "-a", "<secret:REDIS_PASSWORD>", "--x", "it's $HOME", "ping"]}}}
    r = run(cache, inputs=SecretInputs(keys=KEYS))
    c = container(r, "cache")
    assert c["readinessProbe"]["exec"]["command"] == [
        "/bin/sh", "-c", "exec redis-cli -a \"${REDIS_PASSWORD}\" --x 'it'\"'\"'s $HOME' ping"]
    assert c["env"] == [{"name": "REDIS_PASSWORD",
                         "valueFrom": {"secretKeyRef": {"name": "demo-env", "key": "REDIS_PASSWORD"}}}]
    assert any("healthcheck: uses a secret: the probe runs through sh" in str(n) for n in r.notes)
    curl = {"web": {"image": "w", "healthcheck": {
        "test": ["CMD", "curl", "-f", "-H", "Authorization: Bearer <secret:DB_PASSWORD>", "http://localhost/"]}}}
    probe = container(run(curl, inputs=SecretInputs(keys=KEYS)), "web")["readinessProbe"]
    assert "httpGet" not in probe  # a header would hold the value
    assert probe["exec"]["command"][2] == ("exec curl -f -H \"Authorization: Bearer ${DB_PASSWORD}\" "
                                           "http://localhost/")
