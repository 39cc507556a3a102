"""stackctl/codecache.py: dataclasses made from cached code are the dataclasses `exec` would make;
the cache file is only trusted when it is ours, for this Python, and intact; the switch turns it off."""

from __future__ import annotations

import builtins
import dataclasses
import json
import marshal
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackctl import codecache, fsutil

ROOT = Path(__file__).resolve().parents[2]

# Dataclasses of every shape stackctl uses, and what a caller can observe of each.
PROBE = r'''
import dataclasses, json, sys
from dataclasses import dataclass, field
import stackctl
from stackctl import codecache

codecache.MODULES = ("stackctl", "__main__")  # this script's classes are kept as stackctl's are


@dataclass(frozen=True)
class Port:
    target: int
    published: str | None = None
    protocol: str = "tcp"
    tags: tuple[str, ...] = ()


@dataclass
class Service:
    name: str
    ports: list[Port] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    replicas: int = 1


@dataclass(frozen=True, kw_only=True)
class Opts:
    out: str
    validate: bool = False


@dataclass(order=True, unsafe_hash=True)
class Version:
    major: int
    minor: int = 0


@dataclass(slots=True)
class Slotted:
    a: int
    b: list[int] = field(default_factory=lambda: [1, 2])


def observe():
    out = {}
    p = Port(80)
    out["repr"] = [repr(p), repr(Service("web", [p])), repr(Opts(out="x")), repr(Version(1, 2)), repr(Slotted(3))]
    out["eq"] = [p == Port(80), p == Port(81), Service("a", env={"A": "1"}) == Service("a"), Version(1) < Version(1, 1)]
    out["hash"] = [hash(p) == hash(Port(80)), hash(Version(2)) == hash(Version(2)), Service.__hash__ is None]
    try:
        p.target = 1
        out["frozen"] = "assigned"
    except dataclasses.FrozenInstanceError as exc:
        out["frozen"] = f"{type(exc).__name__}: {exc}"
    try:
        Opts("positional")
        out["kw_only"] = "accepted"
    except TypeError as exc:
        out["kw_only"] = str(exc)
    try:
        Port()
        out["missing"] = "accepted"
    except TypeError as exc:
        out["missing"] = str(exc)
    a, b = Service("a"), Service("b")
    a.ports.append(p)
    out["factory"] = [len(a.ports), len(b.ports), Slotted(1).b]
    out["replace"] = repr(dataclasses.replace(p, published="8080"))
    out["fields"] = [(f.name, str(f.type), f.repr, f.compare, f.kw_only) for c in (Port, Service, Opts, Slotted)
                     for f in dataclasses.fields(c)]
    out["asdict"] = dataclasses.asdict(Service("w", [p]))
    out["init_annotations"] = {k: str(v) for k, v in Port.__init__.__annotations__.items()}
    out["qualnames"] = [Port.__init__.__qualname__, Service.__eq__.__qualname__, Version.__lt__.__qualname__]
    out["doc"] = [Port.__doc__, Opts.__doc__]
    out["code"] = [Port.__init__.__code__.co_filename, Port.__init__.__code__.co_flags]
    out["slots"] = Slotted.__slots__
    return out


result = observe()
result["_cache"] = {"patched": getattr(dataclasses, "exec", None) is codecache._exec,
                    "compiled": bool(codecache.dataclass_code.fresh),
                    "from_file": len(codecache.dataclass_code.blobs)}
print(json.dumps(result, sort_keys=True))
'''


def _probe(tmp_path: Path, switch: str | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKCTL_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"))
    if switch is not None:
        env[codecache.ENV] = switch
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "stackctl" / "code").glob("*"))


def test_cold_and_warm_cache_make_the_same_classes_as_plain_dataclasses(tmp_path: Path) -> None:
    plain = _probe(tmp_path, "0")
    assert plain.pop("_cache")["patched"] is False
    assert _files(tmp_path) == []

    cold = _probe(tmp_path)
    assert cold.pop("_cache") == {"patched": True, "compiled": True, "from_file": 0}
    [file] = _files(tmp_path)

    warm = _probe(tmp_path)
    cache = warm.pop("_cache")
    assert cache["patched"] is True
    assert cache["compiled"] is False  # every method came from the file
    assert cache["from_file"] > 10
    assert cold == plain
    assert warm == plain
    assert plain["frozen"] == "FrozenInstanceError: cannot assign to field 'target'"
    assert plain["eq"] == [True, False, True, True]
    assert plain["factory"] == [1, 0, [1, 2]]
    assert plain["code"][0] == "<string>"
    assert [str(p.name) for p in _files(tmp_path)] == [file.name]  # a warm run writes nothing


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """codecache with empty state, its file under tmp_path, installed in dataclasses for this test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(codecache.ENV, raising=False)
    _reset_memory(monkeypatch)
    monkeypatch.setattr(dataclasses, "exec", codecache._exec, raising=False)
    monkeypatch.setattr(codecache, "MODULES", ("stackctl", __name__.partition(".")[0]))
    return Path(codecache.dataclass_code.path)


def _make() -> type:
    @dataclasses.dataclass(frozen=True)
    class Made:
        a: int
        b: str = "x"
        c: tuple[int, ...] = dataclasses.field(default_factory=tuple)

    return Made


def _reset_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process as far as codecache knows: nothing compiled or loaded yet (same file)."""
    store = codecache.Store("dataclasses")
    assert store.locate(dataclasses.__file__)
    monkeypatch.setattr(codecache, "dataclass_code", store)
    monkeypatch.setattr(codecache, "_codes", {})


def _check(made: type) -> None:
    obj = made(1)
    assert repr(obj) == "_make.<locals>.Made(a=1, b='x', c=())"
    assert obj == made(1, "x", ())
    assert obj != made(2)
    assert hash(obj) == hash(made(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.a = 2


def test_saved_file_is_private_and_written_through_the_atomic_writer(
        fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[tuple[str, int]] = []
    real = fsutil.atomic_write

    def spy(path: str | os.PathLike[str], data: bytes | str, *, mode: int = fsutil.PUBLIC_MODE) -> None:
        writes.append((str(path), mode))
        real(path, data, mode=mode)

    monkeypatch.setattr(fsutil, "atomic_write", spy)
    _check(_make())
    codecache.save()
    assert writes == [(str(fresh), 0o600)]
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700
    assert [p.name for p in fresh.parent.iterdir()] == [fresh.name]  # no temp file left
    codecache.save()  # nothing new compiled since: nothing written
    assert len(writes) == 1

    _reset_memory(monkeypatch)
    _check(_make())
    assert codecache.dataclass_code.blobs and not codecache.dataclass_code.fresh


def _compiled_again(monkeypatch: pytest.MonkeyPatch) -> bool:
    _reset_memory(monkeypatch)
    _check(_make())
    return bool(codecache.dataclass_code.fresh)


def test_a_damaged_file_is_ignored(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_make())
    codecache.save()
    good = fresh.read_bytes()
    for bad in (good[: len(good) // 2], b"", b"not marshal at all", marshal.dumps({"a": 1}),
                marshal.dumps((codecache.dataclass_code.header, {"x": "not bytes"}))):
        fresh.write_bytes(bad)
        assert _compiled_again(monkeypatch)


def test_an_entry_that_is_not_code_is_compiled_instead(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_make())
    codecache.save()
    header, blobs = marshal.loads(fresh.read_bytes())
    fresh.write_bytes(marshal.dumps((header, {text: marshal.dumps("spoof") for text in blobs})))
    assert _compiled_again(monkeypatch)


def test_a_file_others_may_write_is_ignored(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_make())
    codecache.save()
    assert not _compiled_again(monkeypatch)
    for mode in (0o620, 0o602, 0o666):
        os.chmod(fresh, mode)
        assert _compiled_again(monkeypatch), oct(mode)


def test_a_file_owned_by_someone_else_is_ignored(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_make())
    codecache.save()
    monkeypatch.setattr(os, "getuid", lambda: os.stat(fresh).st_uid + 1)
    assert _compiled_again(monkeypatch)


def test_a_file_of_another_python_is_ignored(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_make())
    codecache.save()
    data = fresh.read_bytes()
    monkeypatch.setattr(sys, "version", sys.version.replace(".", "!", 1))
    _reset_memory(monkeypatch)
    other = Path(codecache.dataclass_code.path)
    assert other != fresh  # another name ...
    other.write_bytes(data)  # ... and with this one's content, still refused
    os.chmod(other, 0o600)
    _check(_make())
    assert codecache.dataclass_code.fresh


def test_a_symlink_is_not_followed(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_make())
    codecache.save()
    real = fresh.with_name("elsewhere")
    fresh.rename(real)
    fresh.symlink_to(real)
    assert _compiled_again(monkeypatch)


def test_the_switch_leaves_dataclasses_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(codecache.ENV, "0")
    monkeypatch.setattr(codecache, "_state", {"installed": False, "atexit": True})
    monkeypatch.delattr(dataclasses, "exec", raising=False)
    meta = list(sys.meta_path)
    codecache.install()
    assert "exec" not in vars(dataclasses)
    assert sys.meta_path == meta
    monkeypatch.setenv(codecache.ENV, "1")
    codecache.install()
    assert vars(dataclasses)["exec"] is codecache._exec


def test_other_calls_of_exec_behave_as_the_builtin(fresh: Path) -> None:
    dc_exec = vars(dataclasses)["exec"]
    assert dc_exec is codecache._exec
    assert builtins.exec is not codecache._exec  # only dataclasses' own name is replaced

    # a code object, with a namespace of its own
    ns: dict[str, Any] = {}
    dc_exec(compile("x = 6 * 7", "<t>", "exec"), {"__builtins__": builtins}, ns)
    assert ns == {"x": 42}
    # the same text under different globals: each run sees its own globals
    src = "def f():\n    return value\n"
    ns1: dict[str, Any] = {}
    ns2: dict[str, Any] = {}
    dc_exec(src, {"value": 1}, ns1)
    dc_exec(src, {"value": 2}, ns2)
    assert (ns1["f"](), ns2["f"]()) == (1, 2)
    # no __future__ flag of codecache's callers (or of this test module) leaks into the compiled text
    ns3: dict[str, Any] = {}
    dc_exec("def g(a: int) -> int:\n    return a\n", {}, ns3)
    assert ns3["g"].__annotations__ == {"a": int, "return": int}
    # only globals: the builtin's behaviour (locals are the globals)
    g: dict[str, Any] = {}
    dc_exec("y = 1", g)
    assert g["y"] == 1
    # no namespace at all: runs in the caller's (here a module-level frame)
    module: dict[str, Any] = {"dc_exec": dc_exec}
    builtins.exec("dc_exec('w = 9')", module)
    assert module["w"] == 9
    with pytest.raises(SyntaxError):
        dc_exec("def (", {}, {})
    with pytest.raises(NameError):
        dc_exec("missing_name", {}, {})


def test_only_classes_of_stackctl_are_kept(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecache, "MODULES", ("stackctl",))
    _check(_make())  # a class of this test module: compiled as usual, not kept
    assert not codecache.dataclass_code.fresh
    codecache.save()
    assert not fresh.exists()
