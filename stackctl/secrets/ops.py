"""What the `stackctl secrets` commands do, per profile. Commands are glue around these functions.

Every function that changes a store runs inside one `store.transaction()` (lock, verify, change, one
atomic write); none returns or raises a plaintext value except `reveal()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stackctl.errors import InputError, SecretsError
from stackctl.profile.types import Profile, display
from stackctl.secrets import keys as keymod
from stackctl.secrets import store as st
from stackctl.secrets.generators import Generator, parse_spec
from stackctl.secrets.template import Template, TemplateKey, load_template

if TYPE_CHECKING:
    from stackctl.secrets.dbrotate import Target


@dataclass(frozen=True)
class Change:
    """One row of a command's report (never a value)."""

    name: str
    action: str  # generated | rotated | kept | set | imported | rolled back | skipped | missing
    version: int | None = None
    type: str = ""
    note: str = ""


@dataclass
class Outcome:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things to tell the user on stderr


def store_display(profile: Profile) -> str:
    return display(profile.secrets.store, profile.root)


def template_of(profile: Profile) -> Template:
    return load_template(profile.env.template, display=display(profile.env.template, profile.root),
                         set_in=profile.env.template_set_in)


def template_if_any(profile: Profile) -> Template | None:
    return template_of(profile) if profile.env.template.exists() else None


def open_store(profile: Profile, *, need_key: bool = True) -> st.SecretStore:
    return st.load(profile.secrets.store, profile.name, display=store_display(profile), need_key=need_key,
                   history=profile.secrets.history)


def _tx(profile: Profile) -> AbstractContextManager[st.SecretStore]:
    return st.transaction(profile.secrets.store, profile.name, display=store_display(profile),
                          history=profile.secrets.history)


def default_recipient_name() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers (KeyError from pwd, OSError on 3.13)
        user = "user"
    name = re.sub(r"[^A-Za-z0-9_.@\-]", "-", f"{user}@{socket.gethostname().split('.')[0]}")
    return name[:64].lstrip("-.@_") or "me"


def init(profile: Profile, *, recipient: str | None = None) -> Outcome:
    """Create the profile's store, enrolling this machine's key (made if there is none)."""
    out = Outcome()
    if profile.secrets.store.exists():
        raise SecretsError("a secrets store already exists for this profile", file=store_display(profile),
                           hint="add people with `stackctl secrets recipients add`")
    ident = keymod.default_identity()
    if ident is None:
        ident, _ = keymod.keygen()
        out.notes.append(f"created your private key {ident.source} (mode 0600; back it up, never commit it)")
    name = recipient or default_recipient_name()
    st.create(profile.secrets.store, profile.name, ident, name, display=store_display(profile),
              history=profile.secrets.history)
    out.notes.append(f"created {store_display(profile)} with recipient {name!r} ({ident.public})")
    return out


def _ensure_store(profile: Profile, out: Outcome) -> None:
    if not profile.secrets.store.exists():
        try:
            out.notes.extend(init(profile).notes)
        except SecretsError:
            if not profile.secrets.store.exists():  # not a lost race with another first-time command
                raise


def _select(template: Template, names: Sequence[str], *, what: str) -> list[TemplateKey]:
    if not names:
        return template.secrets
    chosen = []
    for name in names:
        key = template.get(name)
        if key is None or not key.is_secret:
            secrets = ", ".join(k.name for k in template.secrets) or "none"
            raise InputError(f"{name} is not a secret in {template.display} (secrets: {secrets})", field=what)
        chosen.append(key)
    return chosen


def generate(profile: Profile, names: Sequence[str] = (), *, force: bool = False) -> Outcome:
    """Fill every missing secret (or the named ones) from its generator; `force` replaces existing ones."""
    template = template_of(profile)
    out = Outcome()
    chosen = _select(template, names, what="NAME")
    if not chosen:
        out.notes.append(f"{template.display} declares no secrets (annotate keys with `# @secret GENERATOR`)")
        return out
    _ensure_store(profile, out)
    with _tx(profile) as store:
        for key in chosen:
            exists = key.name in store
            if exists and not force:
                out.changes.append(Change(key.name, "kept", store.entry(key.name).current, key.type))
                continue
            if key.generator is None:
                action = "kept" if exists else "missing"
                out.changes.append(Change(key.name, action, store.entry(key.name).current if exists else None,
                                          key.type, note=f"no generator: `stackctl secrets set {key.name}`"))
                continue
            ver = store.put(key.name, key.generator.generate(), type=key.type,
                            origin="rotate" if exists else "generate")
            out.changes.append(Change(key.name, "rotated" if exists else "generated", ver.v, key.type))
    return out


def rotate(profile: Profile, names: Sequence[str], *, all_: bool = False) -> Outcome:
    """A new generated value for each named secret (or all that have a generator); history kept.

    A secret a data volume was initialised with (`dbrotate.find_targets`: a database password) is
    refused by name (InputError, nothing changed) and skipped by --all: a new value alone would lock
    its users out; `secrets.inplace` (locally) and `kubernetes.deploy.inplace` change it inside the
    database first."""
    if bool(names) == all_:
        raise InputError("name the secrets to rotate, or pass --all (not both)", field="NAME")
    from stackctl.secrets import dbrotate

    template = template_if_any(profile)
    out = Outcome()
    if names:  # refused before anything is locked or changed (exit 2)
        held = dbrotate.find_targets(profile, template, names)
        for name in names:
            if held[name]:
                raise dbrotate.refusal(name, held[name], profile)
    with _tx(profile) as store:
        targets = list(names) if names else store.names
        held = dbrotate.find_targets(profile, template, targets) if all_ else {}
        for name in targets:
            entry = store.entry(name)
            before = entry.current
            if held.get(name):
                out.changes.append(Change(name, "skipped", entry.current, entry.type,
                                          note="a data volume holds it: rotate it alone with --in-place"))
                continue
            gen = _generator_for(name, entry.type, template)
            if gen is None:
                if all_:
                    out.changes.append(Change(name, "skipped", entry.current, entry.type,
                                              note="no generator: set it with `stackctl secrets set`"))
                    continue
                raise InputError(f"{name} has no generator to rotate with (type {entry.type})", field="NAME",
                                 hint=f"set a new value with `stackctl secrets set {name}`")
            ver = store.put(name, gen.generate(), type=str(gen), origin="rotate")
            out.changes.append(Change(name, "rotated", ver.v, str(gen), note=f"was v{before}"))
    return out


def _generator_for(name: str, stored_type: str, template: Template | None) -> Generator | None:
    key = template.get(name) if template is not None else None
    if key is not None and key.is_secret:
        return key.generator  # the template is authoritative: a changed spec applies on the next rotation
    try:
        return parse_spec(stored_type)
    except ValueError:
        return None


@dataclass(frozen=True)
class Switched:
    """What `switch_then_store` did: the version stored, the one it replaced, and per target service
    whether the old value was kept valid beside the new one ("retained") or replaced ("changed"),
    and both values (for the step that drops the old one; never shown)."""

    version: int
    was: int
    switched: dict[str, str]
    old: str = field(repr=False)
    new: str = field(repr=False)


Switch = Callable[["Target", bool, str, str], tuple[bool, str, str]]


def switch_then_store(profile: Profile, name: str, targets: Sequence[Target], template: Template | None, *,
                      switch: Switch, announce: Callable[[Target], None]) -> Switched:
    """The store step of an in-place rotation, the same locally and on a cluster: under the store's
    lock (one rotation at a time), a new value from the generator is made valid inside every target
    by `switch(target, undo, old, new) -> (ok, output, why)`, and only when all succeeded is it
    stored. A failure switches the targets already done back (`undo=True`, the values swapped) and
    stores nothing; the error masks both values in the output it shows."""
    from stackctl.errors import OperationError
    from stackctl.secrets.dbrotate import mask

    with _tx(profile) as store:
        entry = store.entry(name)
        gen = _generator_for(name, entry.type, template)
        if gen is None:
            raise InputError(f"{name} has no generator to rotate with (type {entry.type})", field="NAME")
        old, new = store.value(name), gen.generate()
        done: list[Target] = []
        switched: dict[str, str] = {}
        for target in targets:
            announce(target)
            ok, output, why = switch(target, False, old, new)
            if not ok:
                raise OperationError(f"could not change {name} inside {target.service}{why}: "
                                     f"{mask(output.strip(), old, new)[-600:] or 'no output'}",
                                     hint=f"nothing was stored; {_switch_back(done, switch, old, new)}")
            done.append(target)
            switched[target.service] = "retained" if "stackctl: retained" in output else "changed"
        was = entry.current
        ver = store.put(name, new, type=str(gen), origin="rotate")
    return Switched(ver.v, was, switched, old, new)


def _switch_back(done: Sequence[Target], switch: Switch, old: str, new: str) -> str:
    """Put the old value back where the switch already happened (a later target failed)."""
    if not done:
        return "the database was not changed"
    failed = [t.service for t in done if not switch(t, True, new, old)[0]]
    if failed:
        return (f"{', '.join(failed)} already accept(s) the new value and could not be changed back: "
                f"restore it there by hand")
    return f"{', '.join(t.service for t in done)} changed back to the stored value"


def set_value(profile: Profile, name: str, value: str, *, force: bool = False) -> Outcome:
    """Store a value given by the user (stdin / file) as the new current version. Replacing the value
    of a secret a database was initialised with is refused as a plain rotation is (`_refuse_held`)."""
    template = template_if_any(profile)
    out = Outcome()
    if not force:
        _refuse_held(profile, template, name, "set to a new value")
    key = template.get(name) if template is not None else None
    if key is not None and not key.is_secret:
        raise InputError(f"{name} is not a secret in {template.display} ({key.type}); "  # type: ignore[union-attr]
                         "config values belong in the profile's env.values", field="NAME")
    if key is None:
        out.notes.append(f"{name} is not in the env template; `stackctl env check` will report it")
    if value == "":
        raise InputError(f"refusing to store an empty value for {name}", field="value")
    if key is not None and key.generator is not None:
        problem = key.generator.validate(value)
        if problem:
            raise InputError(f"{name}: the value {problem}", field="value")
    _ensure_store(profile, out)
    with _tx(profile) as store:
        old = store.entry(name).current if name in store else None
        ver = store.put(name, value, type=key.type if key else "manual", origin="set")
    out.changes.append(Change(name, "set", ver.v, key.type if key else "manual",
                              note=f"was v{old}" if old else ""))
    return out


def import_env(profile: Profile, path: Path | None = None, *, overwrite: bool = False) -> Outcome:
    """Move the template's secrets from a plaintext env file into the store (migration)."""
    from stackctl.compose import dotenv

    template = template_of(profile)
    source = path or profile.env.file
    shown = display(source, profile.root)
    values = dotenv.parse(dotenv.read_text(source, shown=shown), filename=shown)
    out = Outcome()
    _ensure_store(profile, out)
    with _tx(profile) as store:
        for key in template.secrets:
            if key.name not in values:
                continue
            value = values[key.name]
            if value == "" or is_placeholder(value):
                out.changes.append(Change(key.name, "skipped", None, key.type, note="empty or placeholder"))
                continue
            if key.name in store and not overwrite:
                same = store.value(key.name) == value
                out.changes.append(Change(key.name, "kept", store.entry(key.name).current, key.type,
                                          note="same value" if same else "store differs; --overwrite to import"))
                continue
            if key.generator is not None and key.generator.validate(value):
                out.changes.append(Change(key.name, "skipped", None, key.type,
                                          note=f"value {key.generator.validate(value)}"))
                continue
            ver = store.put(key.name, value, type=key.type, origin="import")
            out.changes.append(Change(key.name, "imported", ver.v, key.type))
    return out


def rollback(profile: Profile, name: str, to: int | None = None, *, force: bool = False) -> Outcome:
    out = Outcome()
    if not force:
        _refuse_held(profile, template_if_any(profile), name, "rolled back")
    with _tx(profile) as store:
        before = store.entry(name).current
        ver = store.rollback(name, to)
        kind = store.entry(name).type
    out.changes.append(Change(name, "rolled back", ver.v, kind, note=f"value of {ver.origin.split(':')[1]}, "
                                                                f"was v{before}"))
    return out


def _refuse_held(profile: Profile, template: Template | None, name: str, action: str) -> None:
    """A secret a data volume was initialised with, that has a value already, changes only inside the
    database first: a new stored value alone locks its users out, as a plain rotation would."""
    from stackctl.secrets import dbrotate

    if not profile.secrets.store.is_file() or name not in open_store(profile, need_key=False).names:
        return  # a first value: the database, if any, initialises with it
    held = dbrotate.find_targets(profile, template, [name])[name]
    if held:
        raise dbrotate.refusal(name, held, profile, action=action)


def delete(profile: Profile, name: str) -> Outcome:
    out = Outcome()
    with _tx(profile) as store:
        ver = store.entry(name).current
        store.delete(name)
    out.changes.append(Change(name, "deleted", ver))
    return out


def rekey(profile: Profile) -> Outcome:
    old, new = st.rekey(profile.secrets.store, profile.name, display=store_display(profile),
                        history=profile.secrets.history)
    out = Outcome()
    out.notes.append(f"new data key {new} (was {old}) wrapped for every recipient; every kept version re-sealed")
    return out


def recipients(profile: Profile) -> tuple[list[dict[str, str]], bool]:
    """Rows for `recipients list` and whether they were verified (a key was available)."""
    store = open_store(profile, need_key=False)
    rows = []
    for name, r in sorted(store.doc.recipients.items()):
        rows.append({"name": name, "public_key": r.public_key, "added": r.added,
                     "you": "yes" if name == store.me else ""})
    return rows, store.unlocked


def add_recipient(profile: Profile, name: str, public_key: str) -> Outcome:
    keymod.parse_public(public_key, field="PUBLIC_KEY")
    with _tx(profile) as store:
        store.add_recipient(name, public_key)
    return Outcome(notes=[f"{name} can now open {store_display(profile)} (no value was re-encrypted)"])


def remove_recipient(profile: Profile, name: str, *, force: bool = False) -> Outcome:
    with _tx(profile) as store:
        store.remove_recipient(name, allow_self=force)
    return Outcome(notes=[
        f"removed {name} and renewed the data key (every kept version re-sealed): they cannot open what is "
        f"written from now on. They may still know the values they could read: run "
        f"`stackctl secrets rotate --all -p {profile.name}`"])


def listing(profile: Profile) -> tuple[list[dict[str, object]], bool]:
    """Rows for `secrets list` (names, types, versions, ages, status — never values); verified?"""
    template = template_if_any(profile)
    store = open_store(profile, need_key=False) if profile.secrets.store.exists() else None
    rows: list[dict[str, object]] = []
    names = [k.name for k in (template.secrets if template else [])]
    for name in (store.names if store else []):
        if name not in names:
            names.append(name)
    for name in names:
        key = template.get(name) if template else None
        if store is not None and name in store:
            entry = store.entry(name)
            cur = entry.current_version
            rows.append({"name": name, "type": key.type if key else entry.type, "version": entry.current,
                         "versions": len(entry.versions), "age": st.age(cur.created), "updated": cur.created,
                         "origin": cur.origin, "status": "ok" if key else "not in template"})
        else:
            rows.append({"name": name, "type": key.type if key else "", "version": None, "versions": 0,
                         "age": "", "updated": "", "origin": "",
                         "status": "missing" if key and key.required else "not set"})
    for key in (template.public_keys if template else []):
        src = next((r for r in rows if r["name"] == key.public_of), None)
        rows.append({"name": key.name, "type": key.type, "version": src["version"] if src else None,
                     "versions": 0, "age": src["age"] if src else "", "updated": src["updated"] if src else "",
                     "origin": "derived", "status": "derived"})
    return rows, bool(store and store.unlocked)


def history(profile: Profile, name: str) -> list[dict[str, object]]:
    store = open_store(profile, need_key=False)
    entry = store.entry(name)
    return [{"version": v.v, "current": v.v == entry.current, "created": v.created, "age": st.age(v.created),
             "origin": v.origin, "digest": st.version_digest(profile.name, name, v)} for v in entry.versions]


def describe(profile: Profile, name: str) -> dict[str, object]:
    """Metadata of one secret (`show` without --reveal)."""
    rows, _ = listing(profile)
    row = next((r for r in rows if r["name"] == name), None)
    if row is None:
        raise InputError(f"no secret named {name!r} for profile {profile.name!r}", field="NAME")
    return row


def reveal(profile: Profile, name: str, version: int | None = None) -> str:
    """The plaintext value: only `secrets show --reveal` calls this."""
    from stackctl.secrets.generators import public_pem

    template = template_if_any(profile)
    key = template.get(name) if template else None
    store = open_store(profile)
    if key is not None and key.kind == "public":
        return public_pem(store.value(key.public_of or "", version))
    return store.value(name, version)


def verify(profile: Profile, *, reseal: bool = False) -> dict[str, object]:
    """Open with a key, check the MAC and decrypt every kept version. `reseal` (after a hand-resolved merge)
    skips the MAC check, proves each value by its own AEAD tag, then writes a fresh MAC."""
    if reseal:
        from stackctl.fsutil import file_lock

        with file_lock(st.lock_path(profile.secrets.store)):
            store = _load_for_reseal(profile)
            count = store.verify_all()
            store._writable = True
            store.dirty = True
            st._commit(store)
    else:
        store = open_store(profile)
        count = store.verify_all()
    secrets = {n: {"version": store.entry(n).current, "versions": len(store.entry(n).versions),
                   "digest": store.digest(n)} for n in store.names}
    return {"store": store.display, "profile": profile.name, "recipient": store.me, "key": store.doc.active_key,
            "keys": store.doc.key_ids(), "recipients": sorted(store.doc.recipients),
            "versions_checked": count, "resealed": reseal, "secrets": secrets}


def _load_for_reseal(profile: Profile) -> st.SecretStore:
    shown = store_display(profile)
    doc = st._read(profile.secrets.store, shown, profile.name)
    deks, me = st._unlock(doc, shown, keymod.identities())
    return st.SecretStore(profile.secrets.store, shown, doc, deks, me, profile.secrets.history)


# Values a human left in place of a real one. Matched on the whole value, case-insensitively.
_PLACEHOLDER = re.compile(
    r"^(change[_\-. ]?(me|this|it).*|.*changeme.*|your[_\-].*|<[^<>]*>|x{3,}|\*{3,}|todo|fixme|tbd"
    r"|replace[_\-]?me.*|placeholder|dummy|secret|password|insert[_\-].*|fill[_\-]?me.*)$",
    re.IGNORECASE | re.DOTALL)


def is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value.strip()))


def names_of(changes: Iterable[Change], *actions: str) -> list[str]:
    return [c.name for c in changes if c.action in actions]
