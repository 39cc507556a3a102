"""Small, pure translations used by the renderer: quantities, probes, well-known image facts.

Each function maps one Compose notion to its Kubernetes form and knows nothing about the objects
around it, so each is unit-tested on its own (tests/unit/test_render_mapping.py). The names and
hashes that promote shares with the renderer are in `stackctl.kubernetes.names`.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackctl.knownimages import STATEFUL_IMAGES, is_stateful_image
from stackctl.kubernetes.names import parse_image

# Images of servers that keep state: they become StatefulSets even without a named volume (one list,
# in stackctl.knownimages).
DATABASE_IMAGES = STATEFUL_IMAGES


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


# Variables the JVM, its launch scripts or well-known images read heap options from (`-Xmx512m`).
JVM_OPTION_VARIABLES = ("JAVA_OPTS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "CATALINA_OPTS",
                        "ES_JAVA_OPTS", "OPENSEARCH_JAVA_OPTS", "LS_JAVA_OPTS", "KAFKA_HEAP_OPTS",
                        "JAVA_OPTS_APPEND", "JVMFLAGS", "SERVER_JVMFLAGS")  # Keycloak/Quarkus; ZooKeeper
# What a runtime needs beyond the heap it is told to use, so a memory limit must leave room for it:
# heap × HEAP_FACTOR + HEAP_OVERHEAD. A JVM's non-heap memory (metaspace, the JIT's code cache, thread
# stacks, GC bookkeeping, direct buffers) is 100-300 MiB for a typical service and grows with the
# heap (GC structures, buffers); Node.js's `--max-old-space-size` bounds the old generation only,
# beside it live the young generation (3 × 16 MiB semi-spaces), code and Buffers. The common advice
# for both (a heap of 75 % of the container: MaxRAMPercentage=75, Node's "1536 on 2 GiB") comes to
# about heap × 1.33; × 1.25 + 64 MiB is that for heaps of 256 MiB-1 GiB and not less for small ones.
# It is a floor, not sizing advice: below it the container is OOM-killed once the heap fills.
HEAP_FACTOR = 1.25
HEAP_OVERHEAD = 64 * 2**20
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_JVM_HEAP = re.compile(r"(?:^|(?<=[\s'\"=]))(?P<flag>-Xmx(?P<n>\d+)(?P<u>[kKmMgGtT]?)"
                       r"|-XX:MaxHeapSize=(?P<n2>\d+)(?P<u2>[kKmMgGtT]?))(?=[\s'\"]|$)")
_NODE_HEAP = re.compile(r"(?:^|(?<=[\s'\"]))(?P<flag>--max[-_]old[-_]space[-_]size[= ](?P<n>\d+))(?=[\s'\"]|$)")


@dataclass(frozen=True)
class Heap:
    """A heap size a service declares: `-Xmx2g` in JAVA_OPTS, `--max-old-space-size=4096` in NODE_OPTIONS."""

    size: int  # bytes
    runtime: str  # "JVM" | "Node.js"
    flag: str  # as written: `-Xmx2g`
    source: str  # the variable, `command` or `entrypoint`

    @property
    def needs(self) -> int:
        """The smallest memory limit that holds this heap and the runtime around it, in whole MiB."""
        mib = 2**20
        return -(-math.ceil(self.size * HEAP_FACTOR + HEAP_OVERHEAD) // mib) * mib


def _heaps_in(text: str, source: str) -> list[Heap]:
    """The heap flags of one value; a JVM takes the last -Xmx of its options, so only that one counts."""
    out: list[Heap] = []
    jvm = list(_JVM_HEAP.finditer(text))
    if jvm:
        last = jvm[-1]
        n, unit = (last.group("n"), last.group("u")) if last.group("n") else (last.group("n2"), last.group("u2"))
        out.append(Heap(int(n) * _UNITS[unit.lower()], "JVM", last.group("flag"), source))
    node = list(_NODE_HEAP.finditer(text))
    if node:
        last = node[-1]
        out.append(Heap(int(last.group("n")) * 2**20, "Node.js", last.group("flag"), source))
    return out


def declared_heap(environment: Mapping[str, str | None], command: Sequence[str] | None,
                  entrypoint: Sequence[str] | None) -> Heap | None:
    """The largest heap a service declares in its environment (JVM_OPTION_VARIABLES, NODE_OPTIONS)
    or its command/entrypoint; None when it declares none (or only a relative one, such as
    `-XX:MaxRAMPercentage=75`, which follows the limit by itself)."""
    found: list[Heap] = []
    for key in (*JVM_OPTION_VARIABLES, "NODE_OPTIONS"):
        value = environment.get(key)
        if value:
            found += [h for h in _heaps_in(value, key) if (h.runtime == "Node.js") == (key == "NODE_OPTIONS")]
    for source, argv in (("entrypoint", entrypoint), ("command", command)):
        if argv:
            found += _heaps_in(" ".join(argv), source)
    return max(found, key=lambda h: h.size, default=None)


def seconds(value: float, *, minimum: int = 1) -> int:
    """A duration as whole seconds for a probe field (rounded up, at least `minimum`)."""
    return max(minimum, math.ceil(round(value, 6)))


def is_database_image(image: str | None) -> bool:
    return is_stateful_image(image)


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
    """A health check that only fetches a local URL, as the HTTP GET probe it becomes."""

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
    given = list(argv)
    words = _shell_words(given[2]) if given[:2] in (["/bin/sh", "-c"], ["sh", "-c"]) and len(given) == 3 else given
    if not words:
        return None
    argv = words
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
