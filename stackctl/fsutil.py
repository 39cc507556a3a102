"""The one place that writes files: atomically (temp file in the same directory + fsync + rename).

A reader never sees a half-written file; a crash leaves either the old or the new content.
Files that hold secrets are created with mode 0600 from the first byte (never chmod'ed after the
write); `restrict` and `private_dir` tighten what already exists (a file or directory made by hand).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
PRIVATE_DIR_MODE = 0o700

# The temp file of a write to `name` is `.<name>.<random>.tmp` next to it: hidden, and matched by
# TEMP_GLOB (for .gitignore files) and by `remove_stale_temps`.
TEMP_GLOB = ".*.tmp"


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int = PUBLIC_MODE) -> None:
    """Write `data` to `path` atomically with permission bits `mode`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def write_tree(directory: str | os.PathLike[str], files: Iterable[tuple[str, bytes, int]]) -> bool:
    """Replace `directory` by one holding exactly `files` ((name, content, mode) each): every file
    written into a new hidden directory next to it, one fsync pass, then the directory renamed into
    place (an existing one renamed aside first and removed). A reader sees the old tree or the new
    one, never a mix, and a crash leaves a hidden `.NAME.*.tmp` that the next write sweeps.

    Why not `atomic_write` per file: its fsync and rename per file cost ~10 ms each on a journaling
    filesystem; 800 files of a 300-service render spent 8 s there. Returns False, having written
    nothing, where a rename cannot stand for the directory (a symlink or a mount point, a parent we
    may not write to, another filesystem): the caller then writes file by file."""
    target = Path(directory)
    parent = target.parent
    if target.is_symlink() or (target.exists() and (not target.is_dir() or os.path.ismount(target))):
        return False
    try:
        parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer of this directory at a time (and the sweep below)
        for stale in parent.glob(f".{target.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = _new_hidden_dir(parent, target.name)
        if tmp is None:
            return False
        try:
            if target.is_dir():
                os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
            # Written in full, then flushed at once: one syncfs (Linux: one journal commit for the whole
            # tree), else one fsync pass over the files still open (in batches well inside the
            # open-file limit); then the directory entries.
            synced = _syncfs_available()
            pending: list[int] = []
            names: list[str] = []
            try:
                for name, payload, mode in files:
                    names.append(name)
                    fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                    pending.append(fd)
                    os.fchmod(fd, mode)  # exactly `mode`: the umask does not change it
                    _write_all(fd, payload)
                    if synced:
                        os.close(pending.pop())
                    elif len(pending) >= _OPEN_AT_ONCE:
                        _sync_and_close(pending)
                _sync_and_close(pending)
            finally:
                for fd in pending:
                    os.close(fd)
            if synced and not _syncfs(tmp):
                for name in names:  # syncfs refused: the fsync pass after all
                    fd = os.open(tmp / name, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            _fsync_dir(tmp)
            if target.exists():
                aside = parent / f".{target.name}.{tmp.name.split('.')[-2]}.old.tmp"
                os.rename(target, aside)
                try:
                    os.rename(tmp, target)
                except OSError:
                    os.rename(aside, target)
                    raise
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.rename(tmp, target)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno in (errno.EXDEV, errno.EBUSY, errno.EPERM, errno.EACCES):
                return False
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(parent)
        return True
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)


_OPEN_AT_ONCE = 256


def owned_marker(directory: Path, marker: str, *, writer: str, field: str) -> dict[str, Any]:
    """What the last run of `writer` recorded in `directory`'s marker file ({} for a new or empty
    directory), its "files" kept to paths inside the directory: an edited marker naming ../x or /x
    never makes stackctl touch it. A directory holding anything without the marker is refused (an
    InputError on `field`): stackctl writes into, and prunes, only what it made."""
    from stackctl.errors import InputError

    if not directory.exists():
        return {}
    if not directory.is_dir():
        raise InputError("exists and is not a directory", field=field)
    path = directory / marker
    if not path.is_file():
        if any(os.scandir(directory)):
            raise InputError(f"is not empty and was not written by `{writer}`; choose a new or empty directory",
                             field=field)
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    files = data.get("files")
    data["files"] = [f for f in files if isinstance(f, str) and f != marker and _inside(f)] \
        if isinstance(files, list) else []
    return data


def write_owned(directory: Path, texts: Mapping[str, str], previous: Iterable[str], marker: str,
                marker_text: str) -> tuple[list[str], list[str], int]:
    """Bring a generated directory (`texts`: relative path → content) up to date: (written, removed,
    unchanged). Only a file whose bytes or mode differ is rewritten (atomically), so a re-run with no
    change writes nothing and Git sees only real diffs; a file of `previous` (the marker's list) that
    is no longer generated is removed with the directories it leaves empty; files of the user's stay."""
    written: list[str] = []
    unchanged = 0
    for rel in sorted(texts):
        data = texts[rel].encode("utf-8")
        path = directory / rel
        try:
            same = path.read_bytes() == data and (path.stat().st_mode & 0o777) == PUBLIC_MODE
        except OSError:
            same = False
        if same:
            unchanged += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, mode=PUBLIC_MODE)
        written.append(rel)
    removed: list[str] = []
    for rel in sorted(set(previous) - set(texts)):
        path = directory / rel
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(rel)
            _prune_empty(path.parent, directory)
    marker_path = directory / marker
    try:
        current: str | None = marker_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        current = None
    if current != marker_text:
        atomic_write(marker_path, marker_text)
    return written, removed, unchanged


def _inside(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def _prune_empty(directory: Path, top: Path) -> None:
    while directory != top and top in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


@functools.cache
def _libc_syncfs() -> Any:
    """libc's syncfs(2) (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def _syncfs_available() -> bool:
    return _libc_syncfs() is not None


def _syncfs(directory: Path) -> bool:
    """Flush the filesystem holding `directory` (data and metadata, every file in it). False if
    that failed: the caller then fsyncs what it wrote one by one."""
    call = _libc_syncfs()
    if call is None:
        return False
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return bool(call(fd) == 0)
    finally:
        os.close(fd)


def _sync_and_close(fds: list[int]) -> None:
    while fds:
        os.fsync(fds[-1])
        os.close(fds.pop())


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


def _new_hidden_dir(parent: Path, name: str) -> Path | None:
    """A new `.NAME.<random>.tmp` directory in `parent` (mode 0777 less the umask, as mkdir gives)."""
    for _ in range(100):
        candidate = parent / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        except OSError:
            return None
        return candidate
    return None


def remove_stale_temps(path: str | os.PathLike[str]) -> None:
    """Delete the temp files that writers of `path` killed mid-write left behind. Only safe while
    holding the lock that serialises those writers (another writer's temp file is not stale)."""
    target = Path(path)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def dir_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on the existing directory `path` (no lock file to leave
    behind or to ignore): serialises the writers of files in it that sweep its stale temp files."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def restrict(path: str | os.PathLike[str], mode: int = SECRET_MODE) -> None:
    """Give an existing file the permission bits `mode` (an env file first written by hand with the
    umask's 0644 becomes 0600 the first time stackctl would have written it)."""
    os.chmod(path, mode)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create directory `path` (and its parents) if needed; make `path` itself owner-only (0700)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, PRIVATE_DIR_MODE)
    return directory


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(dfd)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if needed) for the block's duration."""
    lock_path = Path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # read-only: flock needs no write access, and a command that only takes a lock writes nothing (the
    # render's result cache, stackctl/cli/resultcache.py, stores only runs that wrote nothing)
    fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
