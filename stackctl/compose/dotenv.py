"""`.env` files exactly as Docker Compose v2 (compose-go's dotenv parser) reads them.

Syntax, as Compose really implements it (verified against ``docker compose config``):

* Blank lines and lines whose first non-blank character is ``#`` are ignored. A leading
  UTF-8 byte-order mark is ignored.
* ``export KEY=...``: the word ``export`` is dropped when a space, tab, CR, LF or form feed
  follows it.
* ``KEY=value`` and YAML-style ``KEY: value``. Key characters: Unicode letters and digits,
  ``_ . - [ ]``; a space inside a key is an error (a tab is kept as part of the key);
  surrounding blanks are dropped.
* Unquoted values run to the end of the line and stop at the first ``" #"`` (space, hash:
  ``a#b`` keeps its hash), then trailing whitespace is trimmed. No escapes. ``$`` expressions
  are interpolated (see below).
* ``'single quoted'``: literal, may span lines; ``\\'`` is a quote, any other backslash is
  kept as is (``'a\\\\b'`` is ``a\\\\b``). Never interpolated.
* ``"double quoted"``: may span lines; escapes ``\\a \\b \\f \\n \\r \\t \\v \\\\ \\" \\$``
  (``\\$`` is a literal dollar); ``\\0`` becomes a lone backslash; every other ``\\x`` is
  kept as the two characters. Interpolated after escapes are processed.
* After a closing quote the rest of the line may hold a ``# comment``; anything else there
  is read as the next statement (``A="x" B=y`` defines two keys).
* ``KEY`` alone on a line takes ``KEY`` from the environment, or is skipped when unset.
  ``KEY=`` is the empty string. A last line without ``=`` and without a newline is stored
  under the empty key (a Compose quirk: ``"...\\nFOO"`` yields ``{"": "FOO"}``).

Interpolation inside a file looks a name up in the given environment first and only then
in the values defined earlier (by earlier lines or earlier files of the same chain).
The final value of a key is always the file's own value: the environment does not
override it here (Compose applies the shell's precedence when it merges the project env).

Why not python-dotenv: it reads a different dialect. On the 30 `.env` shapes of `bench/run.py
dotenv_libs` (Compose itself as the reference) it agrees on 22, this module on all 30; it misses
`KEY: value`, `${X:+alt}`, `${X:-d}` when X is empty, `\\$`, two statements on a line, and it
interpolates inside single quotes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackctl.compose.interpolation import interpolate
from stackctl.errors import ComposeFileError, EnvError

__all__ = [
    "EnvEntry",
    "format_template",
    "format_value",
    "is_valid_key",
    "load",
    "load_chain",
    "parse",
    "parse_chain",
    "parse_entries",
    "project_environment",
    "render",
]

WarnCallback = Callable[[str], None]

# Go's unicode.IsSpace (Python's str.isspace() also counts \x1c-\x1f, Go does not).
_WHITESPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_CHARS = "".join(sorted(_WHITESPACE))
# The blanks Compose skips inside a line (never a newline).
# A run of whitespace other than a newline, skipped at once (a line of 6,000 blanks is not 6,000 steps).
_BLANK_RUN = re.compile("[" + re.escape("".join(sorted(_WHITESPACE - {"\n"}))) + "]+")
_BLANK = frozenset("\t\v\f\r \x85\xa0")
_EXPORT_SEPARATORS = frozenset(" \t\n\f\r")
_KEY_PUNCTUATION = frozenset("_.-[]")
_BOM = "\ufeff"

# Escapes Compose processes inside double quotes. "\$" becomes "$$" so that the
# interpolation step that follows yields a literal "$".
_DOUBLE_QUOTE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "$": "$$", "0": "\\",
}


def _is_key_char(c: str) -> bool:
    # Go's unicode.IsLetter / unicode.IsNumber: general categories L* and N*.
    return c in _KEY_PUNCTUATION or unicodedata.category(c)[0] in "LN"


def is_valid_key(key: str) -> bool:
    """True if ``render`` can write ``key``: non-empty, only letters, digits and ``_.-[]``."""
    return bool(key) and all(_is_key_char(c) for c in key)


@dataclass(frozen=True)
class EnvEntry:
    """One assignment in a `.env` file, before interpolation.

    ``raw`` is the value with quotes removed and escapes processed but not interpolated:
    for ``quote == "'"`` it is the final literal value; otherwise it is a Compose template
    (a ``\\$`` escape inside double quotes appears as ``$$``). ``quote`` is ``""``, ``"'"``
    or ``'"'``. ``line`` is 1-based. ``inherit`` is true for a bare ``KEY`` (value taken
    from the environment). ``comments`` are the comment lines directly above the entry (no
    blank line in between) and ``inline_comment`` the comment after the value on the same
    line; both without the ``#`` and surrounding whitespace.
    """

    key: str
    raw: str
    quote: str = ""
    line: int = 1
    inherit: bool = False
    comments: tuple[str, ...] = ()
    inline_comment: str | None = None

    @property
    def is_template(self) -> bool:
        """True if the value is interpolated (unquoted or double-quoted)."""
        return not self.inherit and self.quote != "'"


class _Scanner:
    """Splits `.env` text into entries (syntax only)."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text[1:] if text.startswith(_BOM) else text
        self.filename = filename
        self.pos = 0
        self.line = 1

    def error(self, message: str, line: int | None = None, hint: str | None = None) -> EnvError:
        return EnvError(message, file=self.filename, field=f"line {line or self.line}",
                        hint=hint)

    def advance_to(self, pos: int) -> None:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos

    def end_of_line(self, pos: int) -> int:
        eol = self.text.find("\n", pos)
        return len(self.text) if eol < 0 else eol

    def entries(self) -> Iterator[EnvEntry]:
        text = self.text
        n = len(text)
        pending: list[str] = []
        blank_line = True
        while self.pos < n:
            c = text[self.pos]
            if c == "\n":
                if blank_line:
                    pending.clear()
                blank_line = True
                self.advance_to(self.pos + 1)
            elif c in _WHITESPACE:
                match = _BLANK_RUN.match(text, self.pos)
                self.pos = match.end() if match else self.pos + 1
            elif c == "#":
                eol = self.end_of_line(self.pos)
                pending.append(text[self.pos + 1:eol].strip())
                blank_line = False
                self.pos = eol
            else:
                blank_line = False
                entry = self.statement(tuple(pending))
                pending = []
                if entry is not None:
                    yield entry

    def statement(self, comments: tuple[str, ...]) -> EnvEntry | None:
        text = self.text
        n = len(text)
        start_line = self.line
        p = self.pos
        if text.startswith("export", p) and p + 6 < n and text[p + 6] in _EXPORT_SEPARATORS:
            p += 6
            while p < n and text[p] in _BLANK:
                p += 1
        key_start = p
        i = p
        while i < n:
            c = text[i]
            if c in "=:\n":
                break
            if c in _BLANK or _is_key_char(c):
                i += 1
                continue
            raise self.error(f"unexpected character {c!r} in variable name "
                             f"{text[key_start:self.end_of_line(key_start)]!r}", start_line,
                             hint="keys may use letters, digits and _ . - [ ]")
        if key_start >= n:
            raise self.error("'export' must be followed by a variable name", start_line)
        if i >= n:
            # Compose quirk: a last line without "=", ":" or newline is the value of "".
            key = ""
            value_pos = key_start
        else:
            key = text[key_start:i].rstrip(_WHITESPACE_CHARS)
            if text[i] == "\n":
                if " " in key:
                    raise self.error(f"key {key!r} cannot contain a space", start_line)
                self.advance_to(i)
                return EnvEntry(key=key, raw="", line=start_line, inherit=True,
                                comments=comments)
            value_pos = i + 1
        if " " in key:
            raise self.error(f"key {key!r} cannot contain a space", start_line)
        while value_pos < n and text[value_pos] in _BLANK:
            value_pos += 1
        if value_pos < n and text[value_pos] in "'\"":
            return self.quoted(key, value_pos, start_line, comments)
        eol = self.end_of_line(value_pos)
        raw = text[value_pos:eol]
        inline: str | None = None
        cut = raw.find(" #")
        if cut >= 0:
            inline = raw[cut + 2:].strip()
            raw = raw[:cut]
        raw = raw.rstrip(_WHITESPACE_CHARS)
        self.advance_to(eol)
        return EnvEntry(key=key, raw=raw, quote="", line=start_line, comments=comments,
                        inline_comment=inline)

    def quoted(self, key: str, start: int, line: int, comments: tuple[str, ...]) -> EnvEntry:
        text = self.text
        n = len(text)
        quote = text[start]
        i = start + 1
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == quote:
                break
            i += 1
        if i >= n:
            raise self.error(f"unterminated quoted value for {key!r}", line,
                             hint=f"close the value with {quote}")
        content = text[start + 1:i]
        raw = _unescape_double(content) if quote == '"' else _unescape_single(content)
        p = i + 1
        while p < n and text[p] in _BLANK:
            p += 1
        inline: str | None = None
        if p < n and text[p] == "#":
            eol = self.end_of_line(p)
            inline = text[p + 1:eol].strip()
            p = eol
        self.advance_to(p)
        return EnvEntry(key=key, raw=raw, quote=quote, line=line, comments=comments,
                        inline_comment=inline)


def _unescape(content: str, escape: Callable[[str], str]) -> str:
    """Replace each backslash pair `\\X` with `escape(X)`; a trailing lone backslash stays."""
    out: list[str] = []
    i = 0
    n = len(content)
    while i < n:
        c = content[i]
        if c == "\\" and i + 1 < n:
            out.append(escape(content[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _unescape_double(content: str) -> str:
    return _unescape(content, lambda nxt: _DOUBLE_QUOTE_ESCAPES.get(nxt, "\\" + nxt))


def _unescape_single(content: str) -> str:
    return _unescape(content, lambda nxt: "'" if nxt == "'" else "\\" + nxt)


def parse_entries(text: str, *, filename: str = "<string>") -> list[EnvEntry]:
    """Parse `.env` text into entries without interpolating anything.

    Raises `EnvError` naming ``filename`` and the line for malformed input.
    """
    return list(_Scanner(text, filename).entries())


def _evaluate(entries: Iterable[EnvEntry], filename: str, environ: Mapping[str, str],
              acc: dict[str, str], warn: WarnCallback | None) -> dict[str, str]:
    def lookup(name: str) -> str | None:
        value = environ.get(name)
        return acc.get(name) if value is None else value

    out: dict[str, str] = {}
    for entry in entries:
        if entry.inherit:
            value = lookup(entry.key)
            if value is None:
                continue
        elif entry.quote == "'":
            value = entry.raw
        else:
            try:
                value = interpolate(entry.raw, lookup, warn=warn)
            except ComposeFileError as exc:
                raise EnvError(exc.message, file=filename, field=f"line {entry.line}",
                               hint=exc.hint) from exc
        acc[entry.key] = value
        out[entry.key] = value
    return out


def parse(text: str, *, filename: str = "<string>", environ: Mapping[str, str] | None = None,
          warn: WarnCallback | None = None) -> dict[str, str]:
    """The values Compose reads from `.env` text, in file order.

    ``environ`` is the environment used for bare ``KEY`` lines and, with priority over the
    file's own earlier lines, for interpolation (``None``: no environment; pass
    ``os.environ`` or a project environment explicitly). ``warn(name)`` is called for unset variables
    used without a default. Raises `EnvError` with the file and line.
    """
    return _evaluate(_Scanner(text, filename).entries(), filename, environ or {}, {}, warn)


def read_text(path: str | Path, *, shown: str | None = None) -> str:
    """A file as Compose reads it: UTF-8, line endings untouched (no universal-newline translation).
    Errors name `shown` (default: the path) and, for bad UTF-8, the line."""
    name = shown or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise EnvError("file not found", file=name) from None
    except OSError as exc:
        raise EnvError(f"cannot read: {exc.strerror or type(exc).__name__}", file=name) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise EnvError("not valid UTF-8", file=name, field=f"line {line}") from None


def load(path: str | Path, *, environ: Mapping[str, str] | None = None,
         warn: WarnCallback | None = None) -> dict[str, str]:
    """Read and `parse` one `.env` file; errors name the file."""
    return parse(read_text(path), filename=str(path), environ=environ, warn=warn)


def parse_chain(texts: Iterable[tuple[str, str]], *, environ: Mapping[str, str] | None = None,
                warn: WarnCallback | None = None) -> dict[str, str]:
    """Parse several ``(filename, text)`` env files as one chain, like Compose reads a
    service's ``env_file`` list or repeated ``--env-file`` flags.

    Later files win. Interpolation in each file looks in ``environ`` first, then in
    everything set so far (earlier lines of this file and earlier files).
    """
    env = environ or {}
    acc: dict[str, str] = {}
    merged: dict[str, str] = {}
    for filename, text in texts:
        merged.update(_evaluate(_Scanner(text, filename).entries(), filename, env, acc, warn))
    return merged


def load_chain(paths: Iterable[str | Path], *, environ: Mapping[str, str] | None = None,
               warn: WarnCallback | None = None) -> dict[str, str]:
    """`parse_chain` over files read from disk."""
    return parse_chain(((str(p), read_text(p)) for p in paths), environ=environ, warn=warn)


def project_environment(environ: Mapping[str, str], *, project_dir: str | Path | None = None,
                        env_files: Sequence[str | Path] | None = None,
                        warn: WarnCallback | None = None) -> dict[str, str]:
    """The environment Compose interpolates Compose files with.

    With ``env_files`` (Compose's ``--env-file``, in order) those files are read as a chain
    and the project's ``.env`` is NOT read; otherwise ``<project_dir>/.env`` is read if it
    exists. The shell environment ``environ`` wins over every file. A missing
    ``--env-file`` is an error.
    """
    if env_files:
        from_files = load_chain(env_files, environ=environ, warn=warn)
    elif project_dir is not None and (Path(project_dir) / ".env").is_file():
        from_files = load(Path(project_dir) / ".env", environ=environ, warn=warn)
    else:
        from_files = {}
    merged = dict(from_files)
    merged.update(environ)
    return merged


# --------------------------------------------------------------------------- writing

_SAFE_UNQUOTED = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"
)
_DOUBLE_QUOTE_ENCODE = {
    "\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v",
}


def _printable_for_single_quotes(c: str) -> bool:
    if c == "\t":
        return True
    if c == "'":
        return False
    category = unicodedata.category(c)
    return category[0] != "C" and category not in ("Zl", "Zp")


def format_value(value: str, *, key: str | None = None) -> str:
    """The `.env` spelling of ``value`` that Compose reads back exactly.

    Plain values (letters, digits, ``_@%+=:,./-``) stay unquoted; values without ``'``,
    control characters or a trailing backslash get single quotes (no escapes, no
    interpolation); anything else gets double quotes with ``\\\\ \\" \\$ \\n \\r \\t``
    (and ``\\a \\b \\f \\v``) escaped. Raises `EnvError` for text that cannot be written
    as UTF-8 (lone surrogates).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EnvError(f"value cannot be written to an env file: {exc.reason} at "
                       f"position {exc.start}", field=key) from exc
    if value == "":
        return ""
    if all(c in _SAFE_UNQUOTED for c in value):
        return value
    if not value.endswith("\\") and all(_printable_for_single_quotes(c) for c in value):
        return f"'{value}'"
    return '"' + "".join(_DOUBLE_QUOTE_ENCODE.get(c, c) for c in value) + '"'


_SAFE_TEMPLATE = _SAFE_UNQUOTED | frozenset("${}?")


def format_template(template: str) -> str:
    """The `.env` spelling of a Compose template that Compose reads back as that template.

    The inverse of `EnvEntry.raw` for unquoted and double-quoted entries: ``$`` expressions
    stay live (``$$`` stays a literal dollar). Simple templates such as
    ``${HOST:-localhost}`` stay unquoted; others get double quotes with backslash, quote
    and control characters escaped.
    """
    try:
        template.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EnvError(f"template cannot be written to an env file: {exc.reason}") from exc
    if all(c in _SAFE_TEMPLATE for c in template):
        return template
    return '"' + "".join(_DOUBLE_QUOTE_ENCODE.get(c, c) if c != "$" else c
                         for c in template) + '"'


def render(mapping: Mapping[str, str], *, header: str | None = None) -> str:
    """`.env` text for ``mapping`` that Compose reads back exactly (see `format_value`).

    ``header`` lines are written first as ``# `` comments. Raises `EnvError` naming the key
    for a key Compose cannot read (empty, or characters other than letters, digits,
    ``_ . - [ ]``) or a value that cannot be written.
    """
    lines: list[str] = []
    if header is not None:
        for line in header.splitlines() or [""]:
            lines.append(f"# {line}".rstrip())
    for key, value in mapping.items():
        if not is_valid_key(key):
            raise EnvError(f"cannot write key {key!r} to an env file", field=key or "<empty>",
                           hint="keys may use letters, digits and _ . - [ ]")
        lines.append(f"{key}={format_value(value, key=key)}")
    return "".join(f"{line}\n" for line in lines)


def source_line(entry: EnvEntry) -> str:
    """The entry as a line of an env file that reads back the same (`KEY=value`, or `KEY` alone to
    inherit it), in the quoting it was written with: a literal single-quoted value stays literal, the
    rest keeps its `${...}` references."""
    if entry.inherit:
        return entry.key
    value = format_value(entry.raw, key=entry.key) if entry.quote == "'" else format_template(entry.raw)
    return f"{entry.key}={value}"
