"""`stackctl init`: scaffold profiles and an annotated .env.example from an existing Compose project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stackctl.cli.common import Output, OutputOpt, console, emit, info, project_root

if TYPE_CHECKING:
    from stackctl.scaffold import EnvImport


def init(
    compose: Annotated[list[Path] | None, typer.Option(
        "--compose", "-f", help="Compose file(s) to start from, in order, as `docker compose -f` (default: "
                                "COMPOSE_FILE, else compose.yaml or docker-compose.yml and its override file)."
    )] = None,
    env_file: Annotated[list[Path] | None, typer.Option(
        "--env-file", help="Env file(s) to import, as `docker compose --env-file` (default: the project's .env).")
    ] = None,
    import_env: Annotated[bool | None, typer.Option(
        "--import-env/--no-import-env",
        help="Import the project's .env: config values become .env.example defaults, secrets go into the local "
             "encrypted store (default: on). Alone on an initialised project: merge .env into .env.example.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing profiles and .env.example.")] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Scaffold profiles/local.yaml, profiles/production.yaml and an annotated .env.example.

    The project is read as `docker compose` reads it: -f, COMPOSE_FILE, the override file (local
    profile only), COMPOSE_PROFILES, and the values of .env (never written; a copy is kept as
    .env.before-stackctl because `env render -p local` rewrites it later).
    """
    from stackctl.scaffold import apply, import_secrets, plan

    root = project_root()
    if import_env and not force and (root / "profiles" / "local.yaml").is_file():
        _merge(root, env_file or [], output)
        return
    the_plan = plan(root, compose or [], env_files=env_file or [], import_env=import_env is not False)
    written = apply(root, the_plan, force=force)
    rows: list[tuple[str, str]] = []
    notes: list[str] = []
    if the_plan.imported is not None:
        rows, notes = import_secrets(root, the_plan.imported, the_plan.imported_secrets)
    secrets = [v.name for v in the_plan.variables if the_plan.is_secret(v.name)]
    choice = the_plan.choice
    data: dict[str, Any] = {
        "written": [str(rel) for rel in written], "variables": [v.name for v in the_plan.variables],
        "likely_secrets": secrets,
        "compose": {"files": [str(rel) for rel in _rel(root, choice.files)] if choice else [],
                    "production_files": [str(rel) for rel in _rel(root, choice.production_files)] if choice else [],
                    "profiles": list(choice.profiles) if choice else [],
                    "from": choice.origin if choice else None},
        "production_replicas": the_plan.scaled, "local_env_file": the_plan.local_env,
        "imported": _imported_data(the_plan.imported, the_plan.imported_config, rows),
    }
    if output is not Output.text:
        emit(data, output)
        return
    out = console()
    for rel in written:
        out.print(f"wrote {rel}")
    if choice is not None:
        out.print(f"Compose files ({choice.origin}): {', '.join(data['compose']['files'])}"
                  + (f"; production leaves out {_rel(root, (choice.override,))[0]}" if choice.override else ""))
        if choice.profiles:
            out.print(f"Compose profiles ({choice.profiles_origin}): {', '.join(choice.profiles)}")
    out.print(f"{len(the_plan.variables)} variables found in the Compose files"
              + (f"; likely secrets: {', '.join(secrets)}" if secrets else ""))
    out.print(f"production scales {the_plan.scaled} to 2 replicas" if the_plan.scaled else
              "production scales no service (no stateless one found)")
    _print_import(the_plan.imported, the_plan.imported_config, rows, notes, backup=the_plan.backup)
    if the_plan.local_env != ".env":
        out.print(f".env is committed to git: the local profile renders its env into {the_plan.local_env} "
                  "(git-ignored) and .env stays as shipped")
    out.print("next: review .env.example, then `stackctl secrets generate` and `stackctl env render`")


def _merge(root: Path, env_files: list[Path], output: Output) -> None:
    """`init --import-env` on an initialised project: only the template and the local store change."""
    from stackctl.fsutil import atomic_write
    from stackctl.scaffold import import_secrets, plan_import

    p = plan_import(root, env_files=env_files)
    if not p.template.is_file() or p.text != p.template.read_text(encoding="utf-8"):
        atomic_write(p.template, p.text)
    rows, notes = import_secrets(root, p.imported, p.secrets)
    config = [n for n in (*p.added, *p.filled) if n not in p.secrets]
    data = {"template": {"added": p.added, "filled": p.filled, "differs": p.differs},
            "imported": _imported_data(p.imported, config, rows)}
    if output is not Output.text:
        emit(data, output)
        return
    _print_import(p.imported, config, rows, notes, backup=None)
    if p.differs:
        info(f"kept the template's own values for {', '.join(p.differs)} (the imported ones differ; every "
             "profile but local uses the template's)")


def _rel(root: Path, paths: tuple[Path, ...]) -> list[str]:
    from stackctl.profile.types import display

    return [display(p, root) for p in paths]


def _imported_data(imported: EnvImport | None, config: list[str], rows: list[tuple[str, str]]) -> Any:
    if imported is None:
        return None
    return {"from": imported.files, "template": config,
            "store": [n for n, what in rows if what.startswith(("imported", "kept"))],
            "skipped": [n for n, what in rows if what.startswith("skipped")],
            "settings": sorted(imported.settings)}


def _print_import(imported: EnvImport | None, config: list[str], rows: list[tuple[str, str]], notes: list[str],
                  *, backup: str | None) -> None:
    """Which imported key went where: names only, never a value."""
    if imported is None:
        return
    out = console()
    origin = ", ".join(imported.files)
    for note in notes:
        info(f"note: {note}")
    if config:
        out.print(f"imported from {origin} into .env.example (the default of every profile): {', '.join(config)}")
    stored = [f"{n} ({what})" if what != "imported" else n for n, what in rows if not what.startswith("skipped")]
    if stored:
        out.print(f"imported from {origin} into the local encrypted store: {', '.join(stored)}; other profiles "
                  "need their own (`stackctl secrets generate -p production`)")
    for name, what in rows:
        if what.startswith("skipped"):
            out.print(f"not imported: {name} ({what.removeprefix('skipped: ')})")
    if imported.settings:
        out.print(f"read from {origin} as Compose settings (into the profiles): {', '.join(sorted(imported.settings))}")
    if backup is not None:
        out.print(f"{origin} is unchanged; a copy is in {backup} (`stackctl env render -p local` rewrites .env, "
                  "keeping your values)")
