"""The `develop.watch` rules of a stack, as Compose defines them, and which rule a changed path fires.

Shared by the local loop and the cluster loop: they differ in what an action does, not in which fires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Action = Literal["sync", "rebuild", "sync+restart", "sync+exec", "restart"]


@dataclass(frozen=True)
class WatchRule:
    service: str
    action: Action
    path: Path                        # absolute path on the host (file or directory)
    target: str | None = None         # path in the container (sync actions)
    ignore: tuple[str, ...] = ()      # Compose's ignore patterns (relative to `path`), plus .dockerignore's
    include: tuple[str, ...] = ()     # Compose's include patterns, when given
    initial_sync: bool = False
    exec_command: tuple[str, ...] = ()  # sync+exec: the command run in the container after the sync
    where: str = ""                   # "compose.yaml: services.api.develop.watch[0]" for messages


@dataclass(frozen=True)
class Change:
    rule: WatchRule
    paths: tuple[Path, ...]           # changed host paths under rule.path (coalesced, sorted)


def watch_rules(stack: object) -> tuple[WatchRule, ...]:
    """Every rule of every service of the loaded stack (stackctl.model.Stack), in Compose's order."""
    raise NotImplementedError


def fired(rules: Sequence[WatchRule], changed: Iterable[Path]) -> tuple[Change, ...]:
    """Which rules the changed paths fire, each rule once with its paths (ignored paths dropped)."""
    raise NotImplementedError
