"""The compiled methods of dataclasses, kept between runs: half of what importing the render costs.

Creating a dataclass on Python 3.11/3.12 compiles each generated method (`__init__`, `__repr__`,
`__eq__`, `__hash__`, `__setattr__`, ...) from source text with `exec(text, globals, ns)`; 3.13
compiles one text per class. For stackctl's ~70 dataclasses that is ~400 calls of the compiler
(~150 µs each on a slow machine: ~55 ms of a ~110 ms import of what `render kubernetes` needs),
every run, for text that is the same every run: it depends only on field names and class options,
never on values (defaults, types and the class's namespace reach the generated code as arguments
and globals, not as text).

So `install()` gives the `dataclasses` module an `exec` of its own (its global name `exec` is
looked up in that module's namespace before builtins; nothing else in the process sees it): for a
source string it executes the code object compiled from exactly that text, from a dict loaded from
one file, and compiles (as `exec` would: file name "<string>", no inherited `__future__` flags) only
text it has not seen; anything else goes to the builtin `exec` unchanged. A dataclass made this way
is the one `exec` would have made: same text, same compiler, same flags, same globals. (Two
classes with the same field names share one code object in a process, as functions of one closure
do.) On a Python whose dataclasses does not call `exec` like that, nothing changes.

The file, `$XDG_CACHE_HOME/stackctl/code/dataclasses-<cache tag>-<crc>.marshal`, holds CODE THIS
PROCESS EXECUTES, so it is read only when it is a regular file owned by the current user and not
writable by group or others (its directory is 0700, the file 0600), and it starts with the exact
version of Python, the optimisation level and the path, size and mtime of `dataclasses.py` (the
name's crc is of the same, so two Pythons keep two files). Anything unexpected in it (unreadable,
truncated, another format, another Python) and it is ignored: the text is compiled as usual. It is
rewritten (atomically, through stackctl.fsutil) only when this process compiled something new, at
exit (`save()`: the CLI calls it before its `os._exit`, `atexit` for everything else); bounded by
MAX_BYTES (beyond that only what this process used is kept). STACKCTL_CODE_CACHE=0 turns it off.
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

_builtin_exec: "Callable[..., None]" = builtins.exec
_codes: dict[str, types.CodeType] = {}  # what this process executed
_blobs: dict[str, bytes] = {}  # the file's entries, marshalled code objects
_state = {"loaded": False, "dirty": False, "installed": False, "atexit": False}
_where: "dict[str, Any]" = {}  # "path": the file, "header": what its first part must equal


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


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


def _patch(module: types.ModuleType) -> None:
    if getattr(module, "exec", None) is not _exec and locate(module):
        module.exec = _exec  # type: ignore[attr-defined]  # the module's own global name, read by its functions


def locate(module: types.ModuleType) -> bool:
    """Name the file for this Python and this `dataclasses` (False: its source file is unknown)."""
    try:
        st = os.stat(module.__file__ or "")
    except (OSError, TypeError):
        return False
    header = (FORMAT, sys.version, sys.implementation.cache_tag, sys.flags.optimize, module.__file__,
              st.st_size, st.st_mtime_ns)
    from binascii import crc32

    tag = sys.implementation.cache_tag or "python"
    name = f"dataclasses-{tag}-{crc32(repr(header).encode('utf-8', 'surrogateescape')):08x}.marshal"
    _where["header"] = header
    _where["path"] = os.path.join(cache_dir(), name)
    return True


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stackctl", "code")


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
    """`exec` as dataclasses calls it: `exec(text, globals, ns)`; any other call as the builtin."""
    if type(source) is str and len(args) == 2 and not kwargs:
        code = _codes.get(source)
        if code is None:
            code = _lookup(source)
        _builtin_exec(code, *args)
        return
    if not args and "globals" not in kwargs:  # exec(text) runs in its caller's namespace
        frame = sys._getframe(1)
        args = (frame.f_globals,) if "locals" in kwargs else (frame.f_globals, frame.f_locals)
    _builtin_exec(source, *args, **kwargs)


def _lookup(source: str) -> types.CodeType:
    """The code of `source` from the file (each entry unmarshalled only when asked for: the file
    also holds the classes of other commands), else compiled now."""
    if not _state["loaded"]:
        _state["loaded"] = True
        _load()
    blob = _blobs.get(source)
    if blob is not None:
        import marshal

        try:
            code = marshal.loads(blob)
        except Exception:  # damaged: compile it
            code = None
        if type(code) is types.CodeType:
            _codes[source] = code
            return code
        del _blobs[source]
    code = compile(source, "<string>", "exec", dont_inherit=True)
    _codes[source] = code
    if not _state["dirty"]:
        _state["dirty"] = True
        if not _state["atexit"]:
            _state["atexit"] = True
            import atexit

            atexit.register(save)
    return code


def _load() -> None:
    """Read the file into `_blobs` when it is safe to (see the module docstring); else nothing."""
    path = _where.get("path")
    if not path:
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022
                or st.st_size > MAX_BYTES):
            return
        chunks: list[bytes] = []
        left = st.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        return
    finally:
        os.close(fd)
    blobs = parse(b"".join(chunks), _where["header"])
    if blobs:
        _blobs.update(blobs)


def parse(data: bytes, header: "tuple[Any, ...]") -> "dict[str, bytes] | None":
    """The entries of a file's content, None unless it is exactly what `save` writes for `header`."""
    import marshal

    try:
        loaded = marshal.loads(data)
    except Exception:  # truncated or foreign: marshal raises EOFError, ValueError, TypeError
        return None
    if not (isinstance(loaded, tuple) and len(loaded) == 2 and loaded[0] == header
            and type(loaded[1]) is dict):
        return None
    blobs: dict[str, bytes] = loaded[1]
    for text, blob in blobs.items():
        if type(text) is not str or type(blob) is not bytes:
            return None
    return blobs


def save() -> None:
    """Write the file when this process compiled something new; never raises (it is a cache)."""
    if not _state["dirty"]:
        return
    _state["dirty"] = False
    path = _where.get("path")
    if not path or not enabled():
        return
    try:
        import marshal

        from stackctl import fsutil

        fresh = {text: marshal.dumps(code) for text, code in _codes.items() if text not in _blobs}
        data = marshal.dumps((_where["header"], {**_blobs, **fresh}))
        if len(data) > MAX_BYTES:  # keep what this process used
            used = {text: _blobs.get(text) or fresh[text] for text in _codes}
            data = marshal.dumps((_where["header"], used))
            if len(data) > MAX_BYTES:
                return
        fsutil.private_dir(os.path.dirname(path))
        fsutil.atomic_write(path, data, mode=fsutil.SECRET_MODE)
    except Exception:  # a full disk or a read-only home: the next run compiles again
        return
