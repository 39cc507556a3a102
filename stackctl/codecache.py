"""What Python compiles again on every run though it never changes, kept between runs: the
generated methods of stackctl's dataclasses (a third of the time importing what `render kubernetes`
needs took: ~117 -> ~77 ms; the first run after a change of Python pays ~40 ms more, once).

## Dataclasses

Creating a dataclass on Python 3.11/3.12 compiles each generated method (`__init__`, `__repr__`,
`__eq__`, `__hash__`, `__setattr__`, ...) from source text with `exec(text, globals, ns)`; 3.13
compiles one text per class. For stackctl's ~70 dataclasses that is ~400 calls of the compiler
(~150 µs each on a slow machine: ~55 ms of a ~110 ms import of what `render kubernetes` needs),
every run, for text that is the same every run: it depends only on field names and class options,
never on values (defaults, types and the class's namespace reach the generated code as arguments
and globals, not as text). Only classes of stackctl's own modules (`MODULES`) are kept: a program
that imports stackctl (a test suite) and makes dataclasses of its own does not grow the file.

So `install()` gives the `dataclasses` module an `exec` of its own (its global name `exec` is
looked up in that module's namespace before builtins; nothing else in the process sees it): for a
source string it executes the code object compiled from exactly that text, from a dict loaded from
one file, and compiles (as `exec` would: file name "<string>", no inherited `__future__` flags) only
text it has not seen; anything else goes to the builtin `exec` unchanged. A dataclass made this way
is the one `exec` would have made: same text, same compiler, same flags, same globals. (Two
classes with the same field names share one code object in a process, as functions of one closure
do.) On a Python whose dataclasses does not call `exec` like that, nothing changes.

## The files
`$XDG_CACHE_HOME/stackctl/code/dataclasses-<cache tag>-<digest>.marshal` hold CODE THIS PROCESS
EXECUTES, so one is read only when it is a regular file owned by the current user and not writable
by group or others (its directory is 0700, the file 0600), and it starts with the exact version of
Python, the optimisation level and the path, size and mtime of `dataclasses.py`
(the name's digest is of the same, so two Pythons keep two files). Anything unexpected in it
(unreadable, truncated, another format, another Python) and it is ignored: everything is compiled
as usual. A file is rewritten (atomically, through stackctl.fsutil) only when this process compiled
something new, at exit (`save()`: the CLI calls it before its `os._exit`, `atexit` for everything
else); bounded by MAX_BYTES (beyond that only what this process used is kept).
STACKCTL_CODE_CACHE=0 turns it off.
"""

# No `from __future__ import annotations` in this module, on purpose: the builtin `exec` and
# `compile` inherit the `__future__` flags of the code calling them, and calls that pass through
# here must compile exactly as they would from dataclasses.py, which has none. Hence the quoted
# annotations, and no `typing` at run time: this module is imported by every command, `--help` too.

import builtins
import os
import stat
import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

ENV = "STACKCTL_CODE_CACHE"
MAX_BYTES = 4 * 1024 * 1024
FORMAT = 1
MODULES = ("stackctl",)  # whose dataclasses are kept

_builtin_exec: "Callable[..., None]" = builtins.exec
_state = {"installed": False, "atexit": False}


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class Store:
    """One cache file: its entries (key -> marshalled value) read on first use; what this process
    added, written by `save()`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.path = ""
        self.header: tuple[Any, ...] = ()
        self.blobs: dict[Any, bytes] = {}  # the file's entries
        self.fresh: dict[Any, bytes] = {}  # added by this process
        self.used: set[Any] = set()
        self.loaded = False

    def locate(self, source: "str | None") -> bool:
        """Name the file for this Python and the module at `source` (False: no such file)."""
        try:
            st = os.stat(source or "")
        except (OSError, TypeError, ValueError):
            return False
        self.header = (FORMAT, self.kind, sys.version, sys.implementation.cache_tag, sys.flags.optimize,
                       source, st.st_size, st.st_mtime_ns)
        tag = sys.implementation.cache_tag or "python"
        self.path = os.path.join(cache_dir(), f"{self.kind}-{tag}-{_fnv1a(repr(self.header)):08x}.marshal")
        return True

    def get(self, key: "Any") -> "bytes | None":
        if not self.loaded:
            self.loaded = True
            self.blobs.update(_read(self.path, self.header))
        blob = self.blobs.get(key)
        if blob is not None:
            self.used.add(key)
        return blob

    def drop(self, key: "Any") -> None:
        self.blobs.pop(key, None)
        self.used.discard(key)

    def put(self, key: "Any", blob: bytes) -> None:
        self.fresh[key] = blob
        self.used.add(key)
        if not _state["atexit"]:
            _state["atexit"] = True
            import atexit

            atexit.register(save)

    def save(self) -> None:
        if not self.fresh or not self.path:
            return
        import marshal

        from stackctl import fsutil

        fresh, self.fresh = self.fresh, {}
        entries = {**self.blobs, **fresh}
        data = marshal.dumps((self.header, entries))
        if len(data) > MAX_BYTES:  # keep what this process used
            data = marshal.dumps((self.header, {k: v for k, v in entries.items() if k in self.used}))
            if len(data) > MAX_BYTES:
                return
        self.blobs = entries
        fsutil.private_dir(os.path.dirname(self.path))
        fsutil.atomic_write(self.path, data, mode=fsutil.SECRET_MODE)


def _fnv1a(text: str) -> int:
    """A 32-bit digest for a file name (hashlib would load OpenSSL: ~3 ms, on every command)."""
    h = 0x811C9DC5
    for byte in text.encode("utf-8", "surrogateescape"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def cache_dir() -> str:
    from stackctl import cachebox

    return cachebox.cache_dir("code")


def _read(path: str, header: "tuple[Any, ...]") -> "dict[Any, bytes]":
    """The entries of the file at `path` when it is safe to use (see the module docstring), else {}."""
    if not path:
        return {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022
                or st.st_size > MAX_BYTES):
            return {}
        chunks: list[bytes] = []
        left = st.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        return {}
    finally:
        os.close(fd)
    return parse(b"".join(chunks), header) or {}


def parse(data: bytes, header: "tuple[Any, ...]") -> "dict[Any, bytes] | None":
    """The entries of a file's content, None unless it is exactly what `save` writes for `header`."""
    import marshal

    try:
        loaded = marshal.loads(data)
    except Exception:  # truncated or foreign: marshal raises EOFError, ValueError, TypeError
        return None
    if not (type(loaded) is tuple and len(loaded) == 2 and loaded[0] == header and type(loaded[1]) is dict):
        return None
    entries: dict[Any, bytes] = loaded[1]
    for blob in entries.values():
        if type(blob) is not bytes:
            return None
    return entries


dataclass_code = Store("dataclasses")


def install() -> None:
    """Give `dataclasses` the caching `exec`, now if it is imported, else the moment it is (so a
    command that creates no dataclass, `stackctl --help`, does not pay for importing it)."""
    if _state["installed"] or not enabled():
        return
    _state["installed"] = True
    module = sys.modules.get("dataclasses")
    if module is not None:
        _patch(module)
    else:
        sys.meta_path.insert(0, _Finder())


def save() -> None:
    """Write what this process compiled anew; never raises (a cache: the next run compiles again)."""
    if not enabled():
        return
    try:
        dataclass_code.save()
    except Exception:  # a full disk, a read-only home
        return


# ---------------------------------------------------------------------------------------------
# dataclasses
# ---------------------------------------------------------------------------------------------
_codes: "dict[str, types.CodeType]" = {}  # what this process executed


def _patch(module: types.ModuleType) -> None:
    if getattr(module, "exec", None) is not _exec and dataclass_code.locate(module.__file__):
        module.exec = _exec  # type: ignore[attr-defined]  # the module's own global name, read by its functions


class _Finder:
    """On sys.meta_path until `dataclasses` is imported: finds it through the other finders, and
    patches it right after it has run (then its spec and `__loader__` are the original ones)."""

    def find_spec(self, name: str, path: "Any" = None, target: "Any" = None) -> "Any":
        if name != "dataclasses":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _AfterLoad(spec.loader)
                return spec
        return None


class _AfterLoad:
    def __init__(self, loader: "Any") -> None:
        self.loader = loader

    def create_module(self, spec: "Any") -> "Any":
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        spec = module.__spec__
        if spec is not None:
            spec.loader = self.loader
        module.__loader__ = self.loader
        self.loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> "Any":
        return getattr(self.loader, name)


def _exec(source: "Any", /, *args: "Any", **kwargs: "Any") -> None:
    """`exec` as dataclasses calls it for a class of MODULES: `exec(text, globals, ns)` (the globals
    are the module's); any other call as the builtin."""
    if type(source) is str and len(args) == 2 and not kwargs and _ours(args[0]):
        code = _codes.get(source)
        if code is None:
            code = _code(source)
        _builtin_exec(code, *args)
        return
    if not args and "globals" not in kwargs:  # exec(text) runs in its caller's namespace
        frame = sys._getframe(1)
        args = (frame.f_globals,) if "locals" in kwargs else (frame.f_globals, frame.f_locals)
    _builtin_exec(source, *args, **kwargs)


def _ours(module_globals: "Any") -> bool:
    name = module_globals.get("__name__") if type(module_globals) is dict else None
    return isinstance(name, str) and name.partition(".")[0] in MODULES


def _code(source: str) -> types.CodeType:
    """The code of `source` from the file (each entry unmarshalled only when asked for: the file
    also holds the classes of other commands), else compiled now."""
    import marshal

    blob = dataclass_code.get(source)
    if blob is not None:
        try:
            code = marshal.loads(blob)
        except Exception:  # damaged: compile it
            code = None
        if type(code) is types.CodeType:
            _codes[source] = code
            return code
        dataclass_code.drop(source)
    code = compile(source, "<string>", "exec", dont_inherit=True)
    _codes[source] = code
    dataclass_code.put(source, marshal.dumps(code))
    return code
