"""A small, deterministic YAML writer for Kubernetes objects (plain dicts, lists, str, int, bool).

Why not PyYAML's emitter: its output depends on whether LibYAML is installed (the two emitters fold
long strings and escape characters differently), so "same input, same bytes" would not hold across
machines; and it writes some strings plain that Kubernetes' YAML 1.1 parser reads as something
else (`y`, `n`, `1e3` become a boolean and a number for kubectl). This writer never folds lines,
keeps the block style `kubectl` users know (`- name: ...` lists at their key's indentation, `|`
blocks for multi-line text), and quotes every string that could be read as anything but a string.
Its output is checked to load back to the same data (tests/unit/test_render_yaml.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from stackctl.kubernetes.names import FileMode

# A plain (unquoted) scalar: ASCII letters, digits and punctuation that is never special inside a
# block-context plain scalar; the first character further restricted (no indicator, no digit).
_PLAIN_CHARS = re.compile(r"^[A-Za-z0-9 _./$(){}\[\]=+~^%@*!?,;:<>&|#'\"\\-]+$")
_PLAIN_FIRST = re.compile(r"^([A-Za-z_/$(]|\.[^\d]|-[^\s\d.])")
# YAML 1.1 (kubectl, sigs.k8s.io/yaml) and 1.2 words that resolve to booleans, null or merge keys.
_RESERVED = frozenset(
    w for base in ("y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf")
    for w in (base, base.upper(), base.capitalize())) | {"~", "=", "<<", ".inf", ".Inf", ".INF", ".nan", ".NaN",
                                                         ".NAN"}
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
            "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N", "\u2028": "\\L",
            "\u2029": "\\P"}


def dump(data: Any) -> str:
    """One YAML document (no `---`) for `data`."""
    out: list[str] = []
    if isinstance(data, Mapping):
        if not data:
            return "{}\n"
        _mapping(out, data, 0)
        return "".join(out)
    if isinstance(data, (list, tuple)):
        if not data:
            return "[]\n"
        _sequence(out, data, 0)
        return "".join(out)
    return _scalar(data, 0) + "\n"


def dump_all(documents: Sequence[Any]) -> str:
    return "".join(f"---\n{dump(doc)}" for doc in documents)


# A string's written form depends on its indentation only when it is a `|` block (multi-line), and a
# render writes the same keys and many of the same values thousands of times: memoized. Bounded so a
# long-lived process (the tests) does not grow without end.
_KEYS: dict[str, str] = {}
_VALUES: dict[str, str] = {}
_MEMO_LIMIT = 100_000


def _key(key: Any) -> str:
    text = str(key)
    found = _KEYS.get(text)
    if found is None:
        found = _string(text, 0, key=True)
        if len(_KEYS) < _MEMO_LIMIT:
            _KEYS[text] = found
    return found


def _mapping(out: list[str], data: Mapping[str, Any], indent: int) -> None:
    pad = " " * indent
    for key, value in data.items():
        head = f"{pad}{_key(key)}:"
        if isinstance(value, Mapping) and value:
            out.append(head + "\n")
            _mapping(out, value, indent + 2)
        elif isinstance(value, (list, tuple)) and value:
            out.append(head + "\n")
            _sequence(out, value, indent)  # `- ` at the key's indentation, as kubectl writes it
        else:
            out.append(f"{head} {_scalar(value, indent + 2)}\n")


def _sequence(out: list[str], items: Sequence[Any], indent: int) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, Mapping) and item:
            first = len(out)
            _mapping(out, item, indent + 2)
            out[first] = f"{pad}- {out[first][indent + 2:]}"
        elif isinstance(item, (list, tuple)) and item:
            first = len(out)
            _sequence(out, item, indent + 2)
            out[first] = f"{pad}- {out[first][indent + 2:]}"
        else:
            out.append(f"{pad}- {_scalar(item, indent + 2)}\n")


def _scalar(value: Any, indent: int, *, key: bool = False) -> str:
    if type(value) is str:  # the common case first
        if "\n" in value:
            return _string(value, indent, key=key)
        found = _VALUES.get(value)
        if found is None:
            found = _string(value, indent, key=key)
            if len(_VALUES) < _MEMO_LIMIT:
                _VALUES[value] = found
        return found
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, FileMode):
        return f"0{int(value):o}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return _string(str(value), indent, key=key)


def _string(text: str, indent: int, *, key: bool = False) -> str:
    if not key and "\n" in text and _literal_ok(text):
        return _literal(text, indent)
    if _plain_ok(text):
        return text
    if "\n" not in text and not _UNPRINTABLE.search(text):
        return "'" + text.replace("'", "''") + "'"
    return _double(text)


def _double(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            out.append(f"\\x{ord(ch):02x}")
        elif _UNPRINTABLE.match(ch):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _plain_ok(text: str) -> bool:
    if text != text.strip() or text in _RESERVED:
        return False
    if not _PLAIN_FIRST.match(text) or not _PLAIN_CHARS.match(text):
        return False
    return not (": " in text or " #" in text or text.endswith(":"))


def _literal_ok(text: str) -> bool:
    body = text.rstrip("\n")
    if not body or body.startswith((" ", "\t")) or _UNPRINTABLE.search(text) or "\r" in text:
        return False
    return all(line == line.rstrip(" \t") for line in body.split("\n"))


def _literal(text: str, indent: int) -> str:
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    chomp = "-" if trailing == 0 else "" if trailing == 1 else "+"
    pad = " " * indent
    lines = [f"{pad}{line}" if line else "" for line in body.split("\n")]
    extra = "\n" * (trailing - 1) if trailing > 1 else ""
    return f"|{chomp}\n" + "\n".join(lines) + extra
