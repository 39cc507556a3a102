"""The result cache of `stackctl render kubernetes`: an unchanged project renders once.

A render is a function of what it reads (its docstring: no clock, no randomness, no I/O beyond
reading the project), so the bytes it wrote to stdout and stderr can be replayed while everything it
read is unchanged. Which files a render reads depends on the project (extends, includes, env files,
bind-mounted config files and directories, the profile's template...), so the set is not declared
but observed: the recording run traces every file-system question the process asks —

- every file opened for reading (`open`, `io.open`, `os.open`): the digest of its content;
- every `os.stat`/`os.lstat` (so `exists()`, `is_file()`, `resolve()`...): type, size, mtime, inode,
  or the error; every `os.access`, `os.readlink`;
- every directory listed (`os.scandir`, `os.listdir`, so `glob`, `iterdir`, `walk`): its names and
  each one's type;

and a replay first asks each question again and replays only when every answer is the same. The
key of an entry is the command line, the working directory, the whole environment, the user id,
the interpreter and which of stdin/stdout/stderr are terminals (and their size); the entry also
holds a fingerprint of the code (every file of the stackctl package: size, mtime, inode; each
directory on `sys.path`: an installed, removed or upgraded package changes it), checked on replay.
Files of the code itself (the package, the interpreter's prefixes) are covered by that fingerprint
and not traced.

A run is stored only when it could be replayed faithfully: exit 0; nothing written (any open for
writing, `os.open` with a write flag); no child process (`docker compose config` when its own cache
missed, git, ...: the children's resource usage is checked); no randomness asked for
(`os.urandom`); no network module imported; every question asked again at the end of the run gets
the answer it got during it (a file edited while the render ran is not stored). `--out-dir` and
`--include-secrets` are never cached. `STACKCTL_RESULT_CACHE=0` turns the cache off.

What is stored is sealed (stackctl/cachebox.py) with a key derived from the content of every file
the run read, so the entry is of no use without the inputs, and file digests in it are salted per
entry. Entries live in `$XDG_CACHE_HOME/stackctl/render-results/` (0700, files 0600), at most
`MAX_ENTRIES`. Only the program entry point (`stackctl.cli.run`) uses the cache: `main()` called
in-process (the tests) never replays.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import marshal
import os
import sys

TYPE_CHECKING = False  # not `from typing import`: importing typing costs a third of kompose's whole run here
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

MAGIC = b"stackctl-render-result-1\n"
MAX_ENTRIES = 64
MAX_OUTPUT = 32 << 20  # a render writing more is not stored
MAX_TOTAL = 256 << 20  # all entries together; the oldest go first
_SWITCH = "STACKCTL_RESULT_CACHE"
_NETWORK = ("socket", "ssl", "http.client", "urllib.request")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The functions themselves, taken before any trace replaces them: asking a question again must not
# be traced (nor recurse into the trace).
_open, _stat, _lstat, _access = builtins.open, os.stat, os.lstat, os.access
_readlink, _scandir = os.readlink, os.scandir


def enabled() -> bool:
    return os.environ.get(_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------
def replay(args: list[str]) -> int | None:
    """Write the stored output of this exact command when every input is unchanged; the exit code
    to leave with, or None (nothing was written: run the command)."""
    key = _key(args)
    try:
        with _open(_entry_path(key), "rb") as fh:
            blob = fh.read()
        if not blob.startswith(MAGIC):
            return None
        salt, code_print, questions, sealed = marshal.loads(blob[len(MAGIC):])
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if code_print != _code_fingerprint():
        return None
    key_material = hashlib.sha256(b"inputs\0" + key)
    try:
        for kind, name, expected in questions:
            answer, content_key = _ask(kind, name, salt)
            if answer != expected:
                return None
            if content_key is not None:
                key_material.update(content_key)
        from stackctl import cachebox

        plain = cachebox.unseal(cachebox.key(key_material.digest()), sealed)
        if plain is None:
            return None
        events = marshal.loads(plain)
        if not all(fd in (1, 2) and type(data) is bytes for fd, data in events):
            return None
    except (ValueError, EOFError, TypeError):  # a damaged entry (the seal is checked first: not a forged one)
        return None
    written = False
    try:
        for fd, data in events:
            _write_all(fd, data)
            written = True
    except BrokenPipeError:
        return 1  # as the fast path exits on a closed pipe
    except OSError:
        return 1 if written else None  # a closed descriptor: running the command says what it says
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------
def recordable(args: list[str]) -> bool:
    """A plain render to stdout that the fast path takes (no directory written, no secret values)."""
    if not enabled() or os.environ.get("STACKCTL_NO_FAST_PATH") or "_STACKCTL_COMPLETE" in os.environ:
        return False
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):  # a replay writes to descriptors 1 and 2
        try:
            if stream.fileno() != fd:
                return False
        except (AttributeError, OSError, ValueError):
            return False
    from stackctl.cli import fast

    parsed = fast.parse(args)
    return parsed is not None and "out_dir" not in parsed[1] and "include_secrets" not in parsed[1]


def record(args: list[str], command: Callable[[], int]) -> int:
    """Run `command` (the whole command; its exit code) under the trace, and store what it wrote
    when the run can be replayed."""
    trace = _Trace()
    network_before = {name for name in _NETWORK if name in sys.modules}
    children_before = _children()
    with trace.active():
        code = command()
    if code != 0:
        trace.taint(f"exit code {code}")
    if any(name in sys.modules for name in _NETWORK if name not in network_before):
        trace.taint("a network module was imported")
    if _children() != children_before:
        trace.taint("a child process ran (docker compose config, git, ...)")
    if not trace.tainted:
        trace.taint(_store(args, trace))
    if trace.tainted and os.environ.get("STACKCTL_DEBUG"):
        sys.stderr.write(f"result cache: not stored: {trace.tainted}\n")
    return code


def _children() -> tuple[float, ...]:
    """The resources used by the children this process waited for (cumulative: any child that ran
    changes it — an exec alone takes page faults)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime, usage.ru_stime, usage.ru_minflt, usage.ru_majflt, usage.ru_nvcsw, usage.ru_nivcsw)


class _Trace:
    """The file-system questions of one run, and what it wrote to stdout and stderr."""

    def __init__(self) -> None:
        self.questions: dict[tuple[str, str], Any] = {}
        self.events: list[tuple[int, bytes]] = []
        self.tainted = ""  # why the run cannot be replayed
        self.salt = os.urandom(16)  # of the entry's digests (taken before the trace watches os.urandom)
        from stackctl import codecache

        # files of the stackctl package (its data: schemas, help), which the code fingerprint covers,
        # and stackctl/codecache.py's compiled code, which changes how fast, never what. Not the
        # interpreter's prefix: a project may live under it (`/usr/src/app` with a system Python).
        self.covered = (_PACKAGE + os.sep, codecache.cache_dir() + os.sep)

    def active(self) -> _Active:
        return _Active(self)

    # -- what the patched functions call ------------------------------------------------------
    def ask(self, kind: str, path: object) -> None:
        """Note the question `kind` about `path` (and its answer now); anything we cannot pin down
        taints the run."""
        if isinstance(path, int) or path is None:
            if path is None and kind == "list":
                path = "."
            else:
                return  # an open file descriptor: its path was asked when it was opened
        try:
            name = os.path.abspath(os.fsdecode(path))  # type: ignore[arg-type]  # str, bytes or PathLike
        except (TypeError, ValueError):
            self.taint(f"a path that is not one: {path!r}")
            return
        if name.startswith(self.covered) or name == _PACKAGE:
            return
        if (kind, name) not in self.questions:
            self.questions[(kind, name)] = _ask(kind, name, self.salt)[0]

    def taint(self, why: str) -> None:
        self.tainted = self.tainted or why


class _Active:
    """The context in which the trace's patches are installed (and always removed)."""

    def __init__(self, trace: _Trace) -> None:
        self.trace = trace
        self.saved: list[tuple[Any, str, Any]] = []
        self.streams: tuple[Any, Any] = (None, None)

    def __enter__(self) -> _Trace:
        t = self.trace
        real_open, real_os_open = builtins.open, os.open
        real = {name: getattr(os, name) for name in ("stat", "lstat", "access", "readlink", "scandir", "listdir")}
        real_urandom = os.urandom

        def traced_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if any(c in mode for c in "wax+") or kwargs.get("opener") is not None:
                t.taint(f"open({file!r}, {mode!r})")
            else:
                t.ask("read", file)
            return real_open(file, mode, *args, **kwargs)

        def traced_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if flags & _WRITE_FLAGS or kwargs.get("dir_fd") is not None:
                t.taint(f"os.open({path!r}) to write")
            elif flags & os.O_CREAT:  # a lock file (fsutil.file_lock): creating one is a write
                if not os.path.lexists(path):
                    t.taint(f"os.open({path!r}) creates it")
                t.ask("lstat", path)
            else:
                t.ask("read", path)
            return real_os_open(path, flags, *args, **kwargs)

        def question(kind: str, fn: Callable[..., Any], follow_kind: str | None = None) -> Callable[..., Any]:
            def traced(*args: Any, **kwargs: Any) -> Any:
                if kwargs.get("dir_fd") is not None or len(args) > 2:
                    t.taint(f"{kind} relative to a directory descriptor")
                else:
                    asked = kind
                    if follow_kind is not None and kwargs.get("follow_symlinks", True) is False:
                        asked = follow_kind
                    t.ask(asked, args[0] if args else None)
                return fn(*args, **kwargs)
            return traced

        def traced_urandom(n: int) -> bytes:
            t.taint("os.urandom")
            return real_urandom(n)

        patches: list[tuple[Any, str, Any]] = [
            (builtins, "open", traced_open), (io, "open", traced_open), (os, "open", traced_os_open),
            (os, "stat", question("stat", real["stat"], "lstat")), (os, "lstat", question("lstat", real["lstat"])),
            (os, "access", question("access", real["access"])),
            (os, "readlink", question("readlink", real["readlink"])),
            (os, "scandir", question("list", real["scandir"])), (os, "listdir", question("list", real["listdir"])),
            (os, "urandom", traced_urandom),
        ]
        for owner, name, replacement in patches:
            self.saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)
        self.streams = (sys.stdout, sys.stderr)
        sys.stdout = _tee(sys.stdout, 1, t)
        sys.stderr = _tee(sys.stderr, 2, t)
        return t

    def __exit__(self, *exc: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                self.trace.taint("stdout or stderr could not be flushed")
        sys.stdout, sys.stderr = self.streams
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)


class _TeeRaw(io.RawIOBase):
    """A raw stream that writes to a file descriptor and keeps a copy of each write, in order (a
    write that fails — a closed pipe — taints the run: what was kept is not the whole output)."""

    def __init__(self, fd: int, trace: _Trace) -> None:
        super().__init__()
        self.fd = fd
        self.trace = trace

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        try:
            _write_all(self.fd, chunk)
        except OSError:
            self.trace.taint("stdout or stderr could not be written")
            raise
        self.trace.events.append((self.fd, chunk))
        return len(chunk)


def _tee(stream: Any, fd: int, trace: _Trace) -> Any:
    """`stream` (sys.stdout or sys.stderr) as a new text stream with the same encoding, errors and
    buffering over a `_TeeRaw` of its descriptor: bytes reach the descriptor as before, and are kept."""
    stream.flush()
    raw = _TeeRaw(fd, trace)
    # unbuffered (`python -u`, PYTHONUNBUFFERED): Python puts the text layer on the raw file itself
    buffered = not isinstance(getattr(stream, "buffer", None), io.RawIOBase)
    return io.TextIOWrapper(io.BufferedWriter(raw) if buffered else raw,  # unbuffered: the raw file, as Python does
                            encoding=stream.encoding, errors=stream.errors, line_buffering=stream.line_buffering,
                            write_through=getattr(stream, "write_through", False))


def _store(args: list[str], trace: _Trace) -> str:
    """Ask every question again (an input edited while the render ran: not stored), then write the
    entry; a cache that cannot be written is no error. Why it was not stored, or ""."""
    if sum(len(data) for _, data in trace.events) > MAX_OUTPUT:
        return f"more than {MAX_OUTPUT >> 20} MiB of output"
    key = _key(args)
    key_material = hashlib.sha256(b"inputs\0" + key)
    for (kind, name), recorded in trace.questions.items():
        answer, content_key = _ask(kind, name, trace.salt)
        if answer != recorded:
            return f"{name} changed while the render ran"
        if content_key is not None:
            key_material.update(content_key)
    questions = tuple((kind, name, answer) for (kind, name), answer in trace.questions.items())
    from stackctl import cachebox
    from stackctl.fsutil import SECRET_MODE, atomic_write, private_dir

    sealed = cachebox.seal(cachebox.key(key_material.digest()), marshal.dumps(trace.events))
    path = _entry_path(key)
    try:
        private_dir(os.path.dirname(path))
        from pathlib import Path

        atomic_write(Path(path), MAGIC + marshal.dumps((trace.salt, _code_fingerprint(), questions, sealed)),
                     mode=SECRET_MODE)
        cachebox.prune(os.path.dirname(path), max_entries=MAX_ENTRIES, max_bytes=MAX_TOTAL)
    except OSError as exc:
        return f"cannot write {path}: {exc}"
    return ""


# ---------------------------------------------------------------------------------------------
# Questions and their answers
# ---------------------------------------------------------------------------------------------
def _ask(kind: str, name: str, salt: bytes) -> tuple[Any, bytes | None]:
    """The answer to one question now — comparable, and without file content (a salted digest) —
    and, for a read, a second digest of the same bytes, never stored: the entry's key is made of
    these. Each file is read once."""
    try:
        if kind == "read":
            with _open(name, "rb") as fh:
                data = fh.read()
            return (hashlib.sha256(b"check\0" + salt + data).digest(),
                    hashlib.sha256(b"key\0" + salt + data).digest())
        if kind == "stat":
            return _stat_answer(_stat(name)), None
        if kind == "lstat":
            return _stat_answer(_lstat(name)), None
        if kind == "access":
            return tuple(_access(name, mode) for mode in (os.R_OK, os.W_OK, os.X_OK)), None
        if kind == "readlink":
            return _readlink(name), None
        if kind == "list":
            return tuple(sorted(_listing(name))), None
    except OSError as exc:
        return ("error", exc.errno), (f"error {exc.errno}".encode() if kind == "read" else None)
    raise ValueError(kind)


def _stat_answer(st: os.stat_result) -> tuple[int, ...]:
    """A file: mode, size, mtime, inode. A directory: mode and inode only — its mtime moves whenever
    anything is created in it (`/tmp`, met on the way by every `resolve()`), and a program that cares
    about its entries lists it, which is a question of its own."""
    if st.st_mode & 0o170000 == 0o040000:
        return (st.st_mode, st.st_ino, st.st_dev)
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _listing(name: str) -> Iterator[tuple[str, int]]:
    """What a listing tells without further calls: each name and its type (a program that wants a
    size or mtime stats the entry, and that question is traced on its own — except `DirEntry.stat()`,
    which stackctl does not call on anything it renders)."""
    with _scandir(name) as entries:
        for entry in entries:
            try:
                kind = 1 if entry.is_symlink() else 2 if entry.is_dir() else 3 if entry.is_file() else 4
            except OSError:
                kind = 0
            yield entry.name, kind


# ---------------------------------------------------------------------------------------------
# The key and the code fingerprint
# ---------------------------------------------------------------------------------------------
def _key(args: list[str]) -> bytes:
    h = hashlib.sha256(MAGIC)

    def feed(*parts: str) -> None:
        for part in parts:
            data = part.encode("utf-8", "surrogateescape")
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)

    ttys = [os.isatty(fd) for fd in (0, 1, 2)]
    size = ""
    for fd in (2, 1):
        if ttys[fd]:
            with contextlib.suppress(OSError):
                size = str(tuple(os.get_terminal_size(fd)))
            break
    # sys.orig_argv: the interpreter's own options too (-X, -u, -m stackctl or the script)
    feed(sys.executable, sys.version, str(os.getuid()), os.getcwd(), str(ttys), size, "argv", *sys.orig_argv, *args,
         "path", *sys.path, "env")
    feed(*(item for name in sorted(os.environ) for item in (name, os.environ[name])))
    return h.digest()


def _entry_path(key: bytes) -> str:
    from stackctl import cachebox

    return os.path.join(cachebox.cache_dir("render-results"), hashlib.sha256(b"entry\0" + key).hexdigest() + ".bin")


def _code_fingerprint() -> bytes:
    """Changes when stackctl's code or an installed package changes."""
    h = hashlib.sha256()
    stack = [_PACKAGE]
    while stack:
        directory = stack.pop()
        with _scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name == "__pycache__":
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
                h.update(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode(errors="surrogateescape"))
    for directory in sys.path:
        try:
            st = _stat(directory or ".")
        except OSError:
            h.update(f"{directory}\0missing\n".encode(errors="surrogateescape"))
            continue
        h.update(f"{directory}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode(errors="surrogateescape"))
    return h.digest()
