"""A small typed reader over parsed YAML that knows where it is, so every profile error is located
(`profiles/production.yaml: services.web.replicas: must be an integer, got a string ('two')`)."""

from __future__ import annotations

import re
from typing import Any

from stackctl.errors import ProfileError

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")  # an environment variable name
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class Node:
    """One mapping of the profile and its dotted path (`services.web`): each getter checks one key and
    raises a `ProfileError` that names the file and the key."""

    def __init__(self, data: Any, file: str, path: str) -> None:
        self.data = data
        self.file = file
        self.path = path

    def fail(self, message: str, key: str | None = None) -> ProfileError:
        where = self._join(key) if key is not None else self.path
        return ProfileError(message, file=self.file, field=where or None)

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def mapping(self, key: str, *, allowed: tuple[str, ...] | None = None, required: bool = False) -> Node | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"must be a mapping, got {kind_of(value)}", key)
        node = Node(value, self.file, self._join(key))
        if allowed is not None:
            node.only(allowed)
        return node

    def only(self, allowed: tuple[str, ...]) -> None:
        for k in self.data:
            if not isinstance(k, str) or k not in allowed:
                raise self.fail(f"unknown field (expected one of: {', '.join(allowed)})", str(k))

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise self.fail("is required", key)
        return value

    def string(self, key: str, *, required: bool = False, pattern: re.Pattern[str] | None = None,
               what: str = "") -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or (not value and required):
            raise self.fail(f"must be a non-empty string, got {kind_of(value)}", key)
        if pattern is not None and not pattern.match(value):
            raise self.fail(what or f"must match {pattern.pattern}", key)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(f"must be true or false, got {kind_of(value)}", key)
        return value

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"must be an integer, got {kind_of(value)}", key)
        if minimum is not None and value < minimum:
            raise self.fail(f"must be ≥ {minimum}, got {value}", key)
        if maximum is not None and value > maximum:
            raise self.fail(f"must be ≤ {maximum}, got {value}", key)
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if value not in choices:
            raise self.fail(f"must be one of {', '.join(choices)}, got {value!r}", key)
        return str(value)

    def string_list(self, key: str, *, required: bool = False, pattern: re.Pattern[str] | None = None,
                    what: str = "") -> tuple[str, ...]:
        value = self._get(key, required)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(f"must be a list of strings, got {kind_of(value)}", key)
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"must be a non-empty string, got {kind_of(item)}", f"{key}[{i}]")
            if pattern is not None and not pattern.match(item):
                raise self.fail(what or f"must match {pattern.pattern}", f"{key}[{i}]")
            out.append(item)
        if required and not out:
            raise self.fail("must list at least one entry", key)
        return tuple(out)


def kind_of(value: Any) -> str:
    """What a value is, as an error shows it: `a string ('two')`, `a list`, `nothing`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_UNUSABLE = re.compile(r"[\x00\ud800-\udfff]")


def check_text(data: Any, file: str, path: str = "") -> None:
    """Refuse a NUL byte or a lone surrogate anywhere in the profile (a YAML "\\0" or "\\ud800" escape): no
    path, argument or file can hold one, so it would otherwise fail deep inside whatever uses it."""
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _UNUSABLE.search(key):
                raise ProfileError(f"key {key!r} holds a NUL byte or a lone surrogate", file=file, field=path or None)
            check_text(value, file, where)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            check_text(item, file, f"{path}[{i}]")
    elif isinstance(data, str) and _UNUSABLE.search(data):
        raise ProfileError(f"{data!r} holds a NUL byte or a lone surrogate, which no path or value can hold",
                           file=file, field=path or None)
