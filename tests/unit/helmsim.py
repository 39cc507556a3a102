"""A Python stand-in for `helm template` over the small template language `stackctl render helm`
writes (if/end, index, toJson, toString, printf, coalesce, kindIs, not, `.Values`, `.Release.Namespace`,
string literals) and Helm's values merge (a file's map merged into the defaults key by key; null
removes a key). The unit tests use it to check the chart's equality with the render on many shapes
in milliseconds; tests/delivery/test_helm_*.py hold the same property with the real helm.

Anything outside that language raises: a template stackctl starts writing differently fails the unit
tests here instead of being evaluated wrongly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def merge_values(defaults: Any, override: Any) -> Any:
    """Helm's coalescing of a values file over the chart's values.yaml."""
    if not isinstance(defaults, dict) or not isinstance(override, dict):
        return override
    out = dict(defaults)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def template(chart: Path, namespace: str, values_files: list[Path] | None = None) -> list[dict[str, Any]]:
    """The objects `helm template R CHART -f FILE... --namespace NS` renders (no `# Source` comments)."""
    values = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for f in values_files or []:
        values = merge_values(values, yaml.safe_load(f.read_text()) or {})
    out: list[dict[str, Any]] = []
    for path in sorted((chart / "templates").glob("*.yaml")):
        text = render(path.read_text(), values, namespace)
        doc = yaml.safe_load(text)
        if doc is not None:
            out.append(doc)
    return out


def render(text: str, values: dict[str, Any], namespace: str) -> str:
    parts: list[tuple[str, str]] = []  # ("text", s) | ("action", s)
    i = 0
    while True:
        start = text.find("{{", i)
        if start < 0:
            parts.append(("text", text[i:]))
            break
        parts.append(("text", text[i:start]))
        j = start + 2
        in_str = False
        while True:
            if j >= len(text):
                raise ValueError("unclosed action")
            ch = text[j]
            if in_str:
                if ch == "\\":
                    j += 2
                    continue
                if ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif text.startswith("}}", j):
                break
            j += 1
        parts.append(("action", text[start + 2:j]))
        i = j + 2
    out: list[str] = []
    stack: list[bool] = []
    for n, (kind, body) in enumerate(parts):
        if kind == "text":
            if n + 1 < len(parts) and parts[n + 1][1].startswith("-"):
                body = body.rstrip()
            if n > 0 and parts[n - 1][1].endswith("-") and parts[n - 1][0] == "action":
                body = body.lstrip()
            if all(stack):
                out.append(body)
            continue
        action = body.strip("-").strip()
        if action.startswith("if "):
            stack.append(all(stack) and _truthy(_pipeline(_tokens(action[3:]), values, namespace)))
        elif action == "end":
            stack.pop()
        elif all(stack):
            out.append(str(_pipeline(_tokens(action), values, namespace)))
    assert not stack, "unbalanced if/end"
    return "".join(out)


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {})


def _tokens(text: str) -> list[Any]:
    out: list[Any] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()|":
            out.append(ch)
            i += 1
        elif ch == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(("str", json.loads(text[i:j + 1])))
            i = j + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "()|":
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _pipeline(tokens: list[Any], values: dict[str, Any], namespace: str) -> Any:
    commands: list[list[Any]] = [[]]
    depth = 0
    for t in tokens:
        if t == "|" and depth == 0:
            commands.append([])
            continue
        depth += 1 if t == "(" else -1 if t == ")" else 0
        commands[-1].append(t)
    result: Any = _NONE
    for cmd in commands:
        result = _command(cmd, values, namespace, result)
    return result


_NONE = object()


def _command(tokens: list[Any], values: dict[str, Any], namespace: str, piped: Any) -> Any:
    args: list[Any] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "(":
            depth, j = 1, i + 1
            while depth:
                depth += 1 if tokens[j] == "(" else -1 if tokens[j] == ")" else 0
                j += 1
            args.append(("val", _pipeline(tokens[i + 1:j - 1], values, namespace)))
            i = j
            continue
        if isinstance(t, tuple):
            args.append(("val", t[1]))
        elif t == ".Values":
            args.append(("val", values))
        elif t.startswith(".Values."):
            args.append(("val", values.get(t[len(".Values."):])))
        elif t == ".Release.Namespace":
            args.append(("val", namespace))
        else:
            args.append(("fn", t))
        i += 1
    if piped is not _NONE:
        args.append(("val", piped))
    head, rest = args[0], [a[1] for a in args[1:]]
    if head[0] == "val":
        assert not rest, f"a value with arguments: {tokens}"
        return head[1]
    fn = head[1]
    if fn == "index":
        item = rest[0]
        for key in rest[1:]:
            if item is None:
                raise ValueError("index of untyped nil")
            item = item.get(key)
        return item
    if fn == "toJson":
        return json.dumps(rest[0], separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if fn == "include":
        assert rest[0] == "stackctl.image", rest[0]
        image = rest[1]
        suffix = f"@{image['digest']}" if image.get("digest") else f":{image['tag']}" if image.get("tag") else ""
        return f"{image['repository']}{suffix}"
    if fn == "toString":
        return rest[0] if isinstance(rest[0], str) else json.dumps(rest[0])
    if fn == "printf":
        return rest[0].replace("%s", "{}").format(*rest[1:])
    if fn == "coalesce":
        return next((v for v in rest if _truthy(v)), None)
    if fn == "kindIs":
        assert rest[0] == "invalid"
        return rest[1] is None
    if fn == "not":
        return not _truthy(rest[0])
    raise ValueError(f"unknown function {fn}")
