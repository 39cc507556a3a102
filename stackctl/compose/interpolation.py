"""Variable interpolation with Docker Compose v2 (compose-go) semantics.

Supported syntax (exactly what ``docker compose config`` accepts):

* ``$NAME`` and ``${NAME}``; a name is ``[_a-zA-Z][_a-zA-Z0-9]*`` (Compose matches it
  case-insensitively, so the two Unicode letters that case-fold into ASCII, U+017F (long s)
  and U+212A (Kelvin sign), count as name characters too).
* ``$$`` is a literal ``$``; a ``$`` that does not start a name or ``{`` stays literal.
* ``${NAME:-default}`` / ``${NAME-default}``: default when unset or empty / only when unset.
* ``${NAME:?message}`` / ``${NAME?message}``: error when unset or empty / only when unset.
* ``${NAME:+alt}`` / ``${NAME+alt}``: ``alt`` when set and non-empty / when set, else ``""``.
* The text after an operator is itself interpolated, so operators nest
  (``${A:-${B:-x}}``). Like Compose, that text is interpolated *eagerly*: a nested
  ``${X:?...}`` fails, and a nested unset ``${X}`` warns, even when its value is not used.
* Everything else that starts with ``${`` is malformed and raises `ComposeFileError`.

Compose quirks reproduced on purpose (they decide where ``${...}`` ends):

* An operator's text cannot span lines, and it runs to the *last* ``}`` on the line; the
  expression is then cut at the first balanced ``}`` (every ``{`` opens a level and hides
  the character right after it), and whatever follows the cut is interpolated as plain text.
  So ``${A:-x}}`` is ``x}`` and ``${A:-{}}y}`` is ``{}}y`` when ``A`` is unset.

Unset variables without an operator become ``""``; pass ``warn`` to hear about them
(the callback gets the variable name; `unset_warning` formats Compose's message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl.errors import ComposeFileError

__all__ = [
    "LocatedRef",
    "Lookup",
    "VarRef",
    "interpolate",
    "is_name",
    "references",
    "scan_tree",
    "scan_yaml_file",
    "unset_warning",
]

Lookup = Callable[[str], "str | None"]
"""Maps a variable name to its value, or ``None`` when the variable is unset."""

WarnCallback = Callable[[str], None]

OPERATORS: tuple[str, ...] = (":-", "-", ":?", "?", ":+", "+")
REQUIRED_OPERATORS = frozenset({":?", "?"})
DEFAULT_OPERATORS = frozenset({":-", "-"})
ALTERNATIVE_OPERATORS = frozenset({":+", "+"})

# Characters Compose's case-insensitive name pattern accepts (see module docstring).
_NAME_START = frozenset("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\u017f\u212a")
_NAME_CHARS = _NAME_START | frozenset("0123456789")

_ESCAPE_HINT = "escape a literal $ as $$"

MAX_NESTING = 100
"""How deep ``${A:-${B:-...}}`` may nest. Compose has no limit of its own; we refuse beyond a depth
no real file reaches, with a located error, rather than run out of stack (each level is a call)."""


def _too_deep(file: str | None, field: str | None) -> ComposeFileError:
    return ComposeFileError(f"interpolation nested more than {MAX_NESTING} levels deep (Compose resolves it; "
                            f"stackctl refuses beyond that depth)", file=file, field=field)


def is_name(text: str) -> bool:
    """True if ``text`` is a variable name Compose can reference as ``${text}``."""
    return bool(text) and text[0] in _NAME_START and all(c in _NAME_CHARS for c in text)


def unset_warning(name: str) -> str:
    """Compose's warning text for an unset variable that defaults to ``""``."""
    return f'The "{name}" variable is not set. Defaulting to a blank string.'


@dataclass(frozen=True)
class VarRef:
    """One variable reference in a value.

    ``operator`` is ``""`` for ``$X``/``${X}``, else one of ``:-  -  :?  ?  :+  +``;
    ``argument`` is the raw (not yet interpolated) text after the operator;
    ``nested`` is true for references found inside another reference's argument.
    """

    name: str
    operator: str = ""
    argument: str = ""
    braced: bool = False
    nested: bool = False

    @property
    def required(self) -> bool:
        """``${X:?msg}`` or ``${X?msg}``: Compose fails when the variable is missing."""
        return self.operator in REQUIRED_OPERATORS

    @property
    def default(self) -> str | None:
        """Raw default text for ``:-``/``-``, else ``None``."""
        return self.argument if self.operator in DEFAULT_OPERATORS else None

    @property
    def message(self) -> str | None:
        """Raw error message text for ``:?``/``?``, else ``None``."""
        return self.argument if self.operator in REQUIRED_OPERATORS else None

    @property
    def has_fallback(self) -> bool:
        """True when the value is usable without the variable (a default or ``+`` form)."""
        return self.operator in DEFAULT_OPERATORS or self.operator in ALTERNATIVE_OPERATORS


@dataclass(frozen=True)
class LocatedRef:
    """A `VarRef` plus where it occurs: the file and the dotted field path."""

    ref: VarRef
    file: str
    field: str

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def required(self) -> bool:
        return self.ref.required


# --------------------------------------------------------------------------- scanner


@dataclass(frozen=True)
class _Token:
    """One ``$`` construct found by the scanner."""

    start: int
    end: int            # index after the whole match
    kind: str           # "escaped" | "named" | "braced"
    name: str = ""
    operator: str = ""
    argument: str = ""
    rest: str = ""      # text after the balanced cut; interpolated as plain text


def _invalid(template: str, file: str | None, field: str | None) -> ComposeFileError:
    return ComposeFileError(f"invalid interpolation format {template!r}", file=file,
                            field=field, hint=_ESCAPE_HINT)


def _balanced_cut(s: str) -> int:
    """Index of the ``}`` closing the first ``{`` in ``s`` (Compose's counting), or -1."""
    depth = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "}":
            depth -= 1
            if depth == 0:
                return i
        elif c == "{":
            depth += 1
            i += 1  # Compose skips the character after every "{"
        i += 1
    return -1


def _tokens(template: str, file: str | None, field: str | None) -> Iterator[_Token]:
    """Yield the ``$`` constructs of ``template`` left to right; raise on malformed ones."""
    n = len(template)
    i = 0
    while True:
        j = template.find("$", i)
        if j < 0 or j + 1 >= n:
            return
        c = template[j + 1]
        if c == "$":
            yield _Token(j, j + 2, "escaped")
            i = j + 2
            continue
        if c in _NAME_START:
            k = j + 2
            while k < n and template[k] in _NAME_CHARS:
                k += 1
            yield _Token(j, k, "named", name=template[j + 1:k])
            i = k
            continue
        if c != "{":
            i = j + 1  # a lone "$" is literal
            continue
        # "${": a braced expression or an error
        k = j + 2
        if k >= n or template[k] not in _NAME_START:
            raise _invalid(template, file, field)
        while k < n and template[k] in _NAME_CHARS:
            k += 1
        name = template[j + 2:k]
        op = ""
        if template.startswith(":", k) and k + 1 < n and template[k + 1] in "-?+":
            op = template[k:k + 2]
        elif k < n and template[k] in "-?+":
            op = template[k]
        if not op:
            if k < n and template[k] == "}":
                yield _Token(j, k + 1, "braced", name=name)
                i = k + 1
                continue
            raise _invalid(template, file, field)
        arg_start = k + len(op)
        line_end = template.find("\n", arg_start)
        if line_end < 0:
            line_end = n
        close = template.rfind("}", arg_start, line_end)
        if close < 0:
            raise _invalid(template, file, field)
        end = close + 1
        whole = template[j:end]
        cut = _balanced_cut(whole)
        rest = ""
        if cut >= 0:
            rest = whole[cut + 1:]
            whole = whole[:cut + 1]
        argument = whole[arg_start - j:-1]
        yield _Token(j, end, "braced", name=name, operator=op, argument=argument, rest=rest)
        i = end


# --------------------------------------------------------------------------- public API


def interpolate(value: str, lookup: Lookup, *, file: str | None = None,
                field: str | None = None, warn: WarnCallback | None = None, _depth: int = 0) -> str:
    """Interpolate ``value`` like Compose does.

    ``lookup(name)`` returns the variable's value or ``None`` if unset. ``warn(name)`` is
    called for each unset variable used without an operator (Compose warns and uses ``""``).
    Raises `ComposeFileError` (with ``file`` and ``field``) for a malformed expression or a
    missing required variable (``required variable X is missing a value: msg``), or an
    expression nested deeper than `MAX_NESTING`.
    """
    if _depth > MAX_NESTING:
        raise _too_deep(file, field)
    out: list[str] = []
    pos = 0
    for tok in _tokens(value, file, field):
        out.append(value[pos:tok.start])
        pos = tok.end
        if tok.kind == "escaped":
            out.append("$")
            continue
        if not tok.operator:
            current = lookup(tok.name)
            if current is None:
                if warn is not None:
                    warn(tok.name)
                current = ""
            out.append(current)
            continue
        # Compose interpolates the operator's text before it looks at the variable.
        arg = interpolate(tok.argument, lookup, file=file, field=field, warn=warn, _depth=_depth + 1)
        current = lookup(tok.name)
        op = tok.operator
        if op == ":-":
            result = current if current else arg
        elif op == "-":
            result = arg if current is None else current
        elif op == ":+":
            result = arg if current else ""
        elif op == "+":
            result = arg if current is not None else ""
        else:
            if current is None or (op == ":?" and current == ""):
                text = f"required variable {tok.name} is missing a value"
                if arg:
                    text = f"{text}: {arg}"
                raise ComposeFileError(text, file=file, field=field)
            result = current
        out.append(result)
        if tok.rest:
            out.append(interpolate(tok.rest, lookup, file=file, field=field, warn=warn, _depth=_depth + 1))
    out.append(value[pos:])
    return "".join(out)


def references(value: str, *, file: str | None = None,
               field: str | None = None) -> list[VarRef]:
    """Every variable ``value`` refers to, in order, including those nested in operator text.

    Raises `ComposeFileError` for a malformed expression, as Compose would.
    """
    refs: list[VarRef] = []
    _collect(value, refs, nested=False, file=file, field=field)
    return refs


def _collect(value: str, refs: list[VarRef], *, nested: bool, file: str | None,
             field: str | None, depth: int = 0) -> None:
    if depth > MAX_NESTING:
        raise _too_deep(file, field)
    for tok in _tokens(value, file, field):
        if tok.kind == "escaped":
            continue
        refs.append(VarRef(name=tok.name, operator=tok.operator, argument=tok.argument,
                           braced=tok.kind == "braced", nested=nested))
        if tok.operator:
            _collect(tok.argument, refs, nested=True, file=file, field=field, depth=depth + 1)
        if tok.rest:
            _collect(tok.rest, refs, nested=nested, file=file, field=field, depth=depth + 1)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Yield ``(field path, string value)`` for every string value (never keys) in a tree."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from _walk(child, _join(path, key))
    elif isinstance(node, (list, tuple)):
        for index, child in enumerate(node):
            yield from _walk(child, f"{path}[{index}]")


def scan_tree(tree: Any, *, file: str = "<string>") -> list[LocatedRef]:
    """Every variable reference in the string values of an already loaded YAML tree."""
    found: list[LocatedRef] = []
    for field, text in _walk(tree, ""):
        for ref in references(text, file=file, field=field or None):
            found.append(LocatedRef(ref=ref, file=file, field=field))
    return found


def scan_yaml_file(path: str | Path) -> list[LocatedRef]:
    """Load a Compose YAML file and report every variable reference in its values.

    Fields are dotted paths with list indexes, e.g. ``services.api.environment.DB_PASSWORD``
    or ``services.api.ports[0]``. Custom tags such as ``!reset``/``!override`` are accepted.
    Raises `ComposeFileError` naming the file for unreadable YAML or a malformed expression.
    """
    import yaml  # lazy: keep this module cheap to import

    from stackctl.compose import yaml as composeyaml

    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ComposeFileError(f"cannot read file: {exc.strerror or exc}", file=name) from exc
    except UnicodeDecodeError as exc:
        raise ComposeFileError(f"not valid UTF-8: {exc.reason}", file=name) from exc
    try:
        docs: Iterable[Any] = list(composeyaml.load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ComposeFileError(f"invalid YAML: {problem}", file=name, field=where) from exc
    found: list[LocatedRef] = []
    for doc in docs:
        found.extend(scan_tree(doc, file=name))
    return found
