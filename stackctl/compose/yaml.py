"""Reading YAML (and JSON) with bounds of our own, for Compose files read as written (which variable a
value references, which service uses it) rather than as Compose resolved them, and for profiles.

Compose files may carry merge tags (`!reset`, `!override`) that PyYAML's safe loader rejects; the Compose
loader accepts any local tag and builds the plain node underneath it.

Every loader here refuses, with a `yaml.MarkedYAMLError` that names the line, a document
- nested deeper than `MAX_DEPTH` levels (PyYAML and `json` recurse once per level and would end in a
  RecursionError around 1,000–3,000 levels), or
- whose aliases expand to more than `MAX_NODES` nodes, or refer to themselves: a ~1.7 KB "billion
  laughs" file expands to billions of nodes, and every walker over the loaded tree (the variable scan)
  visits a shared alias once per reference. The check counts each node once (memoized), so it is linear
  in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 200
"""Nesting levels a YAML/JSON document may have (after alias expansion). Real files stay below 20."""

MAX_NODES = 200_000
"""Nodes a YAML document may expand to through its aliases. A 5,000-line Compose file has ~20,000."""

_cache: dict[str, type] = {}


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _refuse(problem: str, node: Any) -> Exception:
    import yaml

    err = yaml.composer.ComposerError(None, None, problem, node.start_mark)
    err.stackctl_bound = True  # type: ignore[attr-defined]  # tells bounds_problem() it is one of ours
    return err


def check_expansion(root: Any) -> None:
    """Raise a `yaml.MarkedYAMLError` if the node graph under `root`, with every alias expanded, is
    deeper than MAX_DEPTH, larger than MAX_NODES, or recursive. Iterative and memoized by node."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_DEPTH:
                raise _refuse(f"nested more than {MAX_DEPTH} levels deep (stackctl's limit)", node)
            if size[key] > MAX_NODES:
                raise _refuse(f"aliases expand to more than {MAX_NODES:,} nodes (stackctl's limit; "
                              f"an alias bomb?)", node)
            continue
        if key in size:
            continue
        if key in entered:  # entered, not finished, popped again: an ancestor (LIFO), so a cycle
            raise _refuse("recursive alias (a node that contains itself)", node)
        entered.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def _tree_within_bounds(root: Any) -> bool:
    """True if a node tree without aliases is within MAX_DEPTH and MAX_NODES: one plain walk, ~10x
    cheaper than `check_expansion`'s memoized one (which a graph with aliases needs)."""
    count = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, level = stack.pop()
        count += 1
        if level > MAX_DEPTH or count > MAX_NODES:
            return False
        value = node.value
        if type(value) is list:  # a mapping ([(key, value), ...]) or a sequence ([node, ...])
            for item in value:
                if type(item) is tuple:
                    stack.append((item[0], level + 1))
                    stack.append((item[1], level + 1))
                else:
                    stack.append((item, level + 1))
    return True


def _loader(compose_tags: bool) -> type:
    name = "compose" if compose_tags else "safe"
    if name in _cache:
        return _cache[name]
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML stubs leave it untyped
                    raise _refuse(f"nested more than {MAX_DEPTH} levels deep (stackctl's limit)", event)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def compose_document(self) -> Any:
            node = super().compose_document()
            check_expansion(node)
            return node

    if compose_tags:
        def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
            if isinstance(node, yaml.MappingNode):
                return loader.construct_mapping(node, deep=True)
            if isinstance(node, yaml.SequenceNode):
                return loader.construct_sequence(node, deep=True)
            assert isinstance(node, yaml.ScalarNode)  # the only other kind of node
            return loader.construct_scalar(node)

        BoundedLoader.add_multi_constructor("!", _any_tag)
    _cache[name] = BoundedLoader
    return BoundedLoader


def load(text: str) -> Any:
    """The first document of a Compose file (yaml.YAMLError on bad YAML or one beyond the bounds), as
    `yaml.load` reads it (a second document is an error). Parsed once per process (`documents`)."""
    import yaml

    docs, nodes = _parsed(text)
    if len(nodes) > 1:
        raise yaml.composer.ComposerError("expected a single document in the stream", nodes[0].start_mark,
                                          "but found another document", nodes[1].start_mark)
    return docs[0] if docs else None


def load_all(text: str) -> Iterator[Any]:
    """Every document of a Compose file. Parsed once per process (`documents`)."""
    return iter(_parsed(text)[0])


def documents(text: str) -> tuple[Any, ...]:
    """Every document of a Compose file, parsed once per process and text: one command reads a
    Compose file in several places (the bounds check before `docker compose config`, the variable
    scan, the environment templates, the secrets a volume holds), and a 300-service file takes
    ~0.1 s to parse even with libyaml. Keyed by the text itself, so an edited file is parsed anew.
    The trees are shared: callers read them and never change them."""
    return _parsed(text)[0]


_PARSED: dict[str, Any] = {}  # text → (documents, nodes), or the YAMLError it raised
_REPARSE_MAX = 512 * 1024  # bytes: above this, an error libyaml found is not re-parsed for the same wording
_PARSED_MAX = 64  # texts kept (a command reads a handful; a long-lived process must not grow without end)


def _parsed(text: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(documents, their nodes) of `text`: composed by libyaml when installed (~10x faster than the
    pure-Python parser), bounds checked on the nodes, built by the Compose loader's constructor.

    libyaml refuses more than 1,000 levels of nesting itself (its recursive composer cannot overflow
    the C stack). Any error on that path (libyaml's, our bounds', the constructor's) is raised by the
    pure-Python parser instead, so the messages, with their marks and snippets, are the same with or
    without libyaml (and our depth error stands for a document libyaml refuses as too deep)."""
    import yaml

    found = _PARSED.get(text)
    if isinstance(found, yaml.YAMLError):
        raise found  # a text refused once is refused again without a second parse
    if found is not None:
        return found  # type: ignore[no-any-return]  # the (documents, nodes) stored below
    constructor = _loader(True)("")
    try:
        if not getattr(yaml, "__with_libyaml__", False):
            raise yaml.YAMLError("no libyaml")
        nodes = tuple(yaml.compose_all(text, Loader=yaml.CSafeLoader))  # a safe loader: safe
        for node in nodes:
            if "*" in text or not _tree_within_bounds(node):
                check_expansion(node)  # the exact check
        found = (tuple(constructor.construct_document(node) for node in nodes), nodes)
    except yaml.YAMLError as fast_error:
        if len(text) > _REPARSE_MAX and str(fast_error) != "no libyaml":
            # the pure-Python parser can take many seconds on megabytes it will refuse anyway
            # (a fuzz input of 9 MB: 18 s); libyaml's error has its marks too
            _remember(text, fast_error)
            raise
        try:
            nodes = tuple(yaml.compose_all(text, Loader=_loader(True)))  # a SafeLoader subclass: safe
            found = (tuple(constructor.construct_document(node) for node in nodes), nodes)
        except yaml.YAMLError as exc:
            _remember(text, exc)
            raise
    _remember(text, found)
    return found


def _remember(text: str, parsed: Any) -> None:
    while len(_PARSED) >= _PARSED_MAX:
        del _PARSED[next(iter(_PARSED))]  # the oldest first
    _PARSED[text] = parsed


def safe_load(text: str) -> Any:
    """`yaml.safe_load` (no custom tags) within the same bounds."""
    import yaml

    return yaml.load(text, Loader=_loader(False))  # a SafeLoader subclass: safe


def _depth_at_most(text: str) -> int:
    """An upper bound of a YAML document's nesting, from the characters alone: a level is a flow
    collection (`[`, `{`), a block sequence entry or explicit key (`-`, `?`), or a block mapping more
    indented than its parent."""
    indent = max((len(line) - len(line.lstrip(" ")) for line in text.splitlines()), default=0)
    return 1 + indent + sum(text.count(c) for c in "[{-?")


def bounds_problem(text: str) -> tuple[str, int] | None:
    """(problem, line) if a Compose file's YAML is beyond our bounds, None otherwise (also for YAML that
    is merely invalid: Compose words that error). Checked before `docker compose config`, which would
    spend minutes and gigabytes expanding an alias bomb."""
    shallow = _depth_at_most(text) < MAX_DEPTH
    if "*" not in text and shallow:
        return None  # no alias to expand, not deep enough: skip the parse
    import yaml

    try:
        _parsed(text)  # the one parse of this text in this command (`documents`)
    except yaml.MarkedYAMLError as exc:
        if getattr(exc, "stackctl_bound", False) and exc.problem_mark is not None:
            return str(exc.problem), exc.problem_mark.line + 1
    except yaml.YAMLError:
        pass
    return None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_too_deep(text: str) -> bool:
    """True if JSON text nests deeper than MAX_DEPTH (checked before `json.loads`, which recurses)."""
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False
