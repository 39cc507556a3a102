"""What Python compiles again on every run though it never changes, kept between runs: the
generated methods of dataclasses and the module-level regular expressions (together about half of
the time importing what `render kubernetes` needs took: ~117 -> ~66 ms; the whole small render
~165 -> ~105 ms; the first run after a change of Python pays ~40 ms more, once).

## Dataclasses

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

## Regular expressions
Compiling a pattern (`re._compiler.compile`: parse, then generate the matcher's code, a list of
ints) costs 50 µs to 9 ms (PyYAML's `Reader.NON_PRINTABLE`, a class of most of Unicode); ~25 ms
for the ~70 patterns stackctl's and PyYAML's modules compile when imported. `install()` wraps
`re._compiler.compile`: a pattern compiled by the body of a module (or of a class) of `stackctl`
or `yaml` is made by `_sre.compile` from the parts stored for exactly that text and those flags;
every other pattern (any compiled inside a function: they may come from user data) is compiled as
before. A part is stored only when the pattern made from it is equal (`==` compares the flags,
the text and the generated code) to the one `re` made, with the same groups, and its parsing
warns of nothing (a cached pattern would not repeat the warning; checked by parsing it a second
time under `warnings.catch_warnings`, once, on the run that stores it: that moment swaps the
process's warning filters, so it is not thread-safe; stackctl's modules are imported on the main
thread before any other starts).

## The files
`$XDG_CACHE_HOME/stackctl/code/{dataclasses,re}-<cache tag>-<digest>.marshal` hold CODE THIS PROCESS
EXECUTES, so one is read only when it is a regular file owned by the current user and not writable
by group or others (its directory is 0700, the file 0600), and it starts with the exact version of
Python, the optimisation level and the path, size and mtime of `dataclasses.py` (`re/_compiler.py`)
(the name's digest is of the same, so two Pythons keep two files). Anything unexpected in it
(unreadable, truncated, another format, another Python) and it is ignored: everything is compiled
as usual. A file is rewritten (atomically, through stackctl.fsutil) only when this process compiled
something new, at exit (`save()`: the CLI calls it before its `os._exit`, `atexit` for everything
else); bounded by MAX_BYTES (beyond that only what this process used is kept).
STACKCTL_CODE_CACHE=0 turns both off.
"""

# No `from __future__ import annotations` in this module, on purpose: the builtin `exec` and
# `compile` inherit the `__future__` flags of the code calling them, and calls that pass through
# here must compile exactly as they would from dataclasses.py, which has none. Hence the quoted
# annotations, and no `typing` at run time: this module is imported by every command, `--help` too.

import builtins
import os
import re
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
REGEX_MODULES = ("stackctl", "yaml")  # whose module-level patterns are kept
_CO_NEWLOCALS = 0x0002  # a function's frame (module and class bodies have not)

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
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stackctl", "code")


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
regex_parts = Store("re")


def install() -> None:
    """Give `dataclasses` the caching `exec`, now if it is imported, else the moment it is (so a
    command that creates no dataclass, `stackctl --help`, does not pay for importing it); wrap
    `re._compiler.compile`."""
    if _state["installed"] or not enabled():
        return
    _state["installed"] = True
    _patch_re()
    module = sys.modules.get("dataclasses")
    if module is not None:
        _patch(module)
    else:
        sys.meta_path.insert(0, _Finder())


def save() -> None:
    """Write what this process compiled anew; never raises (a cache: the next run compiles again)."""
    if not enabled():
        return
    for store in (dataclass_code, regex_parts):
        try:
            store.save()
        except Exception:  # a full disk, a read-only home
            continue


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
    """`exec` as dataclasses calls it: `exec(text, globals, ns)`; any other call as the builtin."""
    if type(source) is str and len(args) == 2 and not kwargs:
        code = _codes.get(source)
        if code is None:
            code = _code(source)
        _builtin_exec(code, *args)
        return
    if not args and "globals" not in kwargs:  # exec(text) runs in its caller's namespace
        frame = sys._getframe(1)
        args = (frame.f_globals,) if "locals" in kwargs else (frame.f_globals, frame.f_locals)
    _builtin_exec(source, *args, **kwargs)


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


# ---------------------------------------------------------------------------------------------
# regular expressions
# ---------------------------------------------------------------------------------------------
_re_compile: "Callable[..., Any] | None" = None  # the original re._compiler.compile
_sre_compile: "Callable[..., Any]" = getattr(getattr(re, "_compiler", None), "_sre", re).compile


def _patch_re() -> None:
    global _re_compile
    compiler = getattr(re, "_compiler", None)
    if compiler is None or _re_compile is not None or not regex_parts.locate(getattr(compiler, "__file__", None)):
        return
    _re_compile = compiler.compile
    compiler.compile = _compile_re


def _compile_re(p: "Any", flags: int = 0) -> "Any":
    """`re._compiler.compile`, made from stored parts for the module-level patterns of REGEX_MODULES."""
    assert _re_compile is not None
    if type(p) not in (str, bytes) or type(flags) is not int or flags & (re.DEBUG | re.LOCALE) or not _module_level():
        return _re_compile(p, flags)
    import marshal

    key = (flags, p)
    blob = regex_parts.get(key)
    if blob is not None:
        try:
            out_flags, code, groups, groupindex, indexgroup = marshal.loads(blob)
            return _sre_compile(p, out_flags, code, groups, groupindex, indexgroup)
        except Exception:  # damaged: compile it
            regex_parts.drop(key)
    pattern = _re_compile(p, flags)
    blob = _parts(p, flags, pattern)
    if blob is not None:
        regex_parts.put(key, blob)
    return pattern


def _module_level() -> bool:
    """Whether the code that asked `re` for this pattern is the body of a module or class of one of
    REGEX_MODULES (frames: this, then re's own, then that code)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "re":
        frame = frame.f_back  # type: ignore[assignment]  # None ends the loop
    if frame is None or frame.f_code.co_flags & _CO_NEWLOCALS:
        return False
    name = frame.f_globals.get("__name__", "")
    return isinstance(name, str) and name.partition(".")[0] in REGEX_MODULES


def _parts(p: "str | bytes", flags: int, pattern: "Any") -> "bytes | None":
    """What `_sre.compile` needs to make `pattern` again, marshalled; None unless that is certain
    (see the module docstring): this repeats re._compiler.compile and checks the result against its."""
    import marshal
    import warnings

    compiler: Any = getattr(re, "_compiler", None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parsed = compiler._parser.parse(p, flags)
            code = [int(op) for op in compiler._code(parsed, flags)]  # RegexFlag is an int marshal refuses
        if caught:
            return None
        groupindex = {str(k): int(v) for k, v in parsed.state.groupdict.items()}
        indexgroup: list[Any] = [None] * parsed.state.groups
        for k, i in groupindex.items():
            indexgroup[i] = k
        parts = (int(flags | parsed.state.flags), code, int(parsed.state.groups - 1), groupindex, tuple(indexgroup))
        again = _sre_compile(p, *parts)
        if again != pattern or again.groups != pattern.groups or dict(again.groupindex) != dict(pattern.groupindex):
            return None
        return marshal.dumps(parts)
    except Exception:  # another re than the one this was written for
        return None
