"""Small, pure translations used by the renderer: names, quantities, images, probes.

Each function maps one Compose notion to its Kubernetes form and knows nothing about the objects
around it, so each is unit-tested on its own (tests/unit/test_render_mapping.py).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Kubernetes name grammars (apimachinery/pkg/util/validation).
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Images of servers that keep state: they become StatefulSets even without a named volume.
DATABASE_IMAGES = frozenset({
    "postgres", "postgresql", "postgis", "timescaledb", "mysql", "mariadb", "percona", "percona-server",
    "mongo", "mongodb", "redis", "redis-stack", "redis-stack-server", "valkey", "keydb", "dragonfly",
    "elasticsearch", "opensearch", "cassandra", "scylla", "clickhouse", "clickhouse-server", "couchdb",
    "cockroach", "neo4j", "influxdb", "etcd", "zookeeper", "kafka", "cp-kafka", "rabbitmq", "nats",
    "minio", "arangodb", "questdb", "typesense", "meilisearch", "qdrant", "weaviate", "solr",
})


# Ports the official images listen on: used only for a service with neither `ports` nor `expose`.
IMAGE_PORTS: dict[str, tuple[int, ...]] = {
    "postgres": (5432,), "postgresql": (5432,), "postgis": (5432,), "timescaledb": (5432,), "pgvector": (5432,),
    "mysql": (3306,), "mariadb": (3306,), "percona": (3306,), "percona-server": (3306,),
    "mongo": (27017,), "mongodb": (27017,), "redis": (6379,), "redis-stack-server": (6379,), "valkey": (6379,),
    "keydb": (6379,), "dragonfly": (6379,), "memcached": (11211,), "rabbitmq": (5672,),
    "elasticsearch": (9200,), "opensearch": (9200,), "cassandra": (9042,), "scylla": (9042,),
    "clickhouse-server": (8123, 9000), "couchdb": (5984,), "neo4j": (7474, 7687), "influxdb": (8086,),
    "etcd": (2379,), "zookeeper": (2181,), "kafka": (9092,), "cp-kafka": (9092,), "nats": (4222,),
    "minio": (9000,), "meilisearch": (7700,), "typesense": (8108,), "qdrant": (6333,), "nginx": (80,),
    "httpd": (80,), "caddy": (80,), "traefik": (80,), "mailhog": (1025, 8025), "mailpit": (1025, 8025),
}
# Default ports of URL schemes, for `redis://cache/0`-style references without a port.
SCHEME_PORTS = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379,
                "rediss": 6379, "amqp": 5672, "mongodb": 27017, "nats": 4222, "http": 80, "https": 443,
                "memcached": 11211}


def image_ports(image: str | None) -> tuple[int, ...]:
    if not image:
        return ()
    return IMAGE_PORTS.get(parse_image(image).name.lower(), ())


_HOST_REF = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://(?:[^@/\s]+@)?)?(?P<host>[\w.-]+)(?::(?P<port>\d{1,5}))?",
                       re.IGNORECASE)


def host_references(value: str) -> list[tuple[str, int | None]]:
    """(host, port) pairs a value connects to: `postgres://u:p@db:5432/x` → [("db", 5432)],
    `redis://cache/0` → [("cache", 6379)], `kafka:9092` → [("kafka", 9092)]; port None when
    neither given nor implied by the scheme."""
    out: list[tuple[str, int | None]] = []
    for match in _HOST_REF.finditer(value):
        port: int | None = int(match.group("port")) if match.group("port") else None
        scheme = match.group("scheme")
        if port is None and scheme:
            port = SCHEME_PORTS.get(scheme.split(":", 1)[0].lower())
        if port is not None and not 0 < port < 65536:
            port = None
        out.append((match.group("host"), port))
    return out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: rendering a large stack allocates tens of thousands of
    small dicts and no cycles, and each full collection rescans them all, which made render time
    grow faster than the stack. Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class FileMode(int):
    """A file permission: written as octal YAML (`0444`), which Kubernetes reads as YAML 1.1 octal."""

    def __repr__(self) -> str:
        return f"0{self:o}"


def short_hash(*parts: str, length: int = 8) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


def dns_label(text: str) -> str | None:
    """A DNS-1123 label made from a Compose name (`my_db` → `my-db`), or None if none can be."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name:
        return None
    if len(name) > 63:
        name = f"{name[:54].rstrip('-')}-{short_hash(text)}"
    return name if DNS1123_LABEL.match(name) else None


def service_name(text: str) -> str | None:
    """A Service name (DNS-1035: must start with a letter), or None."""
    name = dns_label(text)
    if name is None or not DNS1035_LABEL.match(name):
        return None
    return name


def with_suffix(base: str, suffix: str, limit: int = 63) -> str:
    """`base-suffix`, shortened with a hash when it would exceed `limit` characters."""
    name = f"{base}-{suffix}"
    if len(name) <= limit:
        return name
    keep = limit - len(suffix) - 10
    return f"{base[:keep].rstrip('-')}-{short_hash(base)}-{suffix}"


def config_key(text: str) -> str:
    """A ConfigMap/Secret data key from a file name (`my file.conf` → `my_file.conf`)."""
    key = re.sub(r"[^-._a-zA-Z0-9]", "_", text) or "_"
    return key if key not in (".", "..") else f"_{key}"


def port_name(port: int, protocol: str, given: str | None = None) -> str:
    """A container/Service port name: ≤ 15 characters, lowercase, with at least one letter."""
    if given:
        name = re.sub(r"[^a-z0-9-]+", "-", given.lower()).strip("-")
        name = re.sub(r"-{2,}", "-", name)
        if name and len(name) <= 15 and IANA_SVC_NAME.match(name) and re.search("[a-z]", name):
            return name
    return f"{protocol.lower()}-{port}"


def label_value(text: str) -> str:
    """A valid label value (≤ 63 characters) from arbitrary text."""
    value = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[:63].strip("-_.")
    return value if LABEL_VALUE.match(value) else short_hash(text)


def annotation_key_ok(key: str) -> bool:
    """Whether `key` is a valid annotation/label key (`[prefix/]name`)."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(QUALIFIED_NAME.match(name))


# ---------------------------------------------------------------------------------------------
# Quantities
# ---------------------------------------------------------------------------------------------
def cpu_quantity(cores: float) -> str:
    """0.5 → `500m`, 2.0 → `2`; rounded up to a millicore (a request is never made smaller)."""
    milli = max(1, math.ceil(round(cores * 1000, 6)))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(size: int) -> str:
    """Bytes → the largest exact binary unit (`268435456` → `256Mi`), else plain bytes."""
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit, factor in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def seconds(value: float, *, minimum: int = 1) -> int:
    """A duration as whole seconds for a probe field (rounded up, at least `minimum`)."""
    return max(minimum, math.ceil(round(value, 6)))


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRef:
    registry: str | None
    repository: str  # path without the registry: `library/postgres`, `acme/api`
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The last path component: `postgres`, `api`."""
        return self.repository.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(ref: str) -> ImageRef:
    """Split a Docker image reference the way the Docker CLI does."""
    rest, _, digest = ref.partition("@")
    registry = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    return ImageRef(registry=registry, repository=rest, tag=tag, digest=digest or None)


def is_database_image(image: str | None) -> bool:
    if not image:
        return False
    name = parse_image(image).name.lower()
    return name in DATABASE_IMAGES or any(name.startswith(f"{db}-") for db in ("postgres", "mysql", "mariadb",
                                                                            "mongo", "redis"))


def built_image(stack: str, service: str, image: str | None, registry: str | None, tag: str | None) -> str:
    """Where the cluster pulls a service that Compose builds (`build:`).

    `<registry>/<name>:<tag>`: name is the last path component of `image:` when the service names
    one, else `<stack>-<service>`; tag is the profile's `image_tag`, else the tag of `image:`, else
    `latest`. Without a registry the image is used as named (the cluster must already have it).
    """
    ref = parse_image(image) if image else None
    name = ref.name if ref else f"{stack}-{service}"
    chosen_tag = tag or (ref.tag if ref else None) or "latest"
    if registry:
        return f"{registry.rstrip('/')}/{name}:{chosen_tag}"
    if ref:
        return str(ImageRef(ref.registry, ref.repository, tag or ref.tag or "latest", ref.digest if not tag else None))
    return f"{name}:{chosen_tag}"


# ---------------------------------------------------------------------------------------------
# Health checks
# ---------------------------------------------------------------------------------------------
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "::1")
_URL = re.compile(r"^(?P<scheme>https?)://(?P<host>\[[^\]]+\]|[^/:?#]+)(?::(?P<port>\d+))?(?P<path>[^#]*)$")
# curl flags that take no argument and do not change what a probe means
_CURL_PLAIN = {"-f", "--fail", "-s", "--silent", "-S", "--show-error", "-k", "--insecure", "-L", "--location",
               "-q", "--disable", "--fail-early", "-4", "-6", "--http1.1", "--compressed", "-g", "--globoff",
               "-v", "--verbose", "-I", "--head", "--fail-with-body", "--no-progress-meter"}
# curl flags with an argument that do not change what a probe means
_CURL_ARG = {"-o", "--output", "-w", "--write-out", "-m", "--max-time", "--connect-timeout", "--retry",
             "--retry-delay", "--retry-max-time", "-A", "--user-agent", "-y", "--speed-time", "-Y",
             "--speed-limit"}
_WGET_PLAIN = {"-q", "--quiet", "--spider", "-S", "--server-response", "--no-check-certificate", "-nv",
               "--no-verbose", "--no-cache", "-4", "-6", "--inet4-only", "--inet6-only"}
_WGET_ARG = {"-O", "--output-document", "-T", "--timeout", "-t", "--tries", "-U", "--user-agent", "-o",
             "--output-file", "-Y", "--proxy"}


@dataclass(frozen=True)
class HttpCheck:
    port: int
    path: str
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


def http_check(argv: Sequence[str]) -> HttpCheck | None:
    """A health check that only fetches a local URL (`curl -f http://localhost:8000/health`,
    `wget -q --spider http://127.0.0.1/ping`) as an HTTP GET probe; None when it does more.

    curl must have `--fail` (without it curl succeeds on a 500, an httpGet probe would not);
    wget fails on 4xx/5xx by itself. Both treat 2xx/3xx as success, like the kubelet.
    """
    argv = list(argv)
    if argv[:2] in (["/bin/sh", "-c"], ["sh", "-c"]) and len(argv) == 3:
        argv = _shell_words(argv[2])
        if argv is None:
            return None
    if not argv:
        return None
    tool = argv[0].rsplit("/", 1)[-1]
    if tool not in ("curl", "wget"):
        return None
    url: str | None = None
    headers: list[tuple[str, str]] = []
    failing = tool == "wget"
    args = argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if tool == "curl" and arg in ("-H", "--header") and i + 1 < len(args):
            name, sep, value = args[i + 1].partition(":")
            if not sep:
                return None
            headers.append((name.strip(), value.strip()))
            i += 2
            continue
        if tool == "wget" and (arg.startswith("--header=") or arg == "--header"):
            text = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            name, sep, value = text.partition(":")
            if not sep:
                return None
            headers.append((name.strip(), value.strip()))
            i += 1 if "=" in arg else 2
            continue
        plain, with_arg = (_CURL_PLAIN, _CURL_ARG) if tool == "curl" else (_WGET_PLAIN, _WGET_ARG)
        if arg in plain:
            if arg in ("-f", "--fail", "--fail-with-body"):
                failing = True
            i += 1
            continue
        if arg in with_arg:
            i += 2
            continue
        if "=" in arg and arg.split("=", 1)[0] in with_arg and arg.startswith("--"):
            i += 1
            continue
        if tool == "curl" and re.fullmatch(r"-[fsSkLqv]+", arg):  # combined short flags: -fsS
            failing = failing or "f" in arg
            i += 1
            continue
        if tool == "wget" and re.fullmatch(r"-[qS]+", arg):
            i += 1
            continue
        if tool == "wget" and re.fullmatch(r"-[qS]*[OTt]", arg):  # -qO /dev/null
            i += 2
            continue
        if tool == "wget" and re.fullmatch(r"-[qS]*[OTt]\S+", arg):  # -O- / -qO- / -T5
            i += 1
            continue
        if arg.startswith("-") or url is not None:
            return None  # an option that changes the request (a POST, auth, ...): keep the command
        url = arg
        i += 1
    if url is None or not failing:
        return None
    match = _URL.match(url)
    if not match or match.group("host").lower() not in _LOCAL_HOSTS:
        return None
    scheme = match.group("scheme").upper()
    port = int(match.group("port") or (443 if scheme == "HTTPS" else 80))
    if not 0 < port < 65536:
        return None
    return HttpCheck(port=port, path=match.group("path") or "/", scheme=scheme, headers=tuple(headers))


def _shell_words(script: str) -> list[str] | None:
    """The words of a one-command shell script (optionally `|| exit 1`), or None if it is more."""
    text = re.sub(r"\s*\|\|\s*exit\s+1\s*$", "", script.strip())
    if re.search(r"[;&|<>`$()]", text):
        return None
    try:
        return shlex.split(text)
    except ValueError:
        return None


def escape_dollar(text: str) -> str:
    """Kubernetes expands `$(VAR)` and turns `$$` into `$` in command, args and env values; Compose
    passes them through. Doubling a `$` that precedes `$` or `(` keeps the text exactly as written
    (a shell `$(date)` stays a shell substitution, `$$` stays the shell's PID)."""
    return re.sub(r"\$(?=[$(])", "$$", text)


def canonical(data: Any) -> str:
    import json

    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()
