"""The `.env.example` template and its annotations.

Every key in `.env.example` is part of the stack's contract. A key can carry an annotation: a
comment whose text starts with `@`, on the line(s) directly above the key or after its value:

    # Password of the application database user.
    # @secret password:24
    DB_PASSWORD=

    JWT_SECRET=""                # @secret hex:32
    # @secret ed25519
    JWT_SIGNING_KEY=
    # @public JWT_SIGNING_KEY
    JWT_PUBLIC_KEY=
    # No generator: set it by hand with `stackctl secrets set STRIPE_API_KEY`.
    # @secret
    STRIPE_API_KEY=
    SENTRY_DSN=""                # @optional
    LOG_LEVEL=info               # @config

An inline annotation needs a value or `""` before it: Compose reads `KEY=   # @secret` as the value
`# @secret` (blanks after `=` are skipped, so there is no " #" left to start a comment). The parser
refuses that spelling with a hint rather than silently making a config value of it.

Words: `@secret [GENERATOR]`, `@config` (the default), `@required` (the default), `@optional`,
`@public KEY` (the PEM public half of the key-pair secret KEY, derived, never stored). Secrets a data
volume was initialised with (a database password; see `stackctl.secrets.dbrotate`): `@initialises
SERVICE` (SERVICE's volume keeps this value: a plain rotation would lock its users out), `@reapplied`
(every service that receives it sets it again at each start: a plain rotation is safe), and
`@rotate-command COMMAND...` (the rest of its comment line: how to change the value inside the running
SERVICE, run there with `sh -c`, the values in $STACKCTL_OLD_VALUE and $STACKCTL_NEW_VALUE). Comments that do
not start with `@` are documentation. Every key is required unless `@optional`: its value must not be
empty. A secret's value in the template is never used (the template is public).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stackctl.errors import EnvError
from stackctl.secrets.generators import Generator, parse_spec

# `KEY=   # @secret hex:32`: Compose skips the blanks after `=`, so the "comment" IS the value.
_SWALLOWED = re.compile(r"^#(\s|@)")
Kind = Literal["secret", "config", "public"]
WORDS = ("@secret", "@config", "@required", "@optional", "@public", "@initialises", "@reapplied", "@rotate-command")
_ROTATION_WORDS = ("@initialises", "@reapplied", "@rotate-command")


@dataclass(frozen=True)
class TemplateKey:
    name: str
    kind: Kind
    required: bool
    line: int
    generator: Generator | None = None  # secrets: how to make a value (None: set by hand)
    public_of: str | None = None  # kind == "public": the key-pair secret it is derived from
    raw: str = ""  # config keys: the template value before interpolation (dotenv `EnvEntry.raw`)
    quote: str = ""
    inherit: bool = False
    doc: tuple[str, ...] = ()  # the comment lines above the key, annotations included
    initialises: tuple[str, ...] = ()  # secrets: services whose data volume was initialised with it
    reapplied: bool = False  # secrets: every service that receives it sets it again at each start
    rotate_command: str | None = None  # secrets: changes it inside the running service (`sh -c`)

    @property
    def is_secret(self) -> bool:
        return self.kind == "secret"

    @property
    def type(self) -> str:
        """What `secrets list` shows: the generator spec, `manual`, or `public:KEY`."""
        if self.kind == "public":
            return f"public:{self.public_of}"
        if self.kind == "secret":
            return str(self.generator) if self.generator else "manual"
        return "config"


@dataclass(frozen=True)
class Template:
    path: Path
    display: str  # the path as messages show it
    keys: tuple[TemplateKey, ...]

    def __iter__(self) -> Iterator[TemplateKey]:
        return iter(self.keys)

    def __contains__(self, name: object) -> bool:
        return any(k.name == name for k in self.keys)

    def get(self, name: str) -> TemplateKey | None:
        return next((k for k in self.keys if k.name == name), None)

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.keys]

    @property
    def secrets(self) -> list[TemplateKey]:
        return [k for k in self.keys if k.kind == "secret"]

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(k.name for k in self.keys if k.kind == "secret")

    @property
    def public_keys(self) -> list[TemplateKey]:
        return [k for k in self.keys if k.kind == "public"]


def _annotation(text: str) -> list[str] | None:
    """The words of an annotation comment, or None for a documentation comment."""
    body = text.strip()
    return body.split() if body.startswith("@") else None


def parse_template(text: str, *, display: str, path: Path | None = None) -> Template:
    """Parse `.env.example` text. EnvError naming the file and line for any bad annotation."""
    from stackctl.compose.dotenv import parse_entries

    entries = parse_entries(text, filename=display)
    seen: dict[str, int] = {}
    keys: list[TemplateKey] = []
    for e in entries:
        if not e.key:
            # `export ` alone on a line (or a last line without `=`): Compose reads a variable with an
            # empty name, which nothing can reference; it is no key of the template.
            continue

        def fail(message: str, _line: int = e.line) -> EnvError:
            return EnvError(message, file=display, field=f"line {_line}")

        if e.key in seen:
            raise fail(f"duplicate key {e.key} (first defined on line {seen[e.key]})")
        seen[e.key] = e.line
        if not e.quote and not e.inherit and _SWALLOWED.match(e.raw):
            raise fail(f"{e.key}: Compose reads `{e.key}= {e.raw[:20]}` as the value {e.raw[:20]!r}, not as a "
                       "comment; put the annotation on the line above, or write "
                       f'{e.key}="" {e.raw[:20]}')
        words: list[str] = []
        rotate_command: str | None = None
        for comment in (*e.comments, e.inline_comment or ""):
            body = comment.strip()
            if body == "@rotate-command" or body.startswith(("@rotate-command ", "@rotate-command\t")):
                rotate_command = body[len("@rotate-command"):].strip()  # the rest of the line, as written
                if not rotate_command:
                    raise fail(f"@rotate-command on {e.key} needs a command (the rest of its line)")
                continue
            found = _annotation(comment)
            if found:
                words.extend(found)
        kind: Kind | None = None
        required: bool | None = None
        generator: Generator | None = None
        public_of: str | None = None
        initialises: list[str] = []
        reapplied = False
        i = 0
        while i < len(words):
            word = words[i]
            arg = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("@") else None
            if word not in WORDS:
                raise fail(f"unknown annotation '{word}' on {e.key} (known: {', '.join(WORDS)})")
            if word == "@rotate-command":
                raise fail(f"@rotate-command on {e.key} must begin its own comment line (# @rotate-command ...)")
            if word in ("@secret", "@config", "@public"):
                new_kind: Kind = word[1:]  # type: ignore[assignment]
                if kind is not None and kind != new_kind:
                    raise fail(f"{e.key} is annotated both @{kind} and {word}")
                kind = new_kind
            if word in ("@required", "@optional"):
                if required is not None and required != (word == "@required"):
                    raise fail(f"{e.key} is annotated both @required and @optional")
                required = word == "@required"
            if word == "@secret" and arg is not None:
                try:
                    generator = parse_spec(arg)
                except ValueError as exc:
                    raise fail(str(exc)) from None
                i += 1
            elif word == "@initialises":
                if arg is None:
                    raise fail(f"@initialises on {e.key} needs a service name (@initialises db)")
                initialises.append(arg)
                i += 1
            elif word == "@reapplied":
                if arg is not None:
                    raise fail(f"unexpected '{arg}' after {word} on {e.key}")
                reapplied = True
            elif word == "@public":
                if arg is None:
                    raise fail(f"@public on {e.key} needs the name of a key-pair secret (@public SIGNING_KEY)")
                public_of = arg
                i += 1
            elif arg is not None:
                raise fail(f"unexpected '{arg}' after {word} on {e.key}")
            i += 1
        kind = kind or "config"
        rotation = [w for w in _ROTATION_WORDS if w in words] + (["@rotate-command"] if rotate_command else [])
        if rotation and kind != "secret":
            raise fail(f"{rotation[0]} on {e.key}: only a @secret can initialise a volume")
        if reapplied and (initialises or rotate_command):
            other = "@initialises" if initialises else "@rotate-command"
            raise fail(f"{e.key} is annotated both @reapplied and {other}"
                       " (@reapplied: a plain rotation is safe, nothing to change in place)")
        keys.append(TemplateKey(
            name=e.key, kind=kind, required=True if required is None else required, line=e.line,
            generator=generator, public_of=public_of,
            raw=e.raw if kind == "config" else "", quote=e.quote if kind == "config" else "",
            inherit=e.inherit and kind == "config", doc=e.comments, initialises=tuple(dict.fromkeys(initialises)),
            reapplied=reapplied, rotate_command=rotate_command))
    by_name = {k.name: k for k in keys}
    for k in keys:
        if k.kind != "public":
            continue
        src = by_name.get(k.public_of or "")
        if src is None or src.kind != "secret" or src.generator is None or not src.generator.is_key_pair:
            raise EnvError(f"@public {k.public_of}: {k.public_of} must be a key-pair secret in this file "
                           "(@secret ed25519 or @secret rsa:N)", file=display, field=f"line {k.line}")
    return Template(path=path or Path(display), display=display, keys=tuple(keys))


def load_template(path: Path, *, display: str | None = None, set_in: str = "") -> Template:
    """The template at `path`; `set_in` names the profile whose env.template chose it, if one did."""
    from stackctl.compose.dotenv import read_text

    shown = display or str(path)
    if not path.exists():
        if set_in:
            raise EnvError(f"env template {shown!r} not found", file=set_in, field="env.template",
                           hint="create it (every key the stack needs, annotated) or fix env.template")
        raise EnvError("env template not found", file=shown,
                       hint="create it (every key the stack needs, annotated) or set env.template in the profile")
    return parse_template(read_text(path, shown=shown), display=shown, path=path)
