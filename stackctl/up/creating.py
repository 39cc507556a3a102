"""What Compose is doing while `docker compose up --no-start` creates and recreates containers.

After a rotation, Compose recreates every service whose environment changed: it stops each old
container (up to its stop_grace_period, 10 s by default, when the process ignores SIGTERM), removes
it and creates the new one, and prints nothing while it does. `up` would sit silent for tens of
seconds. The engine's events say, service by service, what is happening: the view shows them,
with a clock that keeps running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackctl.compose.project import LocalProject

# service -> (state, detail, since: monotonic)
Progress = dict[str, tuple[str, str, float]]


class CreateWatch:
    """The engine's events about the project's containers, from before the create begins."""

    def __init__(self, project: LocalProject, existing: set[str]) -> None:
        self.existing = existing  # services that had a container before: theirs are recreated
        self.lock = threading.Lock()
        self.progress: Progress = {}
        self.steps: dict[str, set[str]] = {}
        self._unwatch: Callable[[], None] | None = project.watch_changes(self._on)

    def _on(self, service: str, action: str, _name: str) -> None:
        """Compose recreates a container as: create the new one under a temporary name, stop the old
        one (kill, die, stop: its stop_grace_period when it ignores SIGTERM), remove it, rename the
        new one (the order varies with the Compose version); a new service's container is only created."""
        if not service:
            return
        step = {"kill": "stopping", "stop": "stopping", "die": "stopping", "destroy": "removed",
                "create": "created"}.get(action.split(":", 1)[0])
        if step is None:
            return
        with self.lock:
            steps = self.steps.setdefault(service, set())
            steps.add(step)
            if "created" in steps and ("removed" in steps or service not in self.existing):
                state = "recreated" if service in self.existing else "created"
                now = (state, "new container created (not started yet)")
            elif "stopping" in steps and "removed" not in steps:
                now = ("recreating", "stopping the old container")
            elif "removed" in steps:
                now = ("recreating", "old container removed; creating the new one")
            else:
                now = ("recreating", "new container created; replacing the old one")
            old = self.progress.get(service)
            if old is None or old[:2] != now:
                self.progress[service] = (*now, time.monotonic())

    def snapshot(self) -> Progress:
        with self.lock:
            return dict(self.progress)

    def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None


def wait(thread: threading.Thread, watch: CreateWatch | None, show: Callable[[Progress], None] | None,
         grace: Mapping[str, float | None]) -> None:
    """Wait for the create in `thread`, showing the watch's progress every 0.1 s (the view's clock
    keeps running even when no event comes: a stop that waits out its grace period, say)."""
    try:
        while thread.is_alive():
            if watch is not None and show is not None:
                show(_with_grace(watch.snapshot(), grace))
            thread.join(0.1)
        if watch is not None and show is not None:
            show(_with_grace(watch.snapshot(), grace))
    finally:
        if watch is not None:
            watch.close()


def _with_grace(progress: Progress, grace: Mapping[str, float | None]) -> Progress:
    out = dict(progress)
    for service, (state, detail, since) in progress.items():
        if detail == "stopping the old container":
            limit = grace.get(service)
            out[service] = (state, f"{detail} (up to {10 if limit is None else limit:g} s: stop_grace_period)",
                            since)
    return out
