"""The one place that writes files: atomically (temp file in the same directory + fsync + rename).

A reader never sees a half-written file; a crash leaves either the old or the new content.
Files that hold secrets are created with mode 0600 from the first byte (never chmod'ed after the
write); `restrict` and `private_dir` tighten what already exists (a file or directory made by hand).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
