"""Which service `init` scales in the production profile: never one that keeps state."""

from __future__ import annotations

from typing import Any

import pytest

from stackctl.scaffold import scaled_service


def _pick(services: dict[str, Any], enabled: tuple[str, ...] = (), env: dict[str, str] | None = None) -> str | None:
    values = env or {}
    return scaled_service(services, enabled, values.get)


def test_databases_caches_and_data_volumes_are_never_scaled() -> None:
    assert _pick({
        "a-db": {"image": "postgres:16"},
        "b-cache": {"image": "memcached:1.6"},
        "c-kv": {"image": "${KV_IMAGE}"},  # interpolated with the imported .env: valkey
        "d-files": {"image": "acme/files", "volumes": ["uploads:/srv/uploads"]},
        "e-long": {"image": "acme/x", "volumes": [{"type": "volume", "source": "v", "target": "/v"}]},
        "f-pg": {"image": "acme/pg", "volumes": ["./pgdata:/var/lib/postgresql/data"]},
        "g-redis": {"image": "bitnami/redis", "volumes": ["/bitnami/redis"]},
    }, env={"KV_IMAGE": "valkey/valkey:8"}) is None


@pytest.mark.parametrize("volumes", [
    ["/app/node_modules"],  # an anonymous volume that is not a data path
    ["static:/srv/static:ro"],  # shared read-only content
    [{"type": "volume", "source": "static", "target": "/srv/static", "read_only": True}],
    [{"type": "tmpfs", "target": "/tmp"}],
    ["./nginx.conf:/etc/nginx/nginx.conf:ro"],
])
def test_stateless_mounts_do_not_prevent_scaling(volumes: list[Any]) -> None:
    assert _pick({"web": {"image": "acme/web", "volumes": volumes}}) == "web"


def test_a_service_that_serves_a_port_is_preferred_and_inactive_profiles_are_skipped() -> None:
    services = {"admin": {"image": "acme/admin", "profiles": ["ops"], "ports": ["9000:9000"]},
                "api": {"build": "."}, "web": {"image": "acme/web", "expose": ["80"]}}
    assert _pick(services) == "web"
    assert _pick(services, enabled=("ops",)) == "admin"
    assert _pick({"api": {"build": "."}, "worker": {"build": "."}}) == "api"


def test_an_image_with_a_required_variable_still_names_itself() -> None:
    assert _pick({"db": {"image": "mysql:${MYSQL_VERSION:?set it}"}}) is None
