"""Where services name each other: the host names (and ports) that one service's environment,
command, health check, labels and mounted config files connect to.

In Compose every container reaches every other one on any port of a shared network; in
Kubernetes a name resolves only through a Service, which forwards only the ports it lists. So the
renderer needs, per service, who connects to it and on which port: `plan.py` turns that into
Service ports (or a warning naming who connects), `podspec.py` into health checks that call the
container itself instead of its Service.

Pure: config file contents come from the `HostPath` inputs the renderer already has. Only host
names equal to a service name or network alias count, and only in a connecting position — a URL
(`postgres://u:p@db:5432/x`), a `host:port` (`server backend:8000;`, `['node-exporter:9100']`),
a `-h host` / `--host host` of a command, a whole `*_HOST=cache` value, a port-less nginx
`server backend;` or Caddy `reverse_proxy backend` — never a word in prose or a path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from stackctl import model as m
from stackctl.kubernetes.inputs import HostPath

# Default ports of URL schemes: `redis://cache/0` connects to 6379 (a `+driver` suffix is dropped:
# `postgresql+asyncpg://`).
SCHEME_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432,
                "mysql": 3306, "mariadb": 3306, "redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671,
                "mongodb": 27017, "nats": 4222, "memcached": 11211, "smtp": 25, "ldap": 389, "ldaps": 636,
                "mqtt": 1883, "ftp": 21}
# Clients whose `-h host` means a server on their protocol's port unless `-p`/`-P` says another.
TOOL_PORTS = {"pg_isready": 5432, "psql": 5432, "pg_dump": 5432, "pg_dumpall": 5432, "pg_restore": 5432,
              "createdb": 5432, "mysql": 3306, "mysqladmin": 3306, "mysqldump": 3306, "mariadb": 3306,
              "mariadb-admin": 3306, "mariadb-dump": 3306, "redis-cli": 6379, "valkey-cli": 6379,
              "mongosh": 27017, "mongo": 27017}
# `REDIS_HOST=cache` with no `REDIS_PORT`: the protocol the variable's first word names.
KEY_PORTS = {"REDIS": 6379, "VALKEY": 6379, "POSTGRES": 5432, "POSTGRESQL": 5432, "PG": 5432, "MYSQL": 3306,
             "MARIADB": 3306, "MONGO": 27017, "MONGODB": 27017, "AMQP": 5672, "RABBITMQ": 5672, "RABBIT": 5672,
             "MEMCACHED": 11211, "NATS": 4222, "SMTP": 25}
LOCAL = "127.0.0.1"  # not `localhost`: some images resolve it to ::1 first, where an IPv4-only app is not

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?"
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<user>[^\s/?#@]*@)?(?P<hosts>[^/\s?#@'\"`;)\]}<>|\\]*)")
_URL_HOST = re.compile(rf"(?P<host>{_NAME})(?::(?P<port>\d{{1,5}}))?(?![^,])")
# `backend:8000` standing on its own: not inside a path or a longer name, not an image tag (`redis:7-alpine`)
_HOST_PORT = re.compile(rf"(?<![\w.\-/:$%])(?P<host>{_NAME}):(?P<port>\d{{1,5}})(?![\w.\-:])")
_DASH_H = re.compile(rf"(?:(?<=\s)|^)(?:-h\s*|--host(?:name)?(?:=|\s+))(?P<host>{_NAME})(?![\w.-])")
_NC = re.compile(rf"(?:^|\s)(?:nc|netcat)(?:\s+-\w+(?:\s+\d+)?)*\s+(?P<host>{_NAME})\s+(?P<port>\d{{1,5}})(?!\S)")
_NGINX_SERVER = re.compile(rf"(?:^|(?<=[\s{{;]))server\s+(?P<host>{_NAME})(?:\s+[\w-]+(?:=\S+)?)*\s*;")
_HOST_KEY = re.compile(r"^(?P<prefix>.*?)_?(HOST|HOSTNAME|HOSTS|SERVER|SERVERS|ADDR|ADDRESS|ENDPOINT|BROKER|BROKERS)$",
                       re.IGNORECASE)
_NOT_HOST_KEY = re.compile(r"(IMAGE|VERSION|TAG)$", re.IGNORECASE)  # `CACHE_IMAGE=redis:7` is no connection
_IMAGE_WORDS = frozenset({"image", "from"})
_SEGMENT = re.compile(r"[^;&|\n]+")  # one command of a shell line
_TRAEFIK_PORT = re.compile(r"^traefik\.(?:http|tcp|udp)\.services\.[^.]+\.loadbalancer\.server\.port$")


@dataclass(frozen=True)
class Ref:
    """One place where service `user` connects to `service` (through the name `host`)."""

    service: str  # the Compose service the name belongs to
    host: str  # the name as written: the service name or one of its network aliases
    port: int | None  # written, or implied (scheme, client, variable name); None: not said
    written: bool  # the port number itself is in the text
    user: str  # the service whose input holds the reference
    where: str  # `services.proxy.environment.API_URL`, `proxy_pass in nginx/nginx.conf, used by services.proxy`

    @property
    def own(self) -> bool:
        return self.user == self.service


@dataclass(frozen=True)
class Hit:
    """A host (and port) found in a text; `directive`: the first word of its line in a config file."""

    host: str
    port: int | None
    written: bool
    directive: str | None = None
    start: int = 0  # where the host name starts in the text searched


def hostnames(stack: m.Stack) -> dict[str, str]:
    """Every name that resolves to a service in Compose (lower case) → the service: its name and
    its network aliases. A name claimed twice keeps its first (sorted) owner, as the service name wins."""
    out: dict[str, str] = {svc.name.lower(): svc.name for svc in stack.services}
    for svc in sorted(stack.services, key=lambda s: s.name):
        for net in svc.networks:
            for alias in net.aliases:
                out.setdefault(alias.lower(), svc.name)
    return out


def _port(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def _urls(text: str, names: Mapping[str, str]) -> Iterator[tuple[int, int, Hit]]:
    for match in _URL.finditer(text):
        implied = SCHEME_PORTS.get(match.group("scheme").split("+", 1)[0].lower())
        pos = match.start("hosts")  # after any `user:password@`
        for part in match.group("hosts").split(","):  # `mongodb://m1:27017,m2:27017/db`
            found = _URL_HOST.match(part)
            if found and found.group("host").lower() in names:
                port = _port(found.group("port"))
                yield match.start(), match.end(), Hit(found.group("host"), port if port is not None else implied,
                                                      port is not None, start=pos)
            pos += len(part) + 1


def find(text: str, names: Mapping[str, str], *, command: bool = False, config: bool = False) -> list[Hit]:
    """The hosts of `names` that `text` connects to, in order. `command`: a command line (also
    `-h host`, `--host host`, `nc host port`, with the client's own port); `config`: a config file
    (also nginx `server host;` and Caddy `reverse_proxy host`, whose default port is 80)."""
    if not text:
        return []
    out: list[tuple[int, Hit]] = []
    spans: list[tuple[int, int]] = []
    for start, end, hit in _urls(text, names) if "://" in text else ():
        spans.append((start, end))
        out.append((start, hit))
    for match in _HOST_PORT.finditer(text) if ":" in text else ():
        if match.group("host").lower() in names and not any(s <= match.start() < e for s, e in spans):
            port = _port(match.group("port"))
            if port is not None:
                out.append((match.start(), Hit(match.group("host"), port, True, start=match.start("host"))))
    if command and ("-h" in text or "--host" in text or "nc" in text):
        for segment in _SEGMENT.finditer(text):
            out.extend((segment.start() + hit.start, dataclasses.replace(hit, start=segment.start() + hit.start))
                       for hit in _command_hits(segment.group(0), names))
    if config and "server" in text:
        for match in _NGINX_SERVER.finditer(text):
            if match.group("host").lower() in names:
                out.append((match.start(), Hit(match.group("host"), 80, False, start=match.start("host"))))
    if config and text.startswith("reverse_proxy"):
        out.extend((w.start(), Hit(w.group(0), 80, False, start=w.start()))
                   for w in re.finditer(r"\S+", text) if w.group(0).lower() in names)
    seen: set[int] = set()
    hits = []
    for _, hit in sorted(out, key=lambda item: item[0]):
        if hit.start not in seen:  # `-h db:5432`: one connection, found twice
            seen.add(hit.start)
            hits.append(hit)
    return hits


def _command_hits(segment: str, names: Mapping[str, str]) -> Iterator[Hit]:
    words = segment.split()
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):  # `PGPASSWORD=x psql ...`
        words.pop(0)
    tool = words[0].rsplit("/", 1)[-1] if words else ""
    for match in _NC.finditer(segment):
        port = _port(match.group("port"))
        if match.group("host").lower() in names and port is not None:
            yield Hit(match.group("host"), port, True, start=match.start("host"))
    for match in _DASH_H.finditer(segment):
        if match.group("host").lower() not in names:
            continue
        flag = "-P" if tool.startswith(("mysql", "mariadb")) else "-p"  # mysql's -p is the password
        given = re.search(rf"(?:^|\s)(?:{flag}\s*|--port(?:=|\s+))(\d{{1,5}})(?!\S)", segment)
        port = _port(given.group(1)) if given else None
        yield Hit(match.group("host"), port if port is not None else TOOL_PORTS.get(tool), port is not None,
                  start=match.start("host"))


def in_environment(env: Mapping[str, str | None], names: Mapping[str, str]) -> Iterator[tuple[str, Hit]]:
    """(variable, hit) for every connection an environment makes, by sorted variable: URLs and
    `host:port` in any value; a whole `*_HOST=cache` value (port from `*_PORT`, else from the
    variable's protocol, `REDIS_HOST` → 6379)."""
    for key in sorted(env):
        value = env[key]
        if not value or _NOT_HOST_KEY.search(key):
            continue
        yield from ((key, hit) for hit in find(value, names))
        host_key = _HOST_KEY.match(key)
        if host_key is None:
            continue
        prefix = host_key.group("prefix")
        given = _port(env.get(f"{prefix}_PORT") or env.get(f"{prefix}PORT") if prefix else env.get("PORT"))
        for item in re.split(r"[,\s]+", value.strip()):
            if item.lower() in names:
                implied = KEY_PORTS.get(prefix.split("_", 1)[0].upper()) if prefix else None
                yield key, Hit(item, given if given is not None else implied, given is not None)


def _file_hits(text: str, names: Mapping[str, str]) -> Iterator[Hit]:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//", ";")):
            continue  # a commented-out upstream connects to nothing
        for hit in find(stripped, names, config=True):
            # the directive: the first word of the statement holding the hit (after a `{` or `;`)
            statement = re.split(r"[{;]", stripped[:hit.start])[-1]
            word = re.match(r"^[-\s'\"]*([A-Za-z_][\w.-]*)", statement)
            if word and (word.group(1).lower() in _IMAGE_WORDS or _NOT_HOST_KEY.search(word.group(1))):
                continue  # `image: postgres:13` in a mounted Compose file, `FROM redis:7`: a tag, no connection
            yield dataclasses.replace(hit, directive=word.group(1) if word else None)


def references(stack: m.Stack, host: Mapping[str, HostPath], names: Mapping[str, str],
               hide: Callable[[str], str] = str) -> dict[str, list[Ref]]:
    """Service → every reference to it, in a fixed order (by referring service, then environment,
    entrypoint, command, health check, labels, mounted files, configs). `hide` masks the secrets
    in a value or command, so a render with secret values finds what one without them finds."""
    out: dict[str, list[Ref]] = {}
    configs = {c.name: c for c in stack.configs}

    def add(user: str, hit: Hit, where: str) -> None:
        owner = names[hit.host.lower()]
        out.setdefault(owner, []).append(Ref(owner, hit.host, hit.port, hit.written, user, where))

    def add_file(user: str, display: str, text: str) -> None:
        for hit in _file_hits(text, names):
            how = f"{hit.directive} in " if hit.directive else ""
            add(user, hit, f"{how}{display}, used by services.{user}")

    for svc in sorted(stack.services, key=lambda s: s.name):
        where = f"services.{svc.name}"
        env = {key: hide(value) for key, value in svc.environment.items() if value}
        for key, hit in in_environment(env, names):
            add(svc.name, hit, f"{where}.environment.{key}")
        for field_name, argv in (("entrypoint", svc.entrypoint), ("command", svc.command),
                                 ("healthcheck", svc.healthcheck.argv if svc.healthcheck else None)):
            for hit in find(hide(" ".join(argv or ())), names, command=True):
                add(svc.name, hit, f"{where}.{field_name}")
        for key in sorted(svc.labels):
            port = _port(svc.labels[key].strip()) if _TRAEFIK_PORT.match(key) else None
            if port is not None:
                add(svc.name, Hit(svc.name, port, True), f"{where}.labels.{key}")
        for mount in svc.volumes:
            info = host.get(mount.source or "") if mount.type == "bind" else None
            if info is None or info.kind not in ("file", "dir") or info.secret:
                continue  # an env file mounted as a Secret: its values are the environment's
            for rel in sorted(info.files):
                text = _text(info.files[rel])
                if text is not None:
                    add_file(svc.name, f"{info.display}/{rel}" if rel else info.display, text)
        for ref in svc.configs:
            item = configs.get(ref.source)
            if item is None:
                continue
            if item.content is not None:
                add_file(svc.name, f"configs.{item.name}", item.content)
            elif item.file is not None and (info := host.get(item.file)) is not None and info.kind == "file":
                text = _text(info.files.get("", b""))
                if text is not None:
                    add_file(svc.name, f"{info.display} (configs.{item.name})", text)
    return out


def masked(text: str, secrets: Sequence[tuple[str, str]]) -> str:
    """`text` with each secret (store name, as it shows in `text`) as its `<secret:NAME>` marker, as a
    render without values shows it: a host inside a secret (`DATABASE_URL: ${DATABASE_URL}`) is then
    never found, with values or without, and both renders agree."""
    for name, shown in secrets:
        text = text.replace(shown, f"<secret:{name}>")
    return text


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # binary: no host names to read


def to_local(argv: Sequence[str], own: Mapping[str, str]) -> tuple[tuple[str, ...], list[str]]:
    """`argv` with every connection to one of the `own` names (a service's name and aliases)
    pointed at 127.0.0.1 instead, and the names it replaced. Only connecting positions change
    (URLs, `host:port`, `-h host`, `nc host port`), never the same word elsewhere."""
    changed: list[str] = []
    out = list(argv)
    # Found in the words joined as a shell would see them, so an exec form's separate words
    # (`["redis-cli", "-h", "redis", "ping"]`) count as `-h redis`; each hit is replaced in its word.
    starts, at = [], 0
    for arg in argv:
        starts.append(at)
        at += len(arg) + 1
    for hit in sorted(find(" ".join(argv), own, command=True), key=lambda h: h.start, reverse=True):
        i = max(j for j, start in enumerate(starts) if start <= hit.start)
        offset = hit.start - starts[i]
        if out[i][offset:offset + len(hit.host)] == hit.host:
            out[i] = out[i][:offset] + LOCAL + out[i][offset + len(hit.host):]
            if hit.host not in changed:
                changed.append(hit.host)
    return tuple(out), sorted(changed)
