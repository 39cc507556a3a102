"""File watching for the dev loop: the rules' paths watched with watchfiles (the Rust `notify` crate:
inotify on Linux, FSEvents on macOS, polling only where neither works), changes coalesced into
batches, each batch turned into the rules it fires (`stackctl.dev.rules.fired`).

Why watchfiles: a kernel notification per change, no walk of the tree per poll (a hand-made poller
costs a stat per file per tick and sees an edit only at the next tick); it coalesces in its Rust
thread, and keeps collecting while the caller is busy (a rebuild), so the edits made meanwhile come
as the next batch, not one at a time. Imported only by the dev loop (~60 ms).

Coalescing: a batch closes once no change came for `quiet` seconds (an editor's save, a `git
checkout`, a formatter touching many files are one batch), or `max_wait` after its first change
when changes never stop. Compose waits 0.5 s of quiet; 0.1 s suffices for a save (its writes come
within milliseconds) and takes 0.4 s off every edit.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackctl.dev.rules import Change, WatchRule, fired

QUIET = 0.1
MAX_WAIT = 2.0
READY_TIMEOUT_MS = 200  # the longest wait for changes before the watcher checks in (readiness, `stop`)


@dataclass(frozen=True)
class Batch:
    """One coalesced batch of changes: the rules it fires, every changed path (fired or not), and
    when the watcher handed it over (monotonic seconds: the start of the edit's turnaround)."""

    changes: tuple[Change, ...]
    paths: tuple[Path, ...]
    at: float


def roots(rules: Sequence[WatchRule]) -> tuple[Path, ...]:
    """The directories to watch: each rule's path, or its nearest existing parent while it does not
    exist yet (a file the rule names may be created later); none inside another."""
    found: set[Path] = set()
    for rule in rules:
        path = rule.path
        while not path.exists() and path.parent != path:
            path = path.parent
        found.add(path)
    ordered = sorted(found, key=lambda p: (len(p.parts), str(p)))
    out: list[Path] = []
    for path in ordered:
        if not any(path == o or o in path.parents for o in out):
            out.append(path)
    return tuple(out)


def batches(rules: Sequence[WatchRule], stop: threading.Event, *, quiet: float = QUIET,
            max_wait: float = MAX_WAIT, include_unfired: bool = False,
            on_ready: Callable[[], None] | None = None) -> Iterator[Batch]:
    """Yield a `Batch` per coalesced set of changes that fires at least one rule (every batch with
    `include_unfired`), until `stop` is set. `on_ready()` is called once the kernel watches are in
    place (an edit from then on is seen; one made before may not be): "watching" is said then, not
    before. Ctrl-C raises KeyboardInterrupt from here as usual."""
    import watchfiles

    watched = roots(rules)
    if not watched:
        return
    ready = on_ready
    # A short Rust timeout with empty yields: the first one says the watches are set up (they are
    # made when the watcher is created, before its first wait).
    for raw in watchfiles.watch(*watched, watch_filter=None, debounce=int(max_wait * 1000),
                                step=max(int(quiet * 1000), 1), stop_event=stop, rust_timeout=READY_TIMEOUT_MS,
                                yield_on_timeout=True, raise_interrupt=True):
        if ready is not None:
            ready()
            ready = None
        if stop.is_set():
            return
        if not raw:
            continue
        paths = tuple(sorted({Path(os.path.normpath(p)) for _kind, p in raw}))
        changes = fired(rules, paths)
        if changes or include_unfired:
            yield Batch(changes, paths, time.monotonic())


def changes(rules: Sequence[WatchRule], stop: threading.Event, *, quiet: float = QUIET,
            max_wait: float = MAX_WAIT) -> Iterator[tuple[Change, ...]]:
    """The fired rules of each batch (`batches` without the bookkeeping): the cluster loop's view."""
    for batch in batches(rules, stop, quiet=quiet, max_wait=max_wait):
        yield batch.changes
