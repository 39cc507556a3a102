"""How start-up progress is shown: a rich live table on a terminal, plain lines otherwise.

Both write to stderr, so stdout carries only the result (a summary, or JSON with `-o json`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from stackctl.up.creating import Progress
    from stackctl.up.startup import Startup, Unit

_STYLE = {"recreated": "green", "created": "green", "recreating": "yellow", "waiting": "dim", "starting": "yellow",
          "probing": "yellow", "running": "green", "healthy": "green", "done": "green", "failed": "bold red",
          "stopped": "red"}


def _label(unit: Unit) -> str:
    if unit.state == "running" and unit.goal == "completed":
        return "running"
    return unit.state


class LineView:
    """One line per state change: `  1.2s  db        healthy   probe passed (4 probes)`."""

    def __init__(self, console: Console, names: list[str]) -> None:
        self.console = console
        self.width = max((len(n) for n in names), default=7)
        self.shown: dict[str, tuple[str, str]] = {}

    def changed(self, run: Startup, unit: Unit) -> None:
        if unit.state == "probing" and unit.detail.startswith("probe "):
            return  # every failed probe would be one line; the live view shows them instead
        self.console.print(f"{run._rel():6.1f}s  {unit.name:<{self.width}}  {_label(unit):<8}  {unit.detail}",
                           markup=False, highlight=False, soft_wrap=True)

    def tick(self, run: Startup) -> None:
        pass

    def creating(self, progress: Progress, t0: float) -> None:
        """While Compose creates and recreates containers: a line per service and step."""
        for service, (state, detail, since) in sorted(progress.items(), key=lambda kv: kv[1][2]):
            if self.shown.get(service) == (state, detail):
                continue
            self.shown[service] = (state, detail)
            self.width = max(self.width, len(service))
            self.console.print(f"{since - t0:6.1f}s  {service:<{self.width}}  {state:<8}  {detail}",
                               markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        pass

    def close(self, run: Startup) -> None:
        pass


class LiveView:
    """One row per service, redrawn in place (at most ten times a second)."""

    def __init__(self, console: Console, title: str) -> None:
        from rich.live import Live

        self.console = console
        self.title = title
        self.live = Live(console=console, auto_refresh=False, transient=False, redirect_stdout=False,
                         redirect_stderr=False)
        self.last = 0.0
        self.started = False

    def _table(self, run: Startup) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, title_justify="left", box=None, pad_edge=False, show_edge=False)
        for col in ("service", "state", "time", "detail"):
            table.add_column(col, header_style="bold", justify="right" if col == "time" else "left")
        now = run._rel()
        for unit in run.units.values():
            took = unit.settled_at if unit.settled_at is not None else now
            table.add_row(unit.name, Text(_label(unit), style=_STYLE.get(unit.state, "")), f"{took:.1f}s",
                          Text(unit.detail, overflow="ellipsis", no_wrap=True))
        return table

    def creating(self, progress: Progress, t0: float) -> None:
        """While Compose creates and recreates containers: its own row with a running clock, and a
        row per service it is working on (see `stackctl.up.creating`)."""
        import time

        from rich.table import Table
        from rich.text import Text

        if not self.started:
            self.live.start()
            self.started = True
        now = time.monotonic()
        table = Table(title=self.title, title_justify="left", box=None, pad_edge=False, show_edge=False)
        for col in ("service", "state", "time", "detail"):
            table.add_column(col, header_style="bold", justify="right" if col == "time" else "left")
        table.add_row("compose", Text("creating", style="yellow"), f"{now - t0:.1f}s",
                      Text("docker compose up --no-start: containers whose configuration changed are recreated",
                           overflow="ellipsis", no_wrap=True))
        for service, (state, detail, since) in sorted(progress.items(), key=lambda kv: kv[1][2]):
            took = now - since if state == "recreating" else since - t0
            table.add_row(service, Text(state, style=_STYLE.get(state, "yellow")), f"{took:.1f}s",
                          Text(detail, overflow="ellipsis", no_wrap=True))
        self.live.update(table, refresh=True)
        self.last = now

    def changed(self, run: Startup, unit: Unit) -> None:
        self._draw(run, force=True)

    def tick(self, run: Startup) -> None:
        self._draw(run, force=False)

    def _draw(self, run: Startup, *, force: bool) -> None:
        import time

        if not self.started:
            self.live.start()
            self.started = True
        now = time.monotonic()
        if force or now - self.last >= 0.1:
            self.live.update(self._table(run), refresh=True)
            self.last = now

    def stop(self) -> None:
        """The run ended before the start-up did (an error after the create): leave the terminal clean."""
        if self.started:
            self.live.stop()
            self.started = False

    def close(self, run: Startup) -> None:
        if self.started:
            self.live.update(self._table(run), refresh=True)
            self.live.stop()
            self.started = False


def make_view(console: Console, names: list[str], title: str, *, plain: bool) -> LineView | LiveView:
    if plain or not console.is_terminal:
        return LineView(console, names)
    return LiveView(console, title)
