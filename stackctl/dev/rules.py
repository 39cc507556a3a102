"""The `develop.watch` rules of a stack, as Compose defines them, and which rule a changed path fires.

Shared by the local loop and the cluster loop: they differ in what an action does, not in which fires.

Which paths a rule sees follows `docker compose watch` (compose v2 `pkg/compose/watch.go`), so a
project behaves the same under both tools:

- a rule fires for its `path` itself and everything under it;
- `include` (when given) keeps only the paths it matches, `ignore` drops the paths it matches, both
  relative to the rule's `path`;
- the service's `.dockerignore` (`<dockerfile>.dockerignore` first, as BuildKit reads it) drops the
  paths it matches for every rule of the service, relative to the build context;
- editors' temporary files (vim, emacs, JetBrains) and `.git` directories never fire;
- a pattern matches a path when it matches the path or one of its parent directories, with Docker's
  pattern syntax (`*`, `?`, `**`, `[...]`, `!` exceptions, last match wins: moby/patternmatcher);
  a pattern list holding a bare `*` keeps only its `!` exceptions, as Compose does;
- a `sync`/`sync+restart` rule whose path is inside a bind mount of the service is not watched
  (Compose says so with a warning; here it is a warning naming the field).

Two deliberate differences, both to the safer side: an `ignore`/`include` pattern with a leading `/`
is anchored at the rule's path (Compose takes it as an absolute host path, so it matches nothing),
and the initial sync applies the same matching as a live change (Compose's initial sync tests only
each file's base name, and skips `include`).
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stackctl.errors import ComposeFileError

if TYPE_CHECKING:
    from stackctl import model as m

Action = Literal["sync", "rebuild", "sync+restart", "sync+exec", "restart"]
ACTIONS: tuple[Action, ...] = ("sync", "rebuild", "sync+restart", "sync+exec", "restart")
SYNC_ACTIONS = frozenset({"sync", "sync+restart", "sync+exec"})

# Editors' temporary and backup files (Compose's `EphemeralPathMatcher`), anchored at "/".
EPHEMERAL = ("**/*___jb_old___", "**/*___jb_tmp___", "**/.idea/**", "**/.#*", "**/4913", "**/*~",
             "**/.*.swp", "**/.*.swx", "**/.*.swo", "**/.*.swn")
# Never copied by an initial sync (Compose: the Dockerfile and the Compose files).
INITIAL_SYNC_SKIP = ("Dockerfile", "compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml",
                     "compose.override.yml", "compose.override.yaml", "docker-compose.override.yml",
                     "docker-compose.override.yaml")


@dataclass(frozen=True)
class WatchRule:
    service: str
    action: Action
    path: Path                        # absolute path on the host (file or directory)
    target: str | None = None         # path in the container (sync actions)
    ignore: tuple[str, ...] = ()      # Compose's ignore patterns (relative to `path`)
    include: tuple[str, ...] = ()     # Compose's include patterns, when given
    initial_sync: bool = False
    exec_command: tuple[str, ...] = ()  # sync+exec: the command run in the container after the sync
    where: str = ""                   # "compose.yaml: services.api.develop.watch[0]" for messages
    # The build context's .dockerignore patterns, absolute (joined to the context, as Compose does).
    dockerignore: tuple[str, ...] = ()
    exec_user: str | None = None
    exec_working_dir: str | None = None
    exec_privileged: bool = False
    exec_environment: tuple[tuple[str, str], ...] = ()
    index: int = 0                    # the rule's position in the service's `develop.watch`
    dockerfile: str = "Dockerfile"    # its base name: never copied by an initial sync

    def container_path(self, host_path: Path) -> str | None:
        """Where a changed host path lands in the container (sync actions), as Compose maps it:
        the target joined with the path relative to the rule's path."""
        if self.target is None:
            return None
        rel = os.path.relpath(host_path, self.path)
        return posixpath.normpath(posixpath.join("/", self.target, "" if rel == "." else rel.replace(os.sep, "/")))

    def matches(self, path: Path) -> bool:
        """The rule fires for this changed path: under its path, included, not ignored."""
        text = os.path.normpath(str(path))
        root = os.path.normpath(str(self.path))
        if text != root and not text.startswith(root.rstrip("/") + "/"):
            return False
        if self.include and not _matcher(root, self.include).matches(text):
            return False
        return not self.ignored(text)

    def ignored(self, text: str) -> bool:
        if ".git" in text.split("/"):
            return True
        if _matcher("/", EPHEMERAL).matches(text):
            return True
        if self.dockerignore and _matcher("/", self.dockerignore).matches(text):
            return True
        return bool(self.ignore) and _matcher(os.path.normpath(str(self.path)), self.ignore).matches(text)


@dataclass(frozen=True)
class Change:
    rule: WatchRule
    paths: tuple[Path, ...]           # changed host paths under rule.path (coalesced, sorted)


def watch_rules(stack: object, *, files: Sequence[Path] = (), root: Path | None = None,
                services: Sequence[str] | None = None) -> tuple[WatchRule, ...]:
    """Every rule of every service of the loaded stack (stackctl.model.Stack), in Compose's order.
    `files`: the Compose files, to name the one a rule is in (`root`: shown relative to it);
    `services`: only these. Rules Compose would not watch (a sync into a bind mount) are left out:
    `watch_plan` returns them as warnings, which a caller must show."""
    return watch_plan(stack, files=files, root=root, services=services)[0]


def watch_plan(stack: object, *, files: Sequence[Path] = (), root: Path | None = None,
               services: Sequence[str] | None = None) -> tuple[tuple[WatchRule, ...], tuple[str, ...]]:
    """The rules, and a warning for each rule left out (service and field named). Raises
    `ComposeFileError` naming the field for a rule that cannot work."""
    from stackctl import model as m

    assert isinstance(stack, m.Stack)
    rules: list[WatchRule] = []
    warnings: list[str] = []
    for svc in stack.services:
        if services is not None and svc.name not in services:
            continue
        if not svc.develop_watch:
            continue
        file = _file_of(svc.name, files, root)
        ignores = _dockerignore(svc.build)
        for i, trigger in enumerate(svc.develop_watch):
            field = f"services.{svc.name}.develop.watch[{i}]"
            where = f"{file}: {field}" if file else field
            rule = _rule(svc, trigger, i, field, file, where, ignores)
            bind = _bind_mount_holding(svc, rule.path) if rule.action in ("sync", "sync+restart") else None
            if bind is not None:
                warnings.append(f"{where}: {rule.path} is also bind-mounted ({bind}); the container sees "
                                f"edits already, so this {rule.action} rule is not watched (as Compose does)")
                continue
            rules.append(rule)
    return tuple(rules), tuple(warnings)


def fired(rules: Sequence[WatchRule], changed: Iterable[Path]) -> tuple[Change, ...]:
    """Which rules the changed paths fire, each rule once with its paths (ignored paths dropped).
    A path may fire several rules (a sync of one service and a rebuild of another), as in Compose."""
    paths = sorted({Path(os.path.normpath(str(p))) for p in changed})
    out = []
    for rule in rules:
        hit = tuple(p for p in paths if rule.matches(p))
        if hit:
            out.append(Change(rule, hit))
    return tuple(out)


def initial_files(rule: WatchRule) -> tuple[Path, ...]:
    """The files an `initial_sync` copies: every file under the rule's path that a change would sync,
    except the Dockerfile and the Compose files (as Compose). Ignored directories are not entered."""
    skip = {*INITIAL_SYNC_SKIP, rule.dockerfile}
    if rule.path.is_file():
        return () if rule.path.name in skip or not rule.matches(rule.path) else (rule.path,)
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(rule.path):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not rule.ignored(os.path.normpath(str(base / d))))
        out.extend(base / f for f in sorted(filenames) if f not in skip and rule.matches(base / f))
    return tuple(out)


# ---------------------------------------------------------------- parsing the rules

def _rule(svc: m.Service, trigger: m.WatchTrigger, index: int, field: str, file: str | None, where: str,
          dockerignore: tuple[str, ...]) -> WatchRule:
    def bad(message: str, sub: str, hint: str | None = None) -> ComposeFileError:
        return ComposeFileError(message, file=file, field=f"{field}.{sub}", hint=hint)

    if trigger.action not in ACTIONS:  # Compose's schema refuses it first; kept for a model built by hand
        raise bad(f"unknown action {trigger.action!r}", "action", "one of " + ", ".join(ACTIONS))
    action = trigger.action
    if not trigger.path:
        raise bad("a watch rule needs a path", "path")
    if action == "rebuild" and svc.build is None:
        raise bad(f"action rebuild needs a build section: service {svc.name} has no `build:`", "action",
                  "add a build section, or use sync/restart for an image that is not built here")
    if action in SYNC_ACTIONS and not trigger.target:
        raise bad(f"action {action} needs a target (the path in the container)", "target")
    if action == "sync+exec" and (trigger.exec is None or not trigger.exec.command):
        raise bad("action sync+exec needs a command to run after the sync", "exec.command")
    path = Path(os.path.normpath(trigger.path))
    if not path.is_absolute():
        path = Path(os.path.normpath(Path.cwd() / path))
    for key, patterns in (("ignore", trigger.ignore), ("include", trigger.include)):
        for j, pattern in enumerate(patterns):
            try:
                _matcher(str(path), (pattern,))
            except ValueError as exc:
                raise bad(f"bad pattern {pattern!r}: {exc}", f"{key}[{j}]",
                          "Docker's pattern syntax: *, ?, **, [a-z], a leading ! for an exception") from None
    hook = trigger.exec
    return WatchRule(
        service=svc.name, action=action, path=path,
        target=posixpath.join("/", trigger.target) if trigger.target else None,
        ignore=trigger.ignore, include=trigger.include,
        initial_sync=trigger.initial_sync and action in ("sync", "sync+restart"),
        exec_command=tuple(hook.command) if hook else (), where=where, dockerignore=dockerignore,
        exec_user=hook.user if hook else None, exec_working_dir=hook.working_dir if hook else None,
        exec_privileged=bool(hook.privileged) if hook else False,
        exec_environment=tuple(sorted((k, v) for k, v in hook.environment.items() if v is not None)) if hook else (),
        index=index,
        dockerfile=posixpath.basename(svc.build.dockerfile) if svc.build and svc.build.dockerfile else "Dockerfile")


def _file_of(service: str, files: Sequence[Path], root: Path | None) -> str | None:
    """The Compose file that sets the service's `develop.watch` (the last one: an override wins), shown
    relative to `root`; None when no file says (set through `extends` or `include`)."""
    from stackctl.compose import yaml as composeyaml

    for file in reversed(files):
        try:
            data = composeyaml.load(file.read_text(encoding="utf-8"))
        except Exception:  # read by Compose already; anything odd here only costs the file's name
            continue
        svc = ((data or {}).get("services") or {}).get(service) if isinstance(data, dict) else None
        if isinstance(svc, dict) and isinstance(svc.get("develop"), dict) and "watch" in svc["develop"]:
            if root is not None:
                try:
                    return str(file.relative_to(root))
                except ValueError:
                    pass
            return str(file)
    return None


def _bind_mount_holding(svc: m.Service, path: Path) -> str | None:
    """The bind mount of the service whose source holds `path` (Compose does not watch such a sync)."""
    for i, mount in enumerate(svc.volumes):
        if mount.type == "bind" and mount.source:
            rel = os.path.relpath(path, mount.source)
            if not rel.startswith(".."):
                return f"services.{svc.name}.volumes[{i}]"
    return None


def _dockerignore(build: m.Build | None) -> tuple[str, ...]:
    """The build context's ignore file as absolute patterns (`<dockerfile>.dockerignore`, else
    `.dockerignore`), read as BuildKit reads it (moby/patternmatcher/ignorefile)."""
    if build is None:
        return ()
    context = os.path.abspath(build.context)
    dockerfile = build.dockerfile or "Dockerfile"
    for name in (f"{dockerfile}.dockerignore", ".dockerignore"):
        try:
            text = Path(context + "/" + name).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ComposeFileError(f"cannot read {name}: {exc.strerror}", file=f"{context}/{name}") from None
        return tuple(_absolute(context, read_ignore_file(text)))
    return ()


def read_ignore_file(text: str) -> list[str]:
    """The patterns of a .dockerignore: `#` comments, blank lines dropped, each cleaned, a leading
    `/` removed (relative to the context)."""
    out = []
    for line in text.removeprefix("\ufeff").splitlines():
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def _absolute(root: str, patterns: Sequence[str]) -> list[str]:
    """Patterns made absolute under `root`, as Compose does before matching (a bare `*` in the list
    keeps only the `!` exceptions: Compose's rule for an allow-list ignore file). A leading `/`
    anchors at `root` too (see the module doc)."""
    if "*" in patterns:
        patterns = [p for p in patterns if p.startswith("!")]
    out = []
    for raw in patterns:
        p = raw.strip()
        if not p:
            continue
        invert = p.startswith("!")
        body = posixpath.normpath(p[1:] if invert else p) if (p[1:] if invert else p) else ""
        body = posixpath.normpath(posixpath.join(root, body.lstrip("/"))) if body else root
        out.append("!" + body if invert else body)
    return out


# ---------------------------------------------------------------- Docker's pattern matching

@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool


@dataclass(frozen=True)
class Matcher:
    patterns: tuple[_Pattern, ...]

    def matches(self, path: str) -> bool:
        """moby/patternmatcher `MatchesOrParentMatches`: the path or a parent directory matches; the
        last pattern that matches decides (an exception un-matches)."""
        matched = False
        parent = posixpath.dirname(path)
        parts = parent.split("/")
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.regex.fullmatch(path) is not None
            if not hit and parent != ".":
                hit = any(pattern.regex.fullmatch("/".join(parts[:i + 1])) for i in range(len(parts)))
            if hit:
                matched = not pattern.exclusion
        return matched


@functools.lru_cache(maxsize=512)
def _matcher(root: str, patterns: tuple[str, ...]) -> Matcher:
    """Patterns relative to `root` (absolute ones are already anchored) compiled once."""
    compiled = []
    for p in _absolute(root, patterns):
        exclusion = p.startswith("!")
        body = p[1:] if exclusion else p
        if not body:
            raise ValueError('illegal exclusion pattern: "!"')
        compiled.append(_Pattern(_compile(body), exclusion))
    return Matcher(tuple(compiled))


def _compile(pattern: str) -> re.Pattern[str]:
    """One Docker pattern as a regular expression (moby/patternmatcher `Pattern.compile`)."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(re.escape("\\"))
        elif ch == "[":
            end = pattern.find("]", i + (1 if pattern[i:i + 1] in ("^", "!") else 0) + 1)
            if end < 0:
                raise ValueError("syntax error in pattern (an unclosed [)")
            body = pattern[i:end]
            if body.startswith("!"):  # filepath.Match's negation spelling
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise ValueError(f"syntax error in pattern ({exc})") from None
