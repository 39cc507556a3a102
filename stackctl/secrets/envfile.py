"""`env render` and `env check`: the env file Compose reads, built from four sources.

For each key of `.env.example`, in template order (highest precedence last wins):

    config keys   template value  <  a value edited in the env file  <  profile `env.values`
    secret keys   the store only (current version)
    @public keys  derived from their key-pair secret in the store

"Edited" means: not what the last render wrote there. Render's last line fingerprints the config
lines it wrote, so a value it wrote is refreshed when the template or profile changes, while a value
someone typed survives re-renders (`--reset` drops those edits). Template and env-file values are
written in their source form, so `${OTHER}` references keep working; profile and store values are
literal (a `$` stays a `$`).
Keys that are only in the env file are kept in a trailing section (check reports them).

A secret in the env file whose value is neither the store's current value nor one of its kept versions
was typed in by hand: render refuses (`--force` replaces it; `stackctl secrets import` keeps it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stackctl.errors import EnvError, InputError, SecretsError, StackctlError
from stackctl.profile.types import Profile, display

if TYPE_CHECKING:
    from stackctl.compose import dotenv
    from stackctl.secrets.template import Template
# stackctl.secrets.ops (the store, keys, generators) and stackctl.git are imported where they are used:
# `render`/`config` of a project without .env.example need neither.


@dataclass
class Plan:
    """What `env render` would write, and what it noticed on the way. Holds plaintext: never print it."""

    text: str = ""
    sources: dict[str, str] = field(default_factory=dict)  # key -> template | env-file | profile | store | derived
    missing: list[str] = field(default_factory=list)  # required keys without any value source
    hand_edited: list[str] = field(default_factory=list)  # secrets in the env file not known to the store
    stale: list[str] = field(default_factory=list)  # secrets in the env file at an older version
    replaced: list[str] = field(default_factory=list)  # env-file config values the profile overrides
    extras: list[str] = field(default_factory=list)  # env-file keys not in the template
    store_only: list[str] = field(default_factory=list)  # store secrets not in the template
    locked: bool = False  # secret values unknown (no key): placeholders used


@dataclass(frozen=True)
class Sources:
    """Everything `env check` and `env render` compare: the template, the env file, the store."""

    template: Template
    env_entries: Mapping[str, dotenv.EnvEntry]  # key -> last EnvEntry of the current env file
    env_values: Mapping[str, str]  # the current env file as Compose reads it (no environment)
    env_lines: Mapping[str, int]
    store_values: Mapping[str, str] | None  # None: locked (no key) or no store
    store_names: frozenset[str]
    store_history: Mapping[str, frozenset[str]]  # every kept value per secret (to tell stale from edited)
    store_exists: bool = False
    rendered: Mapping[str, str] = field(default_factory=dict)  # key -> fingerprint of the line render wrote


def _read_sources(profile: Profile, *, need_secrets: bool) -> Sources:
    from stackctl.compose import dotenv
    from stackctl.secrets import ops

    template = ops.template_of(profile)
    env_path = profile.env.file
    shown = display(env_path, profile.root)
    entries: dict[str, dotenv.EnvEntry] = {}
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    rendered: dict[str, str] = {}
    if env_path.exists():
        text = dotenv.read_text(env_path, shown=shown)
        for e in dotenv.parse_entries(text, filename=shown):
            entries[e.key] = e
            lines[e.key] = e.line
        values = dotenv.parse(text, filename=shown)
        for line in text.splitlines():
            if not line.startswith(_MARK):
                continue
            for item in line[len(_MARK):].split():
                name, sep, fingerprint = item.partition(":")
                if sep:
                    rendered[name] = fingerprint
    store_values: dict[str, str] | None = None
    history: dict[str, frozenset[str]] = {}
    names: frozenset[str] = frozenset()
    if profile.secrets.store.exists():
        store = ops.open_store(profile, need_key=need_secrets)
        names = frozenset(store.names)
        if store.unlocked:
            store_values = store.values()
            history = {n: frozenset(store.value(n, v.v) for v in store.entry(n).versions) for n in store.names}
    elif need_secrets and template.secrets:
        store_values = {}
    return Sources(template, entries, values, lines, store_values, names, history,
                   store_exists=profile.secrets.store.exists(), rendered=rendered)


# The last line of a rendered file fingerprints the config lines render wrote, so the next render can
# tell a value someone edited (kept) from one it wrote itself (refreshed from template / profile).
_MARK = "# stackctl-rendered: "


def _fingerprint(entry: dotenv.EnvEntry) -> str:
    import hashlib

    from stackctl.compose import dotenv

    return hashlib.sha256(dotenv.source_line(entry).encode("utf-8")).hexdigest()[:10]


def _line_fingerprint(line: str) -> str:
    from stackctl.compose.dotenv import parse_entries

    return _fingerprint(parse_entries(line + "\n")[0])


def _edited(src: Sources, name: str) -> bool:
    """True if the env file holds a value for `name` that render did not write (a local edit)."""
    entry = src.env_entries.get(name)
    return entry is not None and src.rendered.get(name) != _fingerprint(entry)


def plan(profile: Profile, src: Sources, *, reset: bool = False, force: bool = False, masked: bool = False) -> Plan:
    """`masked`: every secret written as its marker (`<secret:NAME>`, `stackctl.secrets.mask`), the
    derived public keys as `<public:NAME>`: the env as the commands that never show a value read it."""
    from stackctl.compose import dotenv
    from stackctl.compose.dotenv import format_template, format_value
    from stackctl.secrets import mask, ops
    from stackctl.secrets.generators import public_pem

    p = Plan(locked=src.store_exists and src.store_values is None and not masked)
    store: Mapping[str, str]
    if masked:
        store = {n: mask.marker(n) for n in src.store_names}
    else:
        store = src.store_values if src.store_values is not None else {n: "(locked)" for n in src.store_names}
    known = src.store_values is not None and not masked  # real values: stale / hand-edited can be told
    out: list[str] = [
        f"# Written by `stackctl env render --profile {profile.name}` from {src.template.display},",
        f"# {profile.display_path} (env.values) and the store {ops.store_display(profile)}.",
        "# It holds plaintext secrets: keep it out of git. Secrets here are replaced on every render",
        "# (change them with `stackctl secrets set/rotate`); config values you edit here are kept",
        "# unless the profile sets them (`stackctl env render --reset` drops the edits).",
    ]
    values = profile.env.values
    marks: list[str] = []

    def emit(key_doc: tuple[str, ...], line: str) -> None:
        if key_doc:
            out.append("")
            out.extend(f"# {c}".rstrip() for c in key_doc)
        out.append(line)

    for key in src.template:
        name = key.name
        current = src.env_values.get(name)
        if key.kind in ("secret", "public"):
            source_name = key.public_of if key.kind == "public" else name
            value = store.get(source_name or "")
            if value is not None and key.kind == "public" and masked:
                value = mask.public_marker(source_name or "")
            elif value is not None and key.kind == "public" and src.store_values is not None:
                value = public_pem(value)
            if value is None:
                if key.required:
                    p.missing.append(name)
                emit(key.doc, f"# {name} is not set (not in the store)")
                continue
            if key.kind == "secret" and current not in (None, "") and known and current != value:
                # a line render wrote itself is stale, even once its value left the kept history
                written = name in src.rendered and not _edited(src, name)
                if written or current in src.store_history.get(name, frozenset()) or ops.is_placeholder(current):
                    p.stale.append(name)
                elif not force:
                    p.hand_edited.append(name)
            p.sources[name] = "store" if key.kind == "secret" else "derived"
            line = f"{name}={format_value(value, key=name)}"
            if key.kind == "secret" and known:
                marks.append(f"{name}:{_line_fingerprint(line)}")
            emit(key.doc, line)
            continue
        if name in values:
            if not reset and _edited(src, name) and current != values[name]:
                p.replaced.append(name)
            p.sources[name] = "profile"
            line = f"{name}={format_value(values[name], key=name)}"
        elif not reset and _edited(src, name):
            p.sources[name] = "env-file"
            emit(key.doc, dotenv.source_line(src.env_entries[name]))
            continue
        else:
            p.sources[name] = "template"
            if key.inherit:
                line = name
            elif key.quote == "'":
                line = f"{name}={format_value(key.raw, key=name)}"
            else:
                line = f"{name}={format_template(key.raw)}"
        marks.append(f"{name}:{_line_fingerprint(line)}")
        emit(key.doc, line)

    extra_lines: list[str] = []
    for name, value in values.items():
        if name not in src.template:
            p.sources[name] = "profile"
            extra_lines.append(f"{name}={format_value(value, key=name)}")
    for name, entry in src.env_entries.items():
        if name not in src.template and name not in values and name not in store:
            p.sources[name] = "env-file"
            p.extras.append(name)
            extra_lines.append(dotenv.source_line(entry))
    for name in sorted(store):
        if name not in src.template:
            p.sources[name] = "store"
            p.store_only.append(name)
            extra_lines.append(f"{name}={format_value(store[name], key=name)}")
    if extra_lines:
        out.append("")
        out.append("# Not in the template (`stackctl env check` reports these):")
        out.extend(extra_lines)
    if marks:
        out.append("")
        out.append(_MARK + " ".join(marks))
    p.text = "\n".join(out) + "\n"
    return p


# ---------------------------------------------------------------------------------------------
# in memory
# ---------------------------------------------------------------------------------------------
def in_memory(profile: Profile, *, masked: bool,
              unset: list[str] | None = None) -> dict[str, str] | None:
    """The profile's env as `env render` would write it and Compose would read it, computed in memory
    and never written: what `config`, `render` and `promote` interpolate with, so that no profile
    needs a plaintext env file on disk (production) and none shows a stale one. None when the
    profile does not use stackctl's env management (no `.env.example`) or, for real values, has no
    store: Compose then reads the env file as it is.

    `masked`: secrets as markers (`stackctl.secrets.mask`; no private key needed). Every @secret key
    gets its marker, so that Compose cannot find the plaintext in the env file or the shell instead,
    and a profile whose secrets are not generated yet still renders: their names are appended to
    `unset` when given (the caller says so; promote, with real values, refuses them). Else the
    store's values (a private key needed; SecretsError naming the required keys that have no value,
    and the command that sets them).
    """
    import os

    from stackctl.compose import dotenv
    from stackctl.secrets import mask

    if not profile.env.template.is_file() or (not masked and not profile.secrets.store.is_file()):
        return None
    src = _read_sources(profile, need_secrets=not masked)
    p = plan(profile, src, masked=masked)
    if p.missing and not masked:
        from stackctl.secrets import ops

        raise SecretsError(f"no value for required {', '.join(p.missing)} in {ops.store_display(profile)}",
                           hint=_missing_hint(profile, src.template, p.missing))
    values = dotenv.parse(p.text, filename=display(profile.env.file, profile.root))
    if masked:
        # Every secret gets its marker, with a value or not: the plaintext cannot leak in from the env
        # file or the shell, and a profile whose secrets are not generated yet still renders (what has
        # no value is named where it matters: promote, `env render`, `secrets list`).
        for key in src.template:
            if key.kind == "config" or key.name in values:
                continue
            has_value = bool(src.env_values.get(key.name) or os.environ.get(key.name))
            if key.is_secret or has_value:
                values[key.name] = mask.marker(key.name) if key.is_secret else mask.public_marker(key.public_of or "")
            if key.is_secret and not has_value and unset is not None:
                unset.append(key.name)
    return values


def text_in_memory(profile: Profile, *, masked: bool) -> str | None:
    """The profile's env file as `env render` would write it (for a bind mount of it that `render`
    turns into a Secret), computed in memory: secrets as markers when `masked`, else the store's
    values (a private key needed; a secret without a value is a comment line, as in `plan`). None
    when the profile has no `.env.example` (stackctl does not manage its env)."""
    if not profile.env.template.is_file():
        return None
    return plan(profile, _read_sources(profile, need_secrets=not masked), masked=masked).text


# ---------------------------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------------------------
@dataclass
class RenderResult:
    """What `env render` did (or, with `--dry-run`, would do)."""

    path: str
    written: bool
    changed: list[str]
    plan: Plan
    warnings: list[str]


def render(profile: Profile, *, force: bool = False, reset: bool = False, dry_run: bool = False) -> RenderResult:
    """Write the profile's env file (mode 0600, atomic) or raise, writing nothing."""
    from stackctl.compose import dotenv
    from stackctl.fsutil import SECRET_MODE, atomic_write, dir_lock, remove_stale_temps, restrict

    shown = display(profile.env.file, profile.root)
    if git_tracked(profile.env.file, profile.root):
        raise InputError(f"{shown} is tracked by git: env render would write plaintext secrets into a "
                         "committed file; nothing was written", file=profile.display_path, field="env.file",
                         hint="point env.file at an untracked, git-ignored file (such as .env.<profile>)")
    src = _read_sources(profile, need_secrets=True)
    p = plan(profile, src, reset=reset, force=force)
    if p.missing:
        hint = _missing_hint(profile, src.template, p.missing)
        raise SecretsError(f"cannot render {shown}: no value for required {', '.join(p.missing)}", hint=hint)
    if p.hand_edited:
        raise SecretsError(
            f"{shown} holds values for {', '.join(p.hand_edited)} that are not in the store (edited by hand?); "
            "nothing was written",
            hint=f"keep them with `stackctl secrets import -p {profile.name}`, or replace them with --force")
    try:
        new_values = dotenv.parse(p.text, filename=shown)
    except EnvError as exc:
        raise EnvError(f"the rendered file would not load: {exc.message}", file=exc.file, field=exc.field) from None
    changed = sorted(k for k in set(new_values) | set(src.env_values)
                     if new_values.get(k) != src.env_values.get(k))
    warnings = []
    for name in p.replaced:
        warnings.append(f"{name}: the value in {shown} was replaced by {profile.display_path} env.values")
    for name in p.store_only:
        warnings.append(f"{name} is in the store but not in {src.template.display}; written anyway")
    for name in profile.env.values:
        key = src.template.get(name)
        if key is not None and key.kind != "config":
            warnings.append(f"{name}: {profile.display_path} env.values sets a @{key.kind} key; ignored "
                            "(secrets come from the store only)")
    ignored = git_ignored(profile.env.file, profile.root)
    if ignored is False:
        warnings.append(f"{shown} is not ignored by git: add it to .gitignore before you commit "
                        "(it holds plaintext secrets)")
    existing = profile.env.file.read_bytes().decode("utf-8", "replace") if profile.env.file.exists() else None
    written = False
    if not dry_run:
        profile.env.file.parent.mkdir(parents=True, exist_ok=True)
        # A render killed mid-write left its temp file (plaintext): sweep it, holding the lock that
        # keeps a concurrent render's temp file from looking stale.
        with dir_lock(profile.env.file.parent):
            remove_stale_temps(profile.env.file)
            if existing != p.text:
                atomic_write(profile.env.file, p.text, mode=SECRET_MODE)
                written = True
            else:
                restrict(profile.env.file, SECRET_MODE)
    return RenderResult(path=shown, written=written, changed=changed, plan=p, warnings=warnings)


def missing_hint(profile: Profile, missing: list[str]) -> str:
    """What sets the values `missing` (secret names of the profile's template): generate or set."""
    from stackctl.secrets.template import load_template

    return _missing_hint(profile, load_template(profile.env.template, set_in=profile.env.template_set_in), missing)


def _missing_hint(profile: Profile, template: Template, missing: list[str]) -> str:
    manual = [n for n in missing if (k := template.get(n)) is not None and k.kind == "secret" and not k.generator]
    hints = []
    if len(manual) < len(missing):
        hints.append(f"run `stackctl secrets generate -p {profile.name}`")
    hints.extend(f"`stackctl secrets set {n} -p {profile.name}`" for n in manual)
    return "; ".join(hints)


def git_ignored(path: Path, root: Path) -> bool | None:
    """True/False when git can tell; None outside a git work tree, without git, or when git hangs
    (the warning is advice: `stackctl doctor` is where a missing git is reported)."""
    from stackctl import git

    try:
        return git.is_ignored(path, root)
    except StackctlError:
        return None


def git_tracked(path: Path, root: Path) -> bool | None:
    """True/False when git can tell, None when it cannot (as `git_ignored`)."""
    from stackctl import git

    try:
        return git.is_tracked(path, root)
    except StackctlError:
        return None


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One finding of `env check`."""

    kind: str  # missing empty placeholder unknown undefined stale hand-edited invalid not-ignored plaintext-secret
    key: str
    where: str
    detail: str

    def to_data(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "where": self.where, "detail": self.detail}


@dataclass
class Report:
    """`env check` for one profile: its problems and notes."""

    profile: str
    env_file: str
    problems: list[Problem]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_data(self) -> dict[str, object]:
        return {"profile": self.profile, "env_file": self.env_file, "ok": self.ok,
                "problems": [p.to_data() for p in self.problems], "notes": self.notes}


def check(profile: Profile) -> Report:
    """Everything wrong with the profile's env: see `Problem.kind`. Never includes a value."""
    from stackctl.compose import dotenv
    from stackctl.secrets import ops

    src = _read_sources(profile, need_secrets=False)
    p = plan(profile, src)
    t = src.template
    env_shown = display(profile.env.file, profile.root)
    store_shown = ops.store_display(profile)
    problems: list[Problem] = []
    notes: list[str] = []
    if p.locked:
        notes.append(f"secret values were not checked: no private key opens {store_shown}")

    def at_template(name: str) -> str:
        key = t.get(name)
        return f"{t.display}:{key.line}" if key else t.display

    def where_of(name: str) -> str:
        source = p.sources.get(name)
        if source == "env-file":
            return f"{env_shown}:{src.env_lines.get(name, '?')}"
        if source == "profile":
            return f"{profile.display_path}: env.values.{name}"
        if source in ("store", "derived"):
            return store_shown
        return at_template(name)

    for name in p.missing:
        key = t.get(name)
        if key is not None and key.kind == "secret":
            how = (f"run `stackctl secrets generate -p {profile.name}`" if key.generator
                   else f"set it with `stackctl secrets set {name} -p {profile.name}`")
            problems.append(Problem("missing", name, store_shown, f"secret not in the store; {how}"))
        elif key is not None and key.kind == "public":
            problems.append(Problem("missing", name, store_shown,
                                    f"derived from {key.public_of}, which is not in the store"))
    try:
        rendered = dotenv.parse(p.text, filename=env_shown)
    except EnvError as exc:
        rendered = {}
        problems.append(Problem("invalid", "", exc.field or env_shown, exc.message))
    if profile.env.file.exists():
        for key in t:
            if key.name not in src.env_entries and key.name in p.sources:  # render would write it
                problems.append(Problem("missing", key.name, env_shown,
                                        f"not in the env file; run `stackctl env render -p {profile.name}`"))
    for key in t:
        name = key.name
        if name not in rendered or name in p.missing:
            continue
        value = rendered[name]
        if p.locked and key.kind != "config":
            continue
        if value == "" and key.required:
            fix = (f"set it in {profile.display_path} env.values or {env_shown}" if key.kind == "config"
                   else f"`stackctl secrets set {name}`")
            problems.append(Problem("empty", name, where_of(name), f"required value is empty; {fix}"))
        elif value and ops.is_placeholder(value):
            problems.append(Problem("placeholder", name, where_of(name), "looks like a placeholder, not a real "
                                    "value" + ("" if key.kind == "config" else f"; `stackctl secrets set {name}`")))
    for name in src.env_entries:
        if name not in t:
            problems.append(Problem("unknown", name, f"{env_shown}:{src.env_lines.get(name, '?')}",
                                    f"not in {t.display}"))
    for name in profile.env.values:
        if name not in t:
            problems.append(Problem("unknown", name, f"{profile.display_path}: env.values.{name}",
                                    f"not in {t.display}"))
        elif t.get(name).kind != "config":  # type: ignore[union-attr]
            problems.append(Problem("plaintext-secret", name, f"{profile.display_path}: env.values.{name}",
                                    f"{t.display} marks it @{t.get(name).kind}: it belongs in the store, "  # type: ignore[union-attr]
                                    f"not in a committed profile (ignored; `stackctl secrets set {name}`)"))
    for name in sorted(src.store_names):
        if name not in t:
            problems.append(Problem("unknown", name, store_shown, f"not in {t.display}"))
        elif not t.get(name).is_secret:  # type: ignore[union-attr]
            problems.append(Problem("unknown", name, store_shown, f"{t.display} marks it as config, not @secret"))
    for name in p.stale:
        problems.append(Problem("stale", name, f"{env_shown}:{src.env_lines.get(name, '?')}",
                                f"older than the store; run `stackctl env render -p {profile.name}`"))
    for name in p.hand_edited:
        problems.append(Problem("hand-edited", name, f"{env_shown}:{src.env_lines.get(name, '?')}",
                                f"value not in the store; `stackctl secrets import -p {profile.name}` keeps it"))
    problems.extend(_undefined(profile, t, set(rendered) | set(p.sources) | set(p.missing), env_shown))
    if profile.env.file.exists() and git_ignored(profile.env.file, profile.root) is False:
        problems.append(Problem("not-ignored", "", env_shown, "not ignored by git: add it to .gitignore"))
    return Report(profile=profile.name, env_file=env_shown, problems=problems, notes=notes)


def _undefined(profile: Profile, template: Template, defined: set[str], env_shown: str) -> list[Problem]:
    """Compose references (and template references) to variables nothing defines."""
    from stackctl.compose import dotenv
    from stackctl.compose.interpolation import references, scan_yaml_file

    known = set(defined)
    for extra in profile.compose.env_files:
        if extra.resolve() != profile.env.file.resolve() and extra.exists():
            with contextlib.suppress(StackctlError):
                known |= set(dotenv.load(extra))
    problems: dict[str, Problem] = {}
    for compose_file in profile.compose.files:
        shown = display(compose_file, profile.root)
        for ref in scan_yaml_file(compose_file):
            if ref.ref.has_fallback or ref.ref.nested or ref.name in known or ref.name in problems:
                continue
            how = "required (:?)" if ref.required else "no default"
            problems[ref.name] = Problem("undefined", ref.name, f"{shown}: {ref.field}",
                                         f"referenced ({how}) but defined nowhere ({template.display}, "
                                         f"{env_shown}, profile env.values, store)")
    for key in template:
        if key.kind != "config" or not key.raw or key.quote == "'":
            continue
        try:
            refs = references(key.raw)
        except InputError:
            continue
        for var in refs:
            if not var.has_fallback and not var.nested and var.name not in known and var.name not in problems:
                problems[var.name] = Problem("undefined", var.name, f"{template.display}:{key.line}",
                                             f"{key.name} refers to it but nothing defines it")
    return list(problems.values())

