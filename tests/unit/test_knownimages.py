"""stackctl.knownimages: the one list of stateful images and their data paths."""

from __future__ import annotations

import pytest

from stackctl.knownimages import data_paths, holds_data, is_data_path, is_single_instance_image, is_stateful_image


@pytest.mark.parametrize("image", [
    "postgres:16", "docker.io/library/postgres:16-alpine", "bitnami/postgresql:15", "mariadb:11",
    "mysql@sha256:" + "a" * 64, "redis:7-alpine", "valkey/valkey:8",
    "docker.elastic.co/elasticsearch/elasticsearch:8.13.0",
    "opensearchproject/opensearch:2", "rabbitmq:3-management", "bitnami/kafka:3.7", "zookeeper:3.9",
    "quay.io/coreos/etcd:v3.5", "minio/minio", "clickhouse/clickhouse-server:24", "cassandra:5", "neo4j:5",
    "influxdb:2.7", "mongo:7", "postgres-custom:1", "localhost:5000/redis:7",
])
def test_stateful(image: str) -> None:
    assert is_stateful_image(image)
    assert is_single_instance_image(image)


@pytest.mark.parametrize("image", [
    None, "", "nginx:1.27", "traefik:v3", "mongo-express:1", "oliver006/redis_exporter", "redis-commander",
    "prometheuscommunity/postgres-exporter", "ghcr.io/acme/api:1.2", "adminer", "memcached:1.6",
])
def test_not_stateful(image: str | None) -> None:
    assert not is_stateful_image(image)


def test_memcached_is_single_instance_but_not_stateful() -> None:
    assert is_single_instance_image("memcached:1.6") and not is_stateful_image("memcached:1.6")


def test_data_paths() -> None:
    assert "/var/lib/postgresql/data" in data_paths("postgres:16")
    assert data_paths("mysql:8")[0] == "/var/lib/mysql"
    assert "/data" in data_paths("redis:7")
    assert "/usr/share/elasticsearch/data" in data_paths("docker.elastic.co/elasticsearch/elasticsearch:8")
    assert "/bitnami/postgresql" in data_paths("bitnami/postgresql:16")
    assert "/var/lib/rabbitmq" in data_paths("rabbitmq:3")
    assert data_paths("nginx") == () and data_paths(None) == ()


@pytest.mark.parametrize(("image", "target", "expected"), [
    ("postgres:16", "/var/lib/postgresql/data", True),
    ("postgres:16", "/var/lib/postgresql/data/pgdata", True),
    ("postgres:16", "/var/lib/postgresql/", True),
    ("postgres:16", "/docker-entrypoint-initdb.d", False),
    ("postgres:16", "/", False),
    ("redis:7", "/data", True),
    ("redis:7", "/usr/local/etc/redis/redis.conf", False),
    ("nginx", "/data", False),
])
def test_holds_data(image: str, target: str, expected: bool) -> None:
    assert holds_data(image, target) is expected


@pytest.mark.parametrize(("target", "expected"), [
    ("/var/lib/postgresql/data", True), ("/var/lib/mysql/", True), ("/usr/share/elasticsearch/data/nodes", True),
    ("/bitnami/postgresql", True), ("/data", False), ("/srv/app", False), ("/var/lib", False),
])
def test_is_data_path_without_the_image(target: str, expected: bool) -> None:
    assert is_data_path(target) is expected
