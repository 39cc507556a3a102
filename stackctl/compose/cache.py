"""A cache of `docker compose config --format json`, so an unchanged project never pays it twice.

`docker compose config` is a Go process that reads every Compose file, env file and included project
(~0.1 s for a small project, ~0.4 s for 300 services; most of a small `render`). Its output is a
function of what it reads, so the answer is stored under a digest of ALL of it and reused while
every input is byte for byte the same:

- the command line (every `-f`, `--env-file`, `--profile`, `-p`, `--project-directory`), the working
  directory, and the whole environment passed to Compose (every variable, name and value);
- the content of every file Compose reads: the `-f` files and, walking them, every `extends.file`,
  every `include` (its files, `env_file`s, and the `.env` of its project directory), every service
  `env_file` and `label_file`, the `--env-file` files and the project `.env`. A relative path is
  digested at each place Compose might resolve it (the file's directory, the project directory,
  the working directory), and a missing file counts as "missing" (a `required: false` env file
  that appears changes the digest);
- the Compose plugin binary (path, size, mtime, inode) and stackctl's version.

Where an input cannot be digested, nothing is cached (Compose runs, as without a cache): a path
holding a variable (`env_file: ${DIR}/app.env`) or a remote include, a file that cannot be read,
`COMPOSE_FILE`/`COMPOSE_ENV_FILES` in the environment, no `-f` file (Compose would search for
one), a docker of the user's choice (`STACKCTL_DOCKER`, a docker context: the docker CLI then runs
Compose, and we cannot vouch for what it runs). `STACKCTL_COMPOSE_CACHE=0` turns the cache off.

Secrets. The JSON holds what Compose interpolated, secret values included (an env file's, or the
store's under `render --include-secrets` and `promote`), and stackctl keeps no plaintext secret at
rest outside the files the user asked for. So an entry is encrypted with a key derived from the same
digest of the inputs (SHAKE-256 keystream, HMAC-SHA-256 tag, standard library only: no
`cryptography` import on every command): decrypting it takes every input, and whoever holds every
input can compute the JSON anyway. The file name is a second, independent digest. Entries live in
`$XDG_CACHE_HOME/stackctl/compose-config/` (mode 0700, files 0600), at most `MAX_ENTRIES`, the least
recently written removed first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from stackctl import cachebox
from stackctl.compose import cli as docker_cli

MAX_ENTRIES = 64
MAGIC = b"stackctl-compose-config-1\n"
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://|^git@", re.IGNORECASE)
_LISTS_FILES = ("COMPOSE_FILE", "COMPOSE_ENV_FILES")
_WALK_LIMIT = 1000  # Compose files walked at most (include/extends chains); beyond it: no cache


class _NotDigestible(Exception):
    """An input Compose reads that we cannot pin down: run Compose, cache nothing."""


def compose_config(argv: list[str], *, files: tuple[Path, ...], env_files: tuple[Path, ...],
                   project_directory: Path | None, root: Path, env: Mapping[str, str],
                   timeout: float, memory_limit: int) -> docker_cli.Result:
    """`docker compose ARGV` (a `config --format json`), answered from the cache when every input is
    the same as in a run that succeeded; a successful run is stored."""
    material = None
    if enabled():
        try:
            material = inputs_digest(argv, files=files, env_files=env_files,
                                     project_directory=project_directory, root=root, env=env)
        except _NotDigestible:
            material = None
    if material is not None:
        stored = _read(material)
        if stored is not None:
            return docker_cli.Result(argv=["docker", "compose", *argv], returncode=0, stdout=stored["stdout"],
                                     stderr=stored["stderr"])
    res = docker_cli.compose(argv, cwd=root, env=env, check=False, timeout=timeout, memory_limit=memory_limit)
    if material is not None and res.returncode == 0:
        _write(material, {"stdout": res.stdout, "stderr": res.stderr})
    return res


def enabled() -> bool:
    """Off by `STACKCTL_COMPOSE_CACHE=0`, and whenever Compose is not run as itself (module docstring)."""
    if os.environ.get("STACKCTL_COMPOSE_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    # a stand-in for `compose()` (a test's fake) answers what it likes: never store or serve that
    real = getattr(docker_cli.compose, "__module__", None) == docker_cli.__name__
    return real and docker_cli.compose_plugin() is not None


def cache_dir() -> Path:
    return Path(cachebox.cache_dir("compose-config"))


# ---------------------------------------------------------------------------------------------
# The digest of the inputs
# ---------------------------------------------------------------------------------------------
def inputs_digest(argv: list[str], *, files: tuple[Path, ...], env_files: tuple[Path, ...],
                  project_directory: Path | None, root: Path, env: Mapping[str, str]) -> bytes:
    """32 bytes that change when anything `docker compose ARGV` reads changes (_NotDigestible when
    that cannot be known)."""
    from stackctl import __version__

    if not files:
        raise _NotDigestible("no -f file: Compose searches for one")
    if any(env.get(name) for name in _LISTS_FILES):
        raise _NotDigestible("the environment names Compose files")
    plugin = docker_cli.compose_plugin()
    if plugin is None:
        raise _NotDigestible("Compose runs through the docker CLI")
    h = hashlib.sha256()

    def feed(*parts: str | bytes) -> None:
        for part in parts:
            data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)

    feed(f"stackctl {__version__}", MAGIC, "argv", *argv, "cwd", str(root.resolve()))
    feed("env", *(item for name in sorted(env) for item in (name, env[name])))
    st = _stat(Path(plugin))
    feed("plugin", plugin, st)
    top = root / files[0]
    project = (root / project_directory) if project_directory is not None else top.parent
    for path, state in sorted(_file_states(files, env_files, root, project).items()):
        feed("file", path, state)
    return h.digest()


def _stat(path: Path) -> str:
    try:
        st = path.stat()
    except OSError as exc:
        raise _NotDigestible(str(exc)) from None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _file_states(files: tuple[Path, ...], env_files: tuple[Path, ...], root: Path,
                 project: Path) -> dict[str, bytes]:
    """Path → the digest of its content (or b"missing") for every file Compose may read."""
    states: dict[str, bytes] = {}

    def digest(path: Path) -> bytes:
        key = os.path.abspath(path)
        if key not in states:
            try:
                data = Path(key).read_bytes()
            except FileNotFoundError:
                states[key] = b"missing"
            except NotADirectoryError:
                states[key] = b"missing"
            except OSError as exc:
                raise _NotDigestible(f"{key}: {exc}") from None
            else:
                states[key] = hashlib.sha256(data).digest()
        return states[key]

    for f in env_files:
        digest(root / f)
    digest(project / ".env")
    queue: list[tuple[Path, Path]] = [(root / f, project) for f in files]
    walked: set[str] = set()
    while queue:
        path, proj = queue.pop()
        key = os.path.abspath(path)
        if key in walked:
            continue
        walked.add(key)
        if len(walked) > _WALK_LIMIT:
            raise _NotDigestible("too many Compose files")
        if digest(path) == b"missing":
            continue  # Compose says so (and a failed run is not stored)
        for doc in _documents(Path(key)):
            for ref, kind, proj_dir in _references(doc, Path(key).parent, proj):
                for candidate in ref:
                    if kind == "yaml":
                        queue.append((candidate, proj_dir))
                    else:
                        digest(candidate)
    return states


def _documents(path: Path) -> tuple[Any, ...]:
    import yaml

    from stackctl.compose import yaml as composeyaml

    try:
        return composeyaml.documents(path.read_text(encoding="utf-8"))  # parsed once per command
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise _NotDigestible(f"{path}: not readable as YAML") from None


def _candidates(value: Any, base: Path, project: Path) -> list[Path]:
    """Every place a path written in a Compose file may name."""
    if not isinstance(value, str) or not value:
        raise _NotDigestible(f"a path that is not a string: {value!r}")
    if "$" in value or _REMOTE.match(value):
        raise _NotDigestible(f"a path Compose resolves itself: {value}")
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return [path]
    return [base / path, project / path]


def _paths(value: Any) -> Iterator[Any]:
    """The path strings of an `env_file`/`label_file`/`include.path` value (a string, a list, entries
    with `path:`)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            inner = item.get("path")
            yield from (inner if isinstance(inner, list) else [inner])
        else:
            yield item


def _references(doc: Any, base: Path, project: Path) -> Iterator[tuple[list[Path], str, Path]]:
    """(candidate paths, "yaml" or "file", the project directory for a YAML file) of everything one
    Compose document pulls in."""
    if not isinstance(doc, dict):
        return
    includes = doc.get("include")
    if includes is not None:
        for entry in includes if isinstance(includes, list) else [includes]:
            spec = entry if isinstance(entry, dict) else {"path": entry}
            paths = [c for p in _paths(spec.get("path")) for c in _candidates(p, base, project)]
            sub = spec.get("project_directory")
            sub_dirs = _candidates(sub, base, project) if sub is not None else [p.parent for p in paths]
            for p in paths:
                for d in sub_dirs:
                    yield [p], "yaml", d
            if spec.get("env_file") is not None:
                for p in _paths(spec["env_file"]):
                    yield _candidates(p, base, project), "file", project
            for d in sub_dirs:
                yield [d / ".env"], "file", project
    services = doc.get("services")
    if not isinstance(services, dict):
        return
    for svc in services.values():
        if not isinstance(svc, dict):
            continue
        extends = svc.get("extends")
        if isinstance(extends, dict) and extends.get("file") is not None:
            yield _candidates(extends["file"], base, project), "yaml", project
        for field in ("env_file", "label_file"):
            if svc.get(field) is not None:
                for p in _paths(svc[field]):
                    yield _candidates(p, base, project), "file", project


# ---------------------------------------------------------------------------------------------
# Entries: encrypted under the digest of the inputs
# ---------------------------------------------------------------------------------------------
def _names(material: bytes) -> tuple[Path, bytes]:
    entry = hashlib.sha256(b"entry\0" + material).hexdigest()
    return cache_dir() / f"{entry}.bin", cachebox.key(material)


def _read(material: bytes) -> dict[str, str] | None:
    path, key = _names(material)
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    if not blob.startswith(MAGIC):
        return None
    plain = cachebox.unseal(key, blob[len(MAGIC):])
    if plain is None:
        return None
    try:
        data = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("stdout"), str) or not isinstance(data.get("stderr"), str):
        return None
    return {"stdout": data["stdout"], "stderr": data["stderr"]}


def _write(material: bytes, entry: dict[str, str]) -> None:
    """Store an entry (0600 in a 0700 directory); a cache that cannot be written is no error."""
    from stackctl.fsutil import SECRET_MODE, atomic_write, private_dir

    path, key = _names(material)
    try:
        private_dir(path.parent)
        atomic_write(path, MAGIC + cachebox.seal(key, json.dumps(entry).encode("utf-8")), mode=SECRET_MODE)
        cachebox.prune(path.parent, max_entries=MAX_ENTRIES)
    except OSError:
        return
