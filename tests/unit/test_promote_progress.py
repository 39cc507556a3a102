"""Issue 13, items 4 and 5 at the unit level: promote's clock counts what the user waited for and
ticks while nothing happens; a revision records where it came from, and old revisions still read.

The clocks are injected (`clock=`, `started=`) where the code takes them; the live view's ticking is
rich's refresh thread, so that test waits a second of real time.
"""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from stackctl.kubernetes.deploy import commands
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.deployer import Deployer, Options
from stackctl.kubernetes.deploy.watch import LineView, LiveView
from stackctl.kubernetes.labels import A_AUTHOR, A_GIT_COMMIT, A_GIT_DIRTY, A_MESSAGE, L_REVISION, REVISION_TYPE

RELEASE = kh.Release(stack="demo", namespace="ns", profile="dev")
OBJECTS = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}},
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": {}}]


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SlowCluster:
    """Just enough of `Cluster` for a dry run into a namespace that does not exist yet: every
    request takes `cost` seconds of the test's clock."""

    context = "ctx"
    server = "https://example.invalid"

    def __init__(self, clock: Clock, cost: float) -> None:
        self.clock, self.cost = clock, cost

    def get(self, ref: Any) -> None:
        self.clock.now += self.cost
        return None

    def apply(self, obj: Mapping[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        self.clock.now += self.cost
        return dict(obj)

    def close(self) -> None:
        pass


class Recorder:
    """A view that remembers the phases it was told and whether it was closed."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.closed = False

    def phase(self, text: str) -> None:
        self.phases.append(text)

    def note(self, text: str) -> None: ...
    def applied(self, item: Any) -> None: ...
    def deleted(self, ref: Any, what: str) -> None: ...
    def workload(self, st: Any) -> None: ...
    def event(self, ev: Any) -> None: ...

    def close(self) -> None:
        self.closed = True


# -- item 4: the clock ------------------------------------------------------------------------------
def test_a_deploys_elapsed_time_counts_from_the_commands_start() -> None:
    """Before: `Result.elapsed` started when the Deployer did, so the image build, the render and the
    connection (minutes, with a build) were missing from "revision 9 in 3.5s"."""
    clock = Clock(100.0)
    deployer = Deployer(SlowCluster(clock, 2.0), RELEASE, options=Options(dry_run=True), context="ctx",  # type: ignore[arg-type]
                        started=40.0, clock=clock)
    try:
        result = deployer.deploy(OBJECTS, description="promote dev")
    finally:
        deployer.close()
    assert clock.now > 100.0  # the requests took the test's time
    assert result.elapsed == clock.now - 40.0


def test_the_terminal_holds_the_commands_start_and_one_view_for_every_phase() -> None:
    clock = Clock(10.0)
    views: list[tuple[float, Recorder]] = []

    def open_view(start: float) -> Recorder:
        views.append((start, Recorder()))
        return views[-1][1]

    term = commands.Terminal(info=lambda _t: None, warn=lambda _t: None, ask=lambda _q: None,
                             open_view=open_view, started=3.0, clock=clock)
    term.phase("rendering profile dev")  # prepare's phases open the view ...
    result = commands.deploy(SlowCluster(clock, 1.0), RELEASE, Options(dry_run=True), "ctx", term,  # type: ignore[arg-type]
                             lambda d: d.deploy(OBJECTS, description="promote dev"))
    [(start, view)] = views  # ... and the deploy goes on in the same one
    assert start == 3.0
    assert view.closed
    assert result.elapsed == clock.now - 3.0
    assert view.phases[0] == "rendering profile dev"
    assert "reading the cluster" in view.phases and "applying config" in view.phases
    assert view.phases[-1] == "pruning"  # a dry run records nothing


def test_line_view_times_lines_from_the_commands_start_and_prints_each_phase_once() -> None:
    out = io.StringIO()
    clock = Clock(50.0)
    view = LineView(Console(file=out, width=200, no_color=True), start=20.0, clock=clock)
    view.phase("building registry/app:src-1 (service app)")
    clock.now = 95.5
    view.phase("building registry/app:src-1 (service app)")
    view.phase("pushing registry/app:src-1")
    assert out.getvalue().splitlines() == ["  30.0s  building registry/app:src-1 (service app)",
                                           "  75.5s  pushing registry/app:src-1"]


def test_live_view_clock_ticks_while_nothing_happens() -> None:
    """Before: the live view redrew only when an event or a status arrived, so its clock froze (at
    0.5 s, for the minute a Job ran)."""
    out = io.StringIO()
    view = LiveView(Console(file=out, width=100, force_terminal=True, no_color=True, height=30),
                    start=time.monotonic() - 5)
    try:
        view.phase("waiting for Job/migrate to complete")
        time.sleep(1.3)  # no event, no status
        drawn = out.getvalue()
    finally:
        view.close()
    shown = {float(t) for t in re.findall(r"waiting for Job/migrate to complete (\d+\.\d)s", drawn)}
    assert len(shown) >= 3, drawn
    assert min(shown) >= 5.0 and max(shown) >= 6.0


# -- item 5: provenance ----------------------------------------------------------------------------
def _secret(number: int, annotations: Mapping[str, str]) -> dict[str, Any]:
    return {"type": REVISION_TYPE, "metadata": {"name": f"stackctl.rev.demo.v{number}",
                                                "labels": {L_REVISION: str(number), "stackctl.io/status": "deployed"},
                                                "annotations": dict(annotations)}}


def test_a_revision_stored_before_provenance_still_reads() -> None:
    rev = kh._revision(_secret(3, {"stackctl.io/description": "promote dev"}))
    assert rev is not None
    assert rev.provenance == kh.Provenance()
    data = rev.as_data()
    assert (data["message"], data["commit"], data["dirty"], data["author"]) == (None, None, None, None)
    assert commands.revision_line(rev) == "revision 3 (promote dev)"


def test_provenance_round_trips_through_the_revision_annotations() -> None:
    src = kh.Provenance(message="fix the login", commit="0123456789abcdef0123", dirty=True, author="ana@box")
    notes = src.annotations()
    assert notes == {A_MESSAGE: "fix the login", A_GIT_COMMIT: "0123456789abcdef0123", A_GIT_DIRTY: "true",
                     A_AUTHOR: "ana@box"}
    rev = kh._revision(_secret(4, {**notes, "stackctl.io/description": "promote prod",
                                   "stackctl.io/created": "2026-12-07T01:00:00Z"}))
    assert rev is not None and rev.provenance == src
    assert rev.as_data()["dirty"] is True and rev.provenance.source == "0123456789ab+dirty"
    assert commands.revision_line(rev) == ("revision 4 (promote prod: fix the login, commit 0123456789ab+dirty, "
                                           "by ana@box, created 2026-12-07T01:00:00Z)")
    assert kh.Provenance(commit="abc", dirty=False).annotations() == {A_GIT_COMMIT: "abc", A_GIT_DIRTY: "false"}


def test_record_writes_the_provenance() -> None:
    sent: list[dict[str, Any]] = []

    class Cluster:
        def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
            sent.append(kw["body"])
            return {}

    src = kh.Provenance(message="m", commit="c0ffee", dirty=False, author="bo@host")
    number = kh.record(Cluster(), RELEASE, [], status="deployed", description="promote dev",  # type: ignore[arg-type]
                       context="ctx", summary={}, previous=[], provenance=src)
    assert number == 1
    rev = kh._revision({**sent[0], "data": {"summary": base64.b64encode(b"{}").decode()}})
    assert rev is not None and rev.provenance == src


def test_provenance_names_the_commit_and_whoever_runs_it(tmp_path: Any, monkeypatch: Any) -> None:
    from stackctl import git
    from stackctl.secrets.ops import default_recipient_name

    class Prof:
        root = tmp_path

    monkeypatch.setattr(git, "head_commit", lambda root: "f" * 40 if root == tmp_path else None)
    monkeypatch.setattr(git, "is_dirty", lambda root: True)
    src = commands.provenance(Prof(), "why")  # type: ignore[arg-type]
    assert src == kh.Provenance(message="why", commit="f" * 40, dirty=True, author=default_recipient_name())
    monkeypatch.setattr(git, "head_commit", lambda root: None)  # no git, or not a repository
    assert commands.provenance(Prof()).commit == "" and commands.provenance(Prof()).dirty is None  # type: ignore[arg-type]

