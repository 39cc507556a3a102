"""What stackctl knows about well-known server images: which keep state, and where they keep it.

One list for every module that asks (`init` never scales them, the renderer makes them StatefulSets,
`doctor` warns about replicas of them, storage treats their data paths as data, resources sizes them),
so a database added here is known everywhere at once. Matching is on the image's last path
component (`postgres`, `bitnami/postgresql` → `postgresql`), without registry, tag or digest.
"""

from __future__ import annotations

from stackctl.kubernetes.names import parse_image

# Servers that keep state: one instance owns its data, so two replicas are two independent databases
# behind one Service. The renderer makes them StatefulSets even without a named volume.
STATEFUL_IMAGES = frozenset({
    "postgres", "postgresql", "postgis", "timescaledb", "pgvector", "mysql", "mariadb", "percona",
    "percona-server", "mongo", "mongodb", "redis", "redis-stack", "redis-stack-server", "valkey", "keydb",
    "dragonfly", "elasticsearch", "opensearch", "cassandra", "scylla", "clickhouse", "clickhouse-server",
    "couchdb", "cockroach", "neo4j", "influxdb", "etcd", "zookeeper", "cp-zookeeper", "kafka", "cp-kafka",
    "rabbitmq", "nats", "minio", "arangodb", "questdb", "typesense", "meilisearch", "qdrant", "weaviate", "solr",
})

# `postgres-15-alpine`-style names of the big ones; the tools named after them are not servers.
_STATEFUL_PREFIXES = ("postgres", "mysql", "mariadb", "mongo", "redis")
_TOOL_SUFFIXES = ("exporter", "express", "commander", "insight", "admin", "ui", "backup", "operator",
                  "client", "cli", "proxy", "web", "sentinel-exporter")

# Caches hold no data worth keeping, but N independent instances behind one Service split the cache:
# `init` does not scale them either.
SINGLE_INSTANCE_IMAGES = frozenset({"memcached"})

# Where each image writes its data (the official image's documented default, then the Bitnami one).
_DATA_PATHS: dict[str, tuple[str, ...]] = {
    "postgres": ("/var/lib/postgresql/data", "/var/lib/postgresql"),
    "postgis": ("/var/lib/postgresql/data", "/var/lib/postgresql"),
    "timescaledb": ("/var/lib/postgresql/data", "/home/postgres/pgdata"),
    "pgvector": ("/var/lib/postgresql/data", "/var/lib/postgresql"),
    "postgresql": ("/bitnami/postgresql", "/var/lib/postgresql/data"),
    "mysql": ("/var/lib/mysql", "/bitnami/mysql"),
    "percona": ("/var/lib/mysql",),
    "percona-server": ("/var/lib/mysql",),
    "mariadb": ("/var/lib/mysql", "/bitnami/mariadb"),
    "mongo": ("/data/db", "/data/configdb"),
    "mongodb": ("/bitnami/mongodb", "/data/db"),
    "redis": ("/data", "/bitnami/redis"),
    "redis-stack": ("/data",),
    "redis-stack-server": ("/data",),
    "valkey": ("/data", "/bitnami/valkey"),
    "keydb": ("/data",),
    "dragonfly": ("/data",),
    "elasticsearch": ("/usr/share/elasticsearch/data", "/bitnami/elasticsearch/data"),
    "opensearch": ("/usr/share/opensearch/data", "/bitnami/opensearch/data"),
    "cassandra": ("/var/lib/cassandra", "/bitnami/cassandra"),
    "scylla": ("/var/lib/scylla",),
    "clickhouse": ("/var/lib/clickhouse", "/bitnami/clickhouse"),
    "clickhouse-server": ("/var/lib/clickhouse",),
    "couchdb": ("/opt/couchdb/data", "/bitnami/couchdb"),
    "cockroach": ("/cockroach/cockroach-data",),
    "neo4j": ("/data",),
    "influxdb": ("/var/lib/influxdb2", "/var/lib/influxdb", "/bitnami/influxdb"),
    "etcd": ("/etcd-data", "/bitnami/etcd"),
    "zookeeper": ("/data", "/datalog", "/bitnami/zookeeper"),
    "cp-zookeeper": ("/var/lib/zookeeper/data", "/var/lib/zookeeper/log"),
    "kafka": ("/bitnami/kafka", "/var/lib/kafka/data"),
    "cp-kafka": ("/var/lib/kafka/data",),
    "rabbitmq": ("/var/lib/rabbitmq", "/bitnami/rabbitmq/mnesia"),
    "nats": ("/data",),
    "minio": ("/data", "/bitnami/minio/data"),
    "arangodb": ("/var/lib/arangodb3",),
    "questdb": ("/var/lib/questdb",),
    "typesense": ("/data",),
    "meilisearch": ("/meili_data",),
    "qdrant": ("/qdrant/storage",),
    "weaviate": ("/var/lib/weaviate",),
    "solr": ("/var/solr",),
}


def image_name(image: str | None) -> str:
    """The lower-cased last path component of an image reference (`''` for none)."""
    return parse_image(image).name.lower() if image else ""


def _known(image: str | None) -> str | None:
    """The key of a known stateful image (`postgres-15` → `postgres`), else None."""
    name = image_name(image)
    if name in STATEFUL_IMAGES:
        return name
    for prefix in _STATEFUL_PREFIXES:
        if name.startswith(f"{prefix}-") and not name.endswith(_TOOL_SUFFIXES):
            return prefix
    return None


def is_stateful_image(image: str | None) -> bool:
    """A database, queue, search engine or object store: never more than one independent replica."""
    return _known(image) is not None


def is_single_instance_image(image: str | None) -> bool:
    """Stateful, or a cache that N replicas would split: `init` scales none of these."""
    return is_stateful_image(image) or image_name(image) in SINGLE_INSTANCE_IMAGES


def data_paths(image: str | None) -> tuple[str, ...]:
    """The container paths a known image keeps its data under (empty for an unknown image)."""
    key = _known(image)
    return _DATA_PATHS.get(key, ()) if key else ()


def holds_data(image: str | None, target: str) -> bool:
    """Does a mount at `target` hold (part of) the image's data: the data path, inside it, or a parent
    of it (`/var/lib/postgresql` holds `/var/lib/postgresql/data`)?"""
    target = "/" + target.strip("/")
    for path in data_paths(image):
        if target == path or target.startswith(path + "/") or (target != "/" and path.startswith(target + "/")):
            return True
    return False


# Paths too generic to mean "a database's data" without knowing the image.
_GENERIC_PATHS = frozenset({"/data", "/datalog"})


def is_data_path(target: str) -> bool:
    """Is `target` (or a directory above it) where some known server keeps its data, whatever the
    image (`ghcr.io/acme/custom-postgres` mounting `/var/lib/postgresql/data`)? `/data` alone is too
    generic to count: ask `holds_data` with the image for that."""
    target = "/" + target.strip("/")
    return any(target == path or target.startswith(path + "/")
               for paths in _DATA_PATHS.values() for path in paths if path not in _GENERIC_PATHS)
