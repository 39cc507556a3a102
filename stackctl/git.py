"""The one place that runs the git CLI, and the few questions stackctl asks git.

git is optional: stackctl works in a plain directory and on a machine without git. So the runner
turns "git is not on PATH" into a ToolMissingError and "git did not answer" (a lock held, a
network filesystem gone away) into an OperationError, both with a line a user can act on, instead
of a FileNotFoundError or a hang. Each query then says what "git cannot tell" means for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stackctl.errors import OperationError, ToolMissingError

#: Seconds a git query may take. These are local, read-only queries that answer in milliseconds;
#: anything near this limit is a stuck lock or filesystem, not a slow repository.
TIMEOUT = 10.0

# `git status` refreshes the index (taking .git/index.lock) unless told not to: a read-only query
# must never make a user's concurrent `git commit` fail. Nor may git ever wait on a terminal prompt.
_ENV = {"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}


def run(args: list[str], *, cwd: str | os.PathLike[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run `git -C <cwd> <args>` and return the finished process, whatever its exit status (a
    `cwd` that does not exist is git's exit 128, as for any other directory git cannot use).

    Raises ToolMissingError when git is not installed, OperationError when it does not finish
    within `timeout` seconds.
    """
    exe = shutil.which("git")
    shown = "git " + " ".join(args)
    if exe is None:
        raise ToolMissingError("git is not on PATH", hint="install git, or add its directory to PATH")
    try:
        return subprocess.run([exe, "-C", os.fspath(cwd), *args], capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False, env={**os.environ, **_ENV})
    except subprocess.TimeoutExpired:
        raise OperationError(f"`{shown}` did not finish within {timeout:g}s",
                             hint="is another git process holding a lock in this repository?") from None
    except OSError as exc:  # on PATH but not runnable (permissions, a broken symlink)
        raise ToolMissingError(f"cannot run {exe}: {exc.strerror or exc}") from None


def is_ignored(path: Path, root: Path) -> bool | None:
    """Whether git would ignore `path` (absolute, or relative to `root`): True/False when git can
    tell, None when `root` is not inside a git work tree.

    The answer guards plaintext secrets, so a missing or stuck git is not folded into None: the
    ToolMissingError/OperationError of `run` reaches the caller, which decides whether to say so.
    `--no-index` answers from the ignore rules alone, also for a file that is already tracked.
    """
    proc = run(["check-ignore", "-q", "--no-index", str(path)], cwd=root)
    if proc.returncode == 0:
        return True
    if proc.returncode == 1:
        return False
    return None


def is_tracked(path: Path, root: Path) -> bool | None:
    """Whether git tracks `path` (absolute, or relative to `root`; in the index): True/False when
    git can tell, None when `root` is not inside a git work tree. A missing or stuck git raises, as
    for `is_ignored`: the answer keeps plaintext secrets out of committed files."""
    proc = run(["ls-files", "--error-unmatch", "--", str(path)], cwd=root)
    if proc.returncode == 0:
        return True
    if proc.returncode == 1:
        return False
    return None


def head_commit(root: Path) -> str | None:
    """The full hash of HEAD in the work tree at `root`; None when git is not installed, `root` is
    not in a git work tree, or the repository has no commit yet.

    A record that names the commit is a convenience, so "no git" is an answer here, not an error;
    a git that hangs still raises OperationError.
    """
    proc = _query(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], root)
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def is_dirty(root: Path) -> bool | None:
    """Whether the work tree at `root` has changes git would show: modified, staged or untracked
    (not ignored) files. None when git is not installed or `root` is not in a git work tree; a git
    that hangs raises OperationError."""
    proc = _query(["status", "--porcelain", "--untracked-files=normal"], root)
    if proc is None or proc.returncode != 0:
        return None
    return bool(proc.stdout.strip())


def current_branch(root: Path) -> str | None:
    """The branch checked out in the work tree at `root` (`feature/login`); None when HEAD is
    detached, git is not installed or `root` is not in a git work tree (a preview records what it
    can; a git that hangs still raises OperationError)."""
    proc = _query(["symbolic-ref", "--quiet", "--short", "HEAD"], root)
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def _query(args: list[str], root: Path) -> subprocess.CompletedProcess[str] | None:
    """`run`, with "git is not installed" as None (for the queries where that is an answer)."""
    try:
        return run(args, cwd=root)
    except ToolMissingError:
        return None
