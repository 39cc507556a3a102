"""`stackctl secrets ...`: keys, recipients, generation, rotation, history — never a value without --reveal.

Glue only: each command parses options, calls `stackctl.secrets.ops`, and reports. Nothing heavy is
imported at module level (cryptography and yaml load inside the commands).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stackctl.cli.common import Output, OutputOpt, ProfileOpt, console, emit, info, load_profile, table, warn

if TYPE_CHECKING:
    from stackctl.secrets.ops import Outcome

app = typer.Typer(help="Generate, rotate and inspect encrypted secrets.",
                  no_args_is_help=True)
recipients_app = typer.Typer(help="Manage who can open a profile's store.",
                             no_args_is_help=True)
app.add_typer(recipients_app, name="recipients")

NamesArg = Annotated[list[str] | None, typer.Argument(metavar="[NAME]...", help="Secret names (default: all).")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Secret name (a key of .env.example).")]


def _clean(data: Any) -> Any:
    """The one sanitizer of everything these commands print: store metadata (recipient names, `type`,
    `origin`, `created`) may come from a file nobody verified, so a control character (a terminal escape
    sequence) is shown escaped (`\\x1b`), never sent to the terminal."""
    if isinstance(data, str):
        return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), data)
    if isinstance(data, dict):
        return {_clean(k): _clean(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_clean(v) for v in data]
    return data


# C0 and C1 controls, DEL, and the invisible format / separator characters that can reorder a line
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _emit(data: Any, output: Output, *, text: Any = None) -> None:
    emit(_clean(data), output, text=_clean(text) if isinstance(text, str) else text)


def _report(outcome: Outcome, output: Output, *, title: str) -> None:
    for note in outcome.notes:
        info(_clean(note))
    rows = [{"name": c.name, "action": c.action, "version": c.version, "type": c.type, "note": c.note}
            for c in outcome.changes]
    if output is Output.text and not rows:
        return
    _emit(rows, output, text=_table(title, ("name", "action", "version", "type", "note"), rows)
         if output is Output.text else None)


def _table(title: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Any:
    """The first column names the row (a secret, a version, a recipient): it never wraps."""
    from rich.text import Text

    # Text, not str: a `[...]` in a value is not rich markup either
    return table(columns, ([Text("" if row.get(c) is None else _clean(str(row.get(c)))) for c in columns]
                           for row in rows), key=columns[:1], title=_clean(title) or None)


@app.command("keygen")
def keygen(name: Annotated[str, typer.Option("--name", help="Key file name under the key directory.")] = "default",
           ) -> None:
    """Create your private key and print its public key.

    The key goes to ~/.config/stackctl/keys/NAME.key (mode 0600); an existing one is kept.
    """
    from stackctl.secrets import keys

    ident, created = keys.keygen(name)
    info(f"{'created' if created else 'already exists:'} {ident.source}"
         + (" (mode 0600; back it up, never commit it)" if created else ""))
    console().print(ident.public, soft_wrap=True)
    if created:
        info("share the public key; a recipient adds you with "
             f"`stackctl secrets recipients add {name} <public key> -p PROFILE`")


@app.command("init")
def init(profile: ProfileOpt = "local",
         name: Annotated[str | None, typer.Option("--name", help="Your recipient name (default: user@host).")
                         ] = None,
         output: OutputOpt = Output.text) -> None:
    """Create the profile's encrypted store.

    You become its first recipient; a key is made if you have none.
    """
    from stackctl.secrets import ops

    _report(ops.init(load_profile(profile), recipient=name), output, title="")


@app.command("generate")
def generate(names: NamesArg = None, profile: ProfileOpt = "local",
             force: Annotated[bool, typer.Option("--force", help="Also replace existing values (new versions).")
                              ] = False,
             output: OutputOpt = Output.text) -> None:
    """Fill missing secrets from their generators.

    Generators come from the `@secret SPEC` annotations of .env.example; existing values are kept
    unless --force.
    """
    from stackctl.secrets import ops

    outcome = ops.generate(load_profile(profile), names or [], force=force)
    _report(outcome, output, title=f"secrets ({profile})")
    missing = ops.names_of(outcome.changes, "missing")
    if missing:
        warn(f"no generator for {', '.join(missing)}: set them with `stackctl secrets set NAME -p {profile}`")


@app.command("rotate")
def rotate(names: Annotated[list[str] | None, typer.Argument(
               metavar="[NAME]...", help="Secrets to rotate (name them, or pass --all).")] = None,
           profile: ProfileOpt = "local",
           all_: Annotated[bool, typer.Option("--all", help="Rotate every secret that has a generator "
                                                            "(the others are listed as skipped).")] = False,
           in_place: Annotated[bool, typer.Option(
               "--in-place", help="For a database password: change it inside the running database first, "
                                  "then store it and recreate what uses it.")] = False,
           timeout: Annotated[float, typer.Option("--timeout", "-t", min=1, metavar="SECONDS",
                                                  help="--in-place: how long the services may take to be "
                                                       "healthy again.")] = 300,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="--in-place on Kubernetes: do not ask for "
                                                                  "confirmation (protected profiles ask).")] = False,
           output: OutputOpt = Output.text) -> None:
    """Replace secrets in the store with new generated values.

    Only the store changes: the env file and the running services keep the old values until
    `stackctl up` (it renders the env file first: `stackctl env render`) and a restart of what uses
    them (named after the rotation), or `stackctl promote` for a Kubernetes profile. A secret
    without a generator is refused (set it with `secrets set`). Earlier versions stay in the
    history (`secrets history`, `secrets rollback`). A value a data volume was initialised with (a
    database password) is refused: rotate it with --in-place, which changes it inside the running
    database first, stores it, then recreates what uses it (locally: `up`, health-gated; a profile
    with a kubernetes: section: a Job in the cluster, then `promote`). See docs/secrets.md.
    """
    from stackctl.secrets import ops

    the_profile = load_profile(profile)
    if in_place:
        if all_ or len(names or []) != 1:
            from stackctl.errors import InputError

            raise InputError("--in-place rotates one secret at a time: name it (not --all)", field="NAME")
        if the_profile.kubernetes is not None:
            _rotate_in_place_kubernetes(the_profile, (names or [])[0], timeout=timeout, yes=yes, output=output)
        else:
            _rotate_in_place(the_profile, (names or [])[0], timeout=timeout, output=output)
        return
    outcome = ops.rotate(the_profile, names or [], all_=all_)
    _report(outcome, output, title=f"rotated ({profile})")
    rotated = ops.names_of(outcome.changes, "rotated")
    if rotated and output is Output.text:
        # promote reads the store itself; `up` renders the env file and recreates exactly what uses them
        step = "promote" if the_profile.kubernetes is not None else "up"
        info(f"next: `stackctl {step} -p {profile}` (what uses them: {_services_hint(the_profile, rotated)})")


def _rotate_in_place(the_profile: Any, name: str, *, timeout: float, output: Output) -> None:
    """Locally: inside the running container, then the store, then `up` of what uses it."""
    from stackctl.cli.up import _finish, _view
    from stackctl.errors import OperationError
    from stackctl.secrets import inplace

    result = inplace.rotate_in_place(the_profile, name, timeout=timeout, note=info,
                                     view=_view(f"stackctl secrets rotate --in-place ({the_profile.name})", output))
    for note in result.notes:
        warn(note)
    if result.up is not None and not result.up.ok:
        _finish(result.up, output, verb="up")
        raise OperationError("the dependents did not come back healthy")  # _finish raises first
    rows = [{"name": result.name, "action": "rotated in place", "version": result.version, "type": "",
             "note": f"was v{result.was}; changed in {', '.join(f'{s} ({how})' for s, how in result.switched.items())}"
                     + (f"; recreated {', '.join(result.rolled)}" if result.rolled else "")}]
    _emit(rows, output, text=_table(f"rotated ({the_profile.name})", ("name", "action", "version", "note"), rows)
         if output is Output.text else None)


def _rotate_in_place_kubernetes(the_profile: Any, name: str, *, timeout: float, yes: bool, output: Output) -> None:
    """On the profile's cluster: a Job changes it inside the database, the store keeps it, promote rolls."""
    from stackctl.cli.promote import _terminal
    from stackctl.cli.promote import promote as promote_command
    from stackctl.kubernetes.deploy import inplace

    result = inplace.rotate_in_place(the_profile, name, requested=None, yes=yes, term=_terminal(output),
                                     timeout=timeout)
    for note in result.notes:
        warn(note)
    changed = ", ".join(f"{s} ({how})" for s, how in result.switched.items())
    info(f"{name} v{result.version} (was v{result.was}) is valid inside {changed} and stored; promoting what "
         "uses it")
    # the database accepts only the new value now (PostgreSQL, MariaDB): roll the dependents at once
    promote_command(the_profile.name, yes=True, timeout=timeout, output=output)


def _services_hint(profile: Any, names: list[str]) -> str:
    from stackctl.errors import StackctlError
    from stackctl.secrets import services_using

    try:
        used = services_using(profile, names)
    except StackctlError:
        return "unknown"
    services = sorted({s for found in used.values() for s in found})
    return ", ".join(services) or "no service references them"


@app.command("set")
def set_(name: NameArg, profile: ProfileOpt = "local",
        from_file: Annotated[Path | None, typer.Option("--from-file", help="Read the value from this file.")] = None,
        force: Annotated[bool, typer.Option(
            "--force", help="Replace a value a database was initialised with (you changed it inside it yourself).")
        ] = False,
        output: OutputOpt = Output.text) -> None:
    """Store a value you provide (stdin or --from-file).

    Never from the command line, where shell history would keep it. --from-file is byte-for-byte;
    on stdin one trailing newline (from `echo`) is dropped.
    """
    from stackctl.errors import InputError
    from stackctl.secrets import ops

    # bytes, decoded: text mode would turn \r\n and \r into \n, and the value must arrive byte-for-byte
    try:
        if from_file is not None:
            value = from_file.read_bytes().decode("utf-8")
        elif sys.stdin.isatty():
            import getpass

            value = getpass.getpass(f"value for {name} (not echoed): ")
        else:
            stdin = getattr(sys.stdin, "buffer", None)
            value = stdin.read().decode("utf-8") if stdin is not None else sys.stdin.read()
            if value.endswith("\n") and value.count("\n") == 1:
                value = value[:-1]  # `echo value | stackctl secrets set NAME` adds one newline
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the value: {type(exc).__name__}",
                         file=str(from_file) if from_file is not None else "stdin") from None
    _report(ops.set_value(load_profile(profile), name, value, force=force), output, title=f"secrets ({profile})")


@app.command("import")
def import_(file: Annotated[Path | None, typer.Argument(help="Env file to read (default: the profile's env file).")
                            ] = None,
            profile: ProfileOpt = "local",
            overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace values already in the store.")
                                 ] = False,
            output: OutputOpt = Output.text) -> None:
    """Move secrets from a plaintext env file into the store.

    Reads the keys .env.example marks @secret; empty and placeholder values are skipped.
    """
    from stackctl.secrets import ops

    the_profile = load_profile(profile)
    path = file.resolve() if file is not None else None
    _report(ops.import_env(the_profile, path, overwrite=overwrite), output, title=f"imported ({profile})")


@app.command("list")
def list_(profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """List secrets: names, types, versions, ages (never values)."""
    from stackctl.secrets import ops

    rows, verified = ops.listing(load_profile(profile))
    data = [{k: r[k] for k in ("name", "type", "version", "versions", "age", "updated", "origin", "status")}
            for r in rows]
    _emit(data, output, text=_table(f"secrets ({profile})", ("name", "type", "version", "versions", "age", "origin",
                                                             "status"), data) if output is Output.text else None)
    if not verified and rows and any(r["version"] for r in rows):
        info("note: integrity not verified (no private key for this store)")


@app.command("show")
def show(name: NameArg, profile: ProfileOpt = "local",
         reveal: Annotated[bool, typer.Option("--reveal", help="Print the plaintext value on stdout.")] = False,
         version: Annotated[int | None, typer.Option("--version", "-V", help="A kept version (default: current).")
                            ] = None,
         output: OutputOpt = Output.text) -> None:
    """Show one secret's metadata (with --reveal: its value).

    --reveal is the only way any command prints a value.
    """
    from stackctl.secrets import ops

    the_profile = load_profile(profile)
    if reveal:
        value = ops.reveal(the_profile, name, version)
        if output is Output.text:
            sys.stdout.write(value if value.endswith("\n") else value + "\n")
        else:
            emit({"name": name, "version": version, "value": value}, output)
        return
    row = ops.describe(the_profile, name)
    _emit(row, output, text=_table(name, ("name", "type", "version", "versions", "updated", "origin", "status"),
                                  [row]) if output is Output.text else None)


@app.command("history")
def history(name: NameArg, profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """Show the kept versions of one secret.

    Newest first, with when and how each was made and its digest.
    """
    from stackctl.secrets import ops

    rows = ops.history(load_profile(profile), name)
    shown = [{**r, "current": "*" if r["current"] else ""} for r in rows]
    _emit(rows, output, text=_table(f"{name} ({profile})", ("version", "current", "created", "age", "origin", "digest"),
                                   shown) if output is Output.text else None)


@app.command("rollback")
def rollback(name: NameArg, profile: ProfileOpt = "local",
             to: Annotated[int | None, typer.Option("--to", help="Version to restore (default: the previous).")
                           ] = None,
             force: Annotated[bool, typer.Option(
                 "--force", help="Roll back a value a database was initialised with (changed back inside it "
                                 "yourself).")] = False,
             output: OutputOpt = Output.text) -> None:
    """Make an earlier value current again.

    Recorded as a new version, so a rollback can be rolled back too.
    """
    from stackctl.secrets import ops

    _report(ops.rollback(load_profile(profile), name, to, force=force), output, title=f"secrets ({profile})")


@app.command("delete")
def delete(name: NameArg, profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """Remove a secret and its history from the store."""
    from stackctl.secrets import ops

    _report(ops.delete(load_profile(profile), name), output, title=f"secrets ({profile})")


@app.command("rekey")
def rekey(profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """Give the store a new data key.

    The new key is wrapped for every recipient and written first; then every value is re-sealed
    and the old key dropped. Nobody is locked out, even by a crash in between.
    """
    from stackctl.secrets import ops

    _report(ops.rekey(load_profile(profile)), output, title="")


@app.command("verify")
def verify(profile: ProfileOpt = "local",
           reseal: Annotated[bool, typer.Option(
               "--reseal", help="After resolving a merge conflict by hand: check every value by its own "
                                "tag, then write a fresh file MAC.")] = False,
           output: OutputOpt = Output.text) -> None:
    """Check the store's integrity with your key.

    Verifies the file MAC and decrypts every kept version; exit 1 if anything is off.
    """
    from stackctl.secrets import ops

    result = ops.verify(load_profile(profile), reseal=reseal)
    secrets: dict[str, object] = result["secrets"]  # type: ignore[assignment]
    text = (f"{result['store']}: ok — {len(secrets)} secrets, {result['versions_checked']} versions "
            f"checked, opened as {result['recipient']!r}, data key {result['key']}"
            + (", MAC rewritten" if reseal else ""))
    _emit(result, output, text=text)


@recipients_app.command("list")
def recipients_list(profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """List the recipients of the store and their public keys."""
    from stackctl.secrets import ops

    rows, verified = ops.recipients(load_profile(profile))
    _emit(rows, output, text=_table(f"recipients ({profile})", ("name", "public_key", "added", "you"), rows)
         if output is Output.text else None)
    if not verified:
        info("note: integrity not verified (no private key for this store)")


@recipients_app.command("add")
def recipients_add(name: Annotated[str, typer.Argument(help="A name for the recipient (person or CI system).")],
                   public_key: Annotated[str, typer.Argument(metavar="PUBLIC_KEY",
                                                             help="Their `stackctl secrets keygen` output.")],
                   profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """Let another key open the store.

    Wraps the data key for it; no value is re-encrypted.
    """
    from stackctl.secrets import ops

    _report(ops.add_recipient(load_profile(profile), name, public_key), output, title="")


@recipients_app.command("remove")
def recipients_remove(name: Annotated[str, typer.Argument(help="Recipient to remove.")],
                      profile: ProfileOpt = "local",
                      force: Annotated[bool, typer.Option("--force", help="Allow removing your own key.")] = False,
                      output: OutputOpt = Output.text) -> None:
    """Remove a recipient.

    Renews the data key at once (every kept version re-sealed for the remaining recipients); follow
    with `rotate --all`, since they may know the values they could read.
    """
    from stackctl.secrets import ops

    _report(ops.remove_recipient(load_profile(profile), name, force=force), output, title="")
