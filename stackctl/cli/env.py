"""`stackctl env ...`: check the env of a profile against `.env.example`, and render the env file Compose reads."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stackctl.cli.common import Output, OutputOpt, ProfileOpt, console, emit, info, load_profile, table, warn

app = typer.Typer(help="Check and render env files against the .env.example template.", no_args_is_help=True)


@app.command("check")
def check(profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """Report problems with a profile's env; exit 1 if any.

    Missing, empty, placeholder and unknown keys, variables Compose references that nothing
    defines, secrets older than the store, an env file git does not ignore.
    """
    from stackctl.errors import OperationError
    from stackctl.secrets.envfile import check as run_check

    prof = load_profile(profile)
    report = run_check(prof)
    for note in report.notes:
        info(f"note: {note}")
    # Compose reads the env file for this profile and it is not there: whatever the template and
    # the store hold, `up` would run without them. Not "ok".
    absent = prof.env.file in prof.compose.env_files and not prof.env.file.exists()
    if output is not Output.text:
        emit({**report.to_data(), "ok": report.ok and not absent, "env_file_exists": not absent}, output)
    elif report.ok and not absent:
        console().print(f"{report.env_file}: ok (profile {profile})")
    elif not report.ok:
        emit(None, output, text=_table(report))
    if absent:
        how = (f"create it with `stackctl env render -p {prof.name}`" if prof.env.template.exists()
               else f"create it, or drop it from compose.env_files in {prof.display_path}")
        missing = OperationError(f"{report.env_file} does not exist, and profile {prof.name!r} reads it", hint=how)
        if report.ok:
            raise missing
        warn(str(missing))
    if not report.ok:
        raise OperationError(f"env check failed for profile {profile!r}: {len(report.problems)} "
                             f"problem{'s' if len(report.problems) != 1 else ''}")


def _table(report: Any) -> Any:
    return table(("problem", "key", "where", "detail"), ((p.kind, p.key, p.where, p.detail) for p in report.problems),
                 key=("problem", "key"), title=f"env check ({report.profile})")


@app.command("render")
def render(profile: ProfileOpt = "local",
           force: Annotated[bool, typer.Option(
               "--force", help="Replace secret values in the env file that the store does not know.")] = False,
           reset: Annotated[bool, typer.Option(
               "--reset", help="Drop config values edited in the env file; use template/profile values.")] = False,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")] = False,
           output: OutputOpt = Output.text) -> None:
    """Write the env file Compose reads.

    Built from .env.example, the profile's env.values and the encrypted store; written atomically
    with mode 0600. Nothing is written when a secret is missing or the store cannot be opened.
    """
    from stackctl.secrets.envfile import render as run_render

    result = run_render(load_profile(profile), force=force, reset=reset, dry_run=dry_run)
    for message in result.warnings:
        warn(message)
    data = {"file": result.path, "written": result.written, "dry_run": dry_run, "changed": result.changed,
            "sources": result.plan.sources}
    if output is not Output.text:
        emit(data, output)
        return
    verb = "would change" if dry_run else ("wrote" if result.written else "unchanged:")
    changed = f" ({len(result.changed)} changed: {', '.join(result.changed)})" if result.changed else ""
    console().print(f"{verb} {result.path}{changed}", soft_wrap=True)
