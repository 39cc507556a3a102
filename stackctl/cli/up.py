"""`stackctl up / down / status / logs / restart`: the stack on the local Docker engine.

Glue only: options in, `stackctl.up` does the work, results out. Progress goes to stderr (a live
table on a terminal, plain lines otherwise or with `-o json`); stdout carries the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from stackctl.cli.common import (
    Output,
    OutputOpt,
    ProfileOpt,
    console,
    emit,
    err_console,
    info,
    load_profile,
    service_names,
    table,
    warn,
)

if TYPE_CHECKING:
    from stackctl.pipeline import LoadedStack
    from stackctl.profile.types import Profile
    from stackctl.up import UpResult
    from stackctl.up.backend import ServiceStatus

ServicesArg = Annotated[list[str] | None, typer.Argument(metavar="SERVICE", show_default=False,
                                                            help="Only these services (and what they depend on).",
                                                            autocompletion=service_names)]
TimeoutOpt = Annotated[float, typer.Option("--timeout", "-t", min=1, metavar="SECONDS",
                                           help="Give up when the start-up takes longer than this.")]


def up(services: ServicesArg = None, profile: ProfileOpt = "local", timeout: TimeoutOpt = 300,
       build: Annotated[bool, typer.Option("--build", help="Build images before starting.")] = False,
       watch: Annotated[bool, typer.Option("--watch", "-w", help="Then apply edits as the services' "
                                           "develop.watch rules say (sync, rebuild, restart), until Ctrl-C.")]
       = False,
       output: OutputOpt = Output.text) -> None:
    """Start the stack with Docker Compose: each service as soon as what it depends on is healthy or done."""
    import time

    from stackctl import up as backend

    t0 = time.monotonic()
    prof = load_profile(profile)
    for level, message in backend.render_env(prof):
        (warn if level == "warning" else info)(message)
    early = backend.create_early(prof, services or (), build=build)  # runs while Compose resolves the project
    try:
        loaded = _load(prof)
    except BaseException:
        if early is not None:
            early.succeeded()  # let it finish: no Compose process outlives the command
        raise
    rules = _watch_rules(loaded, services or ()) if watch else ()  # a bad rule: nothing started
    try:
        result = backend.up(loaded, services or (), timeout=timeout, build=build, note=info, t0=t0, early=early,
                          view=_view(f"stackctl up ({loaded.stack.name})", output))
    except KeyboardInterrupt:
        info("interrupted: containers started so far keep running (`stackctl down` removes them)")
        raise
    _finish(result, output, verb="up")
    if watch:
        _watch(loaded, rules, timeout=timeout)


def _watch_rules(loaded: LoadedStack, services: list[str] | tuple[str, ...]) -> Any:
    """The develop.watch rules of the services `up` starts; an error when there are none (as Compose)."""
    from stackctl.compose.loader import invocation_for
    from stackctl.dev.rules import watch_plan
    from stackctl.errors import InputError
    from stackctl.up.plan import plan_up

    invocation, _ = invocation_for(loaded.profile)
    plan = plan_up(loaded.stack, services)
    rules, warnings = watch_plan(loaded.stack, files=invocation.files, root=loaded.profile.root,
                                 services=plan.services)
    for w in warnings:
        warn(w)
    if not rules:
        raise InputError("none of the services has develop.watch rules to watch", field="--watch",
                         hint="add a `develop: {watch: [...]}` section to a service (docs/dev.md)")
    return rules


def _watch(loaded: LoadedStack, rules: Any, *, timeout: float) -> None:
    """The local dev loop (`stackctl.dev.local`): one line per action on stderr until Ctrl-C."""
    import threading
    import time

    from stackctl.compose import cli as docker_cli
    from stackctl.compose.engine import abort_execs
    from stackctl.dev.local import LocalLoop, Step, describe_rules
    from stackctl.up import backend

    out = err_console()
    for line in describe_rules(rules):
        info(f"watching {line}")

    def show(step: Step) -> None:
        stamp = time.strftime("%H:%M:%S")
        out.print(f"{stamp}  {step.line()}", style=None if step.ok else "red", markup=False, highlight=False,
                  soft_wrap=True)
        for line in step.detail:
            out.print(f"    {line}", style="dim", markup=False, highlight=False, soft_wrap=True)

    stop = threading.Event()
    loop = LocalLoop(loaded, rules, backend.project_for(loaded), show, timeout=timeout)
    try:
        loop.run(stop, on_ready=lambda: info("watching for changes (Ctrl-C stops watching; the stack keeps running)"))
    except KeyboardInterrupt:
        stop.set()
        abort_execs()
        docker_cli.kill_children()
        info(f"stopped watching; stack {loaded.stack.name} keeps running, as after `docker compose watch` "
             "(`stackctl down` removes it)")


def restart(services: Annotated[list[str], typer.Argument(metavar="SERVICE", show_default=False,
                                                          help="Services to restart.", autocompletion=service_names)],
            profile: ProfileOpt = "local", timeout: TimeoutOpt = 300, output: OutputOpt = Output.text) -> None:
    """Restart services' containers and wait until each is healthy again."""
    from stackctl import up as backend

    loaded = _load(load_profile(profile))
    result = backend.restart(loaded, services, timeout=timeout,
                           view=_view(f"stackctl restart ({loaded.stack.name})", output))
    _finish(result, output, verb="restarted")


def down(profile: ProfileOpt = "local",
         volumes: Annotated[bool, typer.Option("--volumes", "-v", help="Also remove the named volumes (data).")]
         = False) -> None:
    """Stop and remove the stack's containers and networks (like `docker compose down`)."""
    from stackctl import up as backend

    name = backend.down(load_profile(profile), volumes=volumes)
    removed = "containers, networks and volumes" if volumes else "containers and networks"
    console().print(f"stack {name}: {removed} removed", soft_wrap=True)


def status(profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """Show each service's state, and its health as its own healthcheck reports it right now.

    Exits 1 when a service is unhealthy, crash-looping or exited unexpectedly (a one-shot that
    exited 0 is fine), so scripts and CI can rely on it.
    """
    from stackctl import up as backend
    from stackctl.errors import OperationError

    loaded = _load(load_profile(profile))
    rows = backend.status(loaded)
    bad = [r for r in rows if r.problem]
    emit({"stack": loaded.stack.name, "ok": not bad, "services": [r.to_data() for r in rows]}, output,
         text=_status_table(loaded.stack.name, rows) if output is Output.text else None)
    if bad:
        raise OperationError(f"stack {loaded.stack.name}: " + ", ".join(f"{r.service} {r.problem}" for r in bad))


def logs(services: Annotated[list[str] | None, typer.Argument(metavar="SERVICE", show_default=False,
                                                                 help="Only these services.",
                                                                 autocompletion=service_names)] = None,
         profile: ProfileOpt = "local",
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
         tail: Annotated[str | None, typer.Option("--tail", "-n", metavar="N",
                                                     help="Only the last N lines of each container.")] = None
         ) -> None:
    """Print the services' logs (`docker compose logs`)."""
    from stackctl import up as backend

    loaded = _load(load_profile(profile))
    try:
        code = backend.logs(loaded, services or (), follow=follow, tail=tail)
    except KeyboardInterrupt:  # the way to end `logs -f`: not an error worth a message
        raise typer.Exit(130) from None
    if code != 0:
        raise typer.Exit(code)


# ---------------------------------------------------------------------------------------------
def _load(prof: Profile) -> LoadedStack:
    from stackctl.pipeline import load_stack

    loaded = load_stack(prof)
    for w in loaded.stack.warnings:
        # Only what matters for a local run: Compose's own warnings and the profile's; fields the
        # model does not carry still apply here (Compose runs them), so they are not news.
        if w.field == "compose" or w.field.startswith(prof.display_path):
            warn(str(w))
    for n in loaded.notes:  # the Compose environment against the profile (COMPOSE_FILE, override file)
        info(f"note: {n}")
    return loaded


def _view(title: str, output: Output) -> Any:
    from stackctl.up.view import make_view

    return lambda names: make_view(err_console(), names, title, plain=output is not Output.text)


def _finish(result: UpResult, output: Output, *, verb: str) -> None:
    from stackctl.errors import OperationError

    run = result.startup
    if not result.ok:
        err_console().print(_report(result), soft_wrap=True, highlight=False)
    if output is not Output.text:
        emit(result.to_data(), output)
    elif result.ok:
        extra = f"; recreated: {', '.join(result.recreated)}" if result.recreated else ""
        if result.restarted:
            extra += f"; restarted (depends_on restart: true): {', '.join(result.restarted)}"
        count = len(result.plan.services)
        console().print(f"stack {result.stack} {verb} in {run.elapsed:.1f} s "
                        f"({count} service{'s' if count != 1 else ''}{extra})", soft_wrap=True)
    if not result.ok:
        raise OperationError(_one_line(result))


def _one_line(result: UpResult) -> str:
    fails = result.startup.failures
    if not fails:
        return "start-up stopped"
    f = fails[0]
    what = {"exited": f"{f.service} {f.reason}", "unhealthy": f"{f.service} is unhealthy",
            "timeout": f"timed out after {result.startup.timeout:g} s ({f.service} still starting)",
            "restarting": f"{f.service} crashed", "start": f"{f.service} could not start",
            }.get(f.kind, f"{f.service} failed")
    others = f" (and {', '.join(x.service for x in fails[1:])})" if len(fails) > 1 else ""
    blocked = list(dict.fromkeys(b for x in fails for b in x.blocked))
    tail = f"; not started: {', '.join(blocked)}" if blocked else ""
    kept = [k for k in dict.fromkeys(k for x in fails for k in x.kept) if k not in blocked]
    tail += f"; left running as they were: {', '.join(kept)}" if kept else ""
    return f"start-up stopped: {what}{others}{tail}"


def _report(result: UpResult) -> Any:
    """The failure report: which service, why, its probe's output, its last log lines, who waited."""
    from rich.text import Text

    out = Text()
    for f in result.startup.failures:
        out.append(f"\n{f.service} failed: ", style="bold red")
        out.append(f"{f.reason}\n")
        if f.container:
            out.append(f"  container:      {f.container}\n")
        if f.waiters:
            out.append("  waiting on it:  " + ", ".join(f"{s} ({c})" for s, c in f.waiters) + "\n")
        if f.blocked:
            out.append(f"  not started:    {', '.join(f.blocked)}\n")
        if f.kept:
            out.append(f"  left running:   {', '.join(f.kept)} (as before this run; not checked)\n")
        if f.probe_command:
            out.append(f"  healthcheck:    {f.probe_command}\n")
        if f.probe is not None:
            out.append(f"  last probe:     {f.probe.describe()}\n")
            for line in (f.probe.output.splitlines() or ["(no output)"])[-10:]:
                out.append(f"    {line}\n", style="dim")
        if f.docker_output and (f.probe is None or f.docker_output.strip() != f.probe.output.strip()):
            out.append("  Docker's last healthcheck output:\n")
            for line in f.docker_output.splitlines()[-5:]:
                out.append(f"    {line}\n", style="dim")
        if f.container:
            out.append(f"  last {len(f.logs)} log lines of {f.container}:\n" if f.logs
                       else f"  {f.container} logged nothing\n")
            for line in f.logs:
                out.append(f"    | {line}\n", style="dim")
    return out


def _status_table(name: str, rows: list[ServiceStatus]) -> Any:
    from rich.text import Text

    styles = {"healthy": "green", "unhealthy": "red", "not running": "dim"}
    cells = []
    for r in rows:
        state = r.state if r.exit_code is None else f"{r.state} ({r.exit_code})"
        health = Text(r.health, style=styles.get(r.health, ""))
        if r.probe is not None and not r.probe.ok:
            first = (r.probe.output.splitlines() or [""])[0][:60]
            health.append(f" ({r.probe.describe()}{': ' + first if first else ''})", style="dim")
        cells.append((r.service, r.container or "-", state, health, r.docker_health or "-", ", ".join(r.ports)))
    return table(("service", "container", "state", "health", "docker", "ports"), cells,
                 key=("service", "state"), title=f"stack {name}", boxed=False)
