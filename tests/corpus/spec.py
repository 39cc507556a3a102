"""The corpus's per-project expectations (tests/corpus/<name>/expect.yaml), read strictly: an unknown key
or a wrong type is an error naming the file, so a typo cannot turn a check off. Shared by the render
tier (tests/corpus/test_corpus.py) and the real-node tier (tests/node/test_corpus_node.py), which
loads this file by path (the test folders are not packages).

    about: one line: the real-world shape this project stands for
    exercises: [env-file, anchors, ...]     # tags, for the README table and the shape test
    init:                                   # run `stackctl init` first (absent: profiles/ is shipped)
      args: [-f, compose.yaml]              #   its arguments
      says: ['DB_PASSWORD.*store']          #   regexes that must match a line of its output
      stateful: [db, cache]                 #   services init must never give replicas > 1
      profile:                              #   values the written profiles must hold (dotted paths)
        production: {compose.profiles: [workers]}
    environ: {COMPOSE_PROFILES: debug}      # the shell environment of every command (Compose's too)
    profiles:                               # the stackctl profiles rendered (default: every one)
      production:
        render: ok | fail                   #   fail: exit 1, `errors` match its stderr
        errors: ['API_TAG']
        strict: pass | fail                 #   `--strict`: exit 0, or exit 1 and nothing on stdout
        warnings: [services.web.models]     #   substrings of `Warning:` lines (plain render)
        mentions: ['services\\.es.*Xmx']    #   regexes that must match a stderr line (warning or note)
        manifests: ['defaultMode: 0755']    #   regexes that must match the rendered manifests
        services: [app]                     #   Compose services that must get a Service (others call them)
        parity: true                        #   services and images equal `docker compose config`'s
    node:                                   # buildable here: promoted on the real node
      profile: production
      result: ready | fail
      reason: [CrashLoopBackOff]            #   for fail: substrings of promote's stderr
      checks:                               #   commands run in a pod of `service` (kubectl exec)
        - {service: proxy, run: 'curl -fsS http://proxy/', expect: 'hello'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parent


class SpecError(Exception):
    pass


@dataclass(frozen=True)
class Init:
    args: tuple[str, ...] = ()
    says: tuple[str, ...] = ()
    stateful: tuple[str, ...] = ()
    profile: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileExpect:
    name: str
    render: str = "ok"
    errors: tuple[str, ...] = ()
    strict: str = "pass"
    warnings: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    parity: bool = False


@dataclass(frozen=True)
class Check:
    service: str
    run: str
    expect: str


@dataclass(frozen=True)
class Node:
    profile: str = "production"
    result: str = "ready"
    reason: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Project:
    name: str
    root: Path
    about: str
    exercises: tuple[str, ...]
    init: Init | None
    environ: dict[str, str]
    profiles: tuple[ProfileExpect, ...] | None  # None: every profile the project has after init
    node: Node | None

    def profile(self, name: str) -> ProfileExpect:
        for p in self.profiles or ():
            if p.name == name:
                return p
        return ProfileExpect(name)


def _keys(where: str, data: Any, allowed: set[str],
          required: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: must be a mapping")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(data))
    if missing:
        raise SpecError(f"{where}: missing {', '.join(missing)}")
    return data


def _strs(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: must be a list of strings")
    return tuple(value)


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SpecError(f"{where}: must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def load(root: Path) -> Project:
    path = root / "expect.yaml"
    where = str(path.relative_to(CORPUS.parent.parent))
    data = _keys(where, yaml.safe_load(path.read_text()),
                 {"about", "exercises", "init", "environ", "profiles", "node"}, {"about", "exercises"})
    init = None
    if "init" in data:
        raw = _keys(f"{where}: init", data["init"] or {}, {"args", "says", "stateful", "profile"})
        init = Init(_strs(f"{where}: init.args", raw.get("args")), _strs(f"{where}: init.says", raw.get("says")),
                    _strs(f"{where}: init.stateful", raw.get("stateful")),
                    {str(k): dict(_keys(f"{where}: init.profile.{k}", v, set(v) if isinstance(v, dict) else set()))
                     for k, v in (raw.get("profile") or {}).items()})
    profiles = None
    if "profiles" in data:
        profiles = []
        for name, raw in _keys(f"{where}: profiles", data["profiles"], set(data["profiles"] or {})).items():
            at = f"{where}: profiles.{name}"
            raw = _keys(at, raw or {}, {"render", "errors", "strict", "warnings", "mentions", "manifests",
                                   "services", "parity"})
            p = ProfileExpect(str(name), _choice(f"{at}.render", raw.get("render", "ok"), ("ok", "fail")),
                              _strs(f"{at}.errors", raw.get("errors")),
                              _choice(f"{at}.strict", raw.get("strict", "pass"), ("pass", "fail")),
                              _strs(f"{at}.warnings", raw.get("warnings")),
                              _strs(f"{at}.mentions", raw.get("mentions")),
                              _strs(f"{at}.manifests", raw.get("manifests")),
                              _strs(f"{at}.services", raw.get("services")), bool(raw.get("parity", False)))
            if p.strict == "pass" and p.warnings:
                raise SpecError(f"{at}: strict: pass with expected warnings cannot hold")
            if p.render == "fail" and not p.errors:
                raise SpecError(f"{at}: render: fail needs the errors it expects")
            profiles.append(p)
        profiles_t: tuple[ProfileExpect, ...] | None = tuple(profiles)
    else:
        profiles_t = None
    node = None
    if "node" in data:
        raw = _keys(f"{where}: node", data["node"], {"profile", "result", "reason", "checks"}, {"result"})
        checks = tuple(Check(**_keys(f"{where}: node.checks[{i}]", c, {"service", "run", "expect"},
                                     {"service", "run", "expect"}))
                       for i, c in enumerate(raw.get("checks") or []))
        node = Node(str(raw.get("profile", "production")), _choice(f"{where}: node.result", raw["result"],
                                                                   ("ready", "fail")),
                    _strs(f"{where}: node.reason", raw.get("reason")), checks)
        if node.result == "fail" and not node.reason:
            raise SpecError(f"{where}: node: result fail needs the reason it expects")
    environ = data.get("environ") or {}
    if not isinstance(environ, dict):
        raise SpecError(f"{where}: environ: must be a mapping")
    return Project(root.name, root, str(data["about"]), _strs(f"{where}: exercises", data["exercises"]), init,
                   {str(k): str(v) for k, v in environ.items()}, profiles_t, node)


def copy_project(project: Project, dest: Path) -> Path:
    """The project as its users have it, in `dest/<name>`: everything but the test's own files (expect.yaml,
    expected/), modes kept (scripts stay 0755). A file committed as `dot.env` (or `dot.env.production`)
    becomes `.env`: the repository never commits plaintext env files (tests/unit/test_repo_hygiene.py),
    but a shipped `.env` is exactly what the corpus must cover."""
    import shutil

    root = dest / project.name
    shutil.copytree(project.root, root, symlinks=True,
                    ignore=lambda d, names: [n for n in names if Path(d) == project.root
                                             and n in ("expect.yaml", "expected")])
    for path in sorted(root.rglob("dot.env*")):
        path.rename(path.with_name(path.name[len("dot"):]))
    return root


def projects() -> list[Project]:
    """Every project of the corpus (a folder with an expect.yaml; `_base/` holds shared images)."""
    return [load(p) for p in sorted(CORPUS.iterdir())
            if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "expect.yaml").is_file()]
