"""`stackctl init`: scaffold profiles and an annotated `.env.example` from an existing Compose project.

Pure text generation plus one write step that refuses to overwrite (unless forced) and checks
every target before writing any, so a refused init leaves nothing half-written.

The project is read as `docker compose` reads it: the Compose files come from `-f`, else
`COMPOSE_FILE` (shell, then `.env`), else the default names plus the override file; the services
selected by `COMPOSE_PROFILES`; and the values of the project's `.env` (or the `--env-file`s), which
become the template's defaults (config) or go into the local profile's encrypted store (secrets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.compose.loader import COMPOSE_FILE_NAMES, OVERRIDE_FILE_NAMES, compose_file_list, profile_list
from stackctl.errors import InputError
from stackctl.fsutil import TEMP_GLOB
from stackctl.profile.types import display

COMPOSE_CANDIDATES = COMPOSE_FILE_NAMES
OVERRIDE_CANDIDATES = OVERRIDE_FILE_NAMES
BACKUP_SUFFIX = ".before-stackctl"  # `.env` → `.env.before-stackctl` (git-ignored by `.env.*`)
# The temp files of interrupted writes (`..env.XXXXXXXX.tmp`, fsutil.TEMP_GLOB) hold plaintext too.
GITIGNORE_LINES = (".env", ".env.*", "!.env.example", ".stackctl/keys/", "*.key", TEMP_GLOB)


@dataclass
class Variable:
    name: str
    default: str | None = None
    required: bool = False
    used_in: list[str] = field(default_factory=list)  # "services.api.environment.X"
    message: str | None = None

    @property
    def services(self) -> list[str]:
        return sorted({f.split(".")[1] for f in self.used_in if f.startswith("services.") and f.count(".") >= 1})


# (pattern, generator or None for "provided by someone else") — first match wins.
_SECRET_RULES: tuple[tuple[str, str | None], ...] = (
    (r"PRIVATE_KEY", "ed25519"),
    (r"FERNET", "fernet"),
    (r"JWT", "jwt-hs256"),
    (r"(API|ACCESS)_?KEY|TOKEN|DSN|WEBHOOK", None),
    (r"PASSWORD|PASSWD|_PASS$|^PASS", "password:32"),  # URL-safe: fits connection strings
    (r"SALT", "hex:16"),
    (r"ENCRYPTION_KEY|SIGNING_KEY|MASTER_KEY", "base64:32"),
    (r"SECRET|_KEY$|CREDENTIAL", "hex:32"),
)


def secret_kind(name: str) -> tuple[bool, str | None]:
    """Is this variable likely a secret, and which generator fits it (None: must be provided)?"""
    upper = name.upper()
    for pattern, generator in _SECRET_RULES:
        if re.search(pattern, upper):
            return True, generator
    return False, None


def collect_variables(compose_files: list[Path], root: Path) -> list[Variable]:
    from stackctl.compose.interpolation import scan_yaml_file

    found: dict[str, Variable] = {}
    for f in compose_files:
        for located in scan_yaml_file(f):
            ref = located.ref
            var = found.setdefault(ref.name, Variable(ref.name))
            var.used_in.append(located.field)
            if ref.required:
                var.required = True
                var.message = var.message or ref.message
            if ref.default is not None and var.default is None and "$" not in ref.default:
                var.default = ref.default
    return sorted(found.values(), key=lambda v: v.name)


def env_example(variables: list[Variable], compose_label: str,
                imported: EnvImport | None = None, secret_names: frozenset[str] = frozenset()) -> str:
    """The annotated template. With `imported` (the project's `.env`), a config key takes its imported
    value as the template's (every profile's default) and a secret is marked as held by the local
    store; keys of `.env` no Compose file refers to are kept too (a service's `env_file:` may read them)."""
    entries = imported.entries if imported is not None else {}
    origin = ", ".join(imported.files) if imported is not None else ""
    lines = [
        f"# Environment template for {compose_label}: documents every variable the Compose files use.",
        "# Copy nothing by hand: `stackctl secrets generate` fills the secrets (encrypted store) and",
        "# `stackctl env render` writes the .env Compose reads. Annotations (see docs/secrets.md):",
        "#   @secret GENERATOR   a secret stackctl generates (hex:32, password:32, jwt-hs256, ed25519, ...)",
        "#   @secret             a secret someone must provide (stackctl secrets set NAME)",
        "#   @required / @optional",
        "",
    ]

    def block(name: str, doc: str, *, required: bool, default: str | None) -> None:
        is_secret, generator = secret_kind(name)
        imp = entries.get(name)
        lines.append(doc)
        if is_secret or name in secret_names:
            if imp is not None:
                lines.append(f"# Imported from {origin}: the value is in the local profile's encrypted store.")
            lines.append(f"# @secret {generator}" if generator else "# @secret")
            lines.append(f"{name}=")
        elif imp is not None:
            lines.append(f"# Value imported from {origin}.")
            lines.append("# @required" if required and imp.value != "" else "# @optional")
            lines.append(imp.line)
        else:
            lines.append("# @required" if required or default is None else "# @optional")
            lines.append(f"{name}={_example_value(default or '')}")
        lines.append("")

    for var in variables:
        where = ", ".join(var.services) or "compose"
        block(var.name, f"# Used by {where}.", required=var.required or var.default is None, default=var.default)
    used = {v.name for v in variables}
    for name in entries:
        if name not in used:
            block(name, f"# Not referenced by the Compose files (imported from {origin}).", required=False,
                  default=None)
    return "\n".join(lines).rstrip("\n") + "\n"


def _example_value(value: str) -> str:
    if value == "" or re.fullmatch(r"[A-Za-z0-9_./:@,+-]*", value):
        return value
    return "'" + value + "'" if "'" not in value and "\n" not in value else '"' + value.replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------
# The project's env files (`.env`, `--env-file`): what Compose interpolates with
# ---------------------------------------------------------------------------------------------
# Compose's own settings: read from `.env` by Compose itself, never interpolated into a file; init
# turns them into profile keys (compose.files, compose.profiles, stack) instead of template keys.
COMPOSE_SETTINGS = ("COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR", "COMPOSE_PROJECT_NAME")


@dataclass(frozen=True)
class Imported:
    """One key of the imported env file(s). Holds plaintext: never print `value`."""

    name: str
    value: str  # as Compose reads it (interpolated)
    line: str  # `KEY=...` in its source form (quotes and `${OTHER}` references kept), for the template


@dataclass
class EnvImport:
    files: list[str]  # as shown (relative to the project)
    paths: list[Path]
    entries: dict[str, Imported]  # in file order, Compose's own settings left out
    settings: dict[str, str]  # COMPOSE_* found there (not secret: file names, profile names)
    credentials: frozenset[str] = frozenset()  # names whose value embeds a password (`scheme://u:pw@host`)

    def is_secret(self, name: str) -> bool:
        return secret_kind(name)[0] or name in self.credentials


# `postgres://user:password@db/app`: a literal password in a URL (a `${VAR}` reference is not one).
_URL_CREDENTIAL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\$)[^@\s/]+@", re.IGNORECASE)


def read_env_import(root: Path, env_files: list[Path], environ: Mapping[str, str]) -> EnvImport | None:
    """The env files Compose would interpolate with: the `--env-file`s when named (Compose then skips
    `.env`), else the project's `.env` if there is one (None when there is nothing to import)."""
    from stackctl.compose import dotenv

    if env_files:
        paths = _given_files(env_files, "--env-file")
    elif (root / ".env").is_file():
        paths = [root / ".env"]
    else:
        return None
    shown = [display(p, root) for p in paths]
    texts = [(name, dotenv.read_text(p, shown=name)) for p, name in zip(paths, shown, strict=True)]
    values = dotenv.parse_chain(texts, environ=environ)
    entries: dict[str, Imported] = {}
    settings: dict[str, str] = {}
    for name, text in texts:
        for entry in dotenv.parse_entries(text, filename=name):
            if entry.key in COMPOSE_SETTINGS:
                if entry.key in values:
                    settings[entry.key] = values[entry.key]
                continue
            entries.pop(entry.key, None)  # the last assignment wins, at its place
            entries[entry.key] = Imported(entry.key, values.get(entry.key, ""), dotenv.source_line(entry))
    credentials = frozenset(n for n, imp in entries.items() if _URL_CREDENTIAL.search(imp.line))
    return EnvImport(files=shown, paths=paths, entries=entries, settings=settings, credentials=credentials)


# ---------------------------------------------------------------------------------------------
# Which Compose files and profiles: `-f`, COMPOSE_FILE, the override file, COMPOSE_PROFILES
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComposeChoice:
    files: tuple[Path, ...]  # the local profile's: what `docker compose` loads here
    production_files: tuple[Path, ...]  # the same, without a default override file
    profiles: tuple[str, ...]
    origin: str  # where the files came from, for the report
    override: Path | None = None  # loaded by default, so local only
    profiles_origin: str | None = None


def _setting(name: str, environ: Mapping[str, str], imported: EnvImport | None) -> tuple[str, str] | None:
    """(value, where) of a Compose setting: the shell wins over the env file, as in Compose."""
    if environ.get(name):
        return environ[name], "the environment"
    if imported is not None and imported.settings.get(name):
        return imported.settings[name], ", ".join(imported.files)
    return None


def choose_compose(root: Path, explicit: list[Path], environ: Mapping[str, str],
                   imported: EnvImport | None) -> ComposeChoice:
    profiles_setting = _setting("COMPOSE_PROFILES", environ, imported)
    profiles = tuple(profile_list(profiles_setting[0])) if profiles_setting else ()
    profiles_origin = f"COMPOSE_PROFILES in {profiles_setting[1]}" if profiles_setting and profiles else None
    if explicit:
        files = tuple(find_compose(root, explicit))
        return ComposeChoice(files, files, profiles, "-f", profiles_origin=profiles_origin)
    setting = _setting("COMPOSE_FILE", environ, imported)
    if setting is not None:
        separator = _setting("COMPOSE_PATH_SEPARATOR", environ, imported)
        out = []
        for part in compose_file_list(setting[0], separator[0] if separator else None):
            path = Path(part) if Path(part).is_absolute() else root / part
            if not path.is_file():
                raise InputError(f"COMPOSE_FILE (in {setting[1]}) names {part}, which does not exist",
                                 file=part, field="COMPOSE_FILE", hint="fix COMPOSE_FILE or pass -f FILE")
            out.append(path.resolve())
        if out:
            return ComposeChoice(tuple(out), tuple(out), profiles, f"COMPOSE_FILE in {setting[1]}",
                                 profiles_origin=profiles_origin)
    base = find_compose(root, [])
    override = next((base[0].parent / n for n in OVERRIDE_CANDIDATES if (base[0].parent / n).is_file()), None)
    local = (*base, override.resolve()) if override is not None else tuple(base)
    return ComposeChoice(local, tuple(base), profiles, "default", override=override.resolve() if override else None,
                         profiles_origin=profiles_origin)


def _given_files(files: list[Path], option: str) -> list[Path]:
    """The files named on the command line (relative to the working directory), resolved; a missing
    one is an error naming the option."""
    out = []
    for f in files:
        path = f if f.is_absolute() else (Path.cwd() / f)
        if not path.is_file():
            raise InputError("file not found", file=str(f), field=option)
        out.append(path.resolve())
    return out


def find_compose(root: Path, explicit: list[Path]) -> list[Path]:
    if explicit:
        return _given_files(explicit, "--compose")
    for name in COMPOSE_CANDIDATES:
        if (root / name).is_file():
            return [(root / name).resolve()]
    raise InputError(f"no Compose file found in {root} (looked for {', '.join(COMPOSE_CANDIDATES)})",
                     hint="pass --compose FILE")


def _read_compose(path: Path, root: Path) -> tuple[str | None, dict[str, dict[str, Any]]]:
    import yaml

    shown = display(path, root)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise InputError(f"invalid YAML: {exc.problem}", file=shown,
                         field=f"line {mark.line + 1}" if mark else None) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", file=shown) from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise InputError("not a Compose file: no `services` mapping", file=shown, field="services")
    name = data.get("name") if isinstance(data.get("name"), str) else None
    return name, {str(k): (v if isinstance(v, dict) else {}) for k, v in data["services"].items()}


def _stack_name(name: str | None, root: Path) -> str | None:
    candidate = (name or root.name).lower()
    candidate = re.sub(r"[^a-z0-9-]+", "-", candidate).strip("-")[:63]
    return candidate or None


# ---------------------------------------------------------------------------------------------
# Which service the production profile scales: never one that keeps state
# ---------------------------------------------------------------------------------------------
def _mounts_data(image: str | None, volumes: Any) -> bool:
    """A named volume that is written to, or a mount of a known image's data path."""
    from stackctl.knownimages import holds_data, is_data_path

    for v in volumes if isinstance(volumes, list) else ():
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) == 1:  # anonymous volume: data only where the image keeps its data
                if holds_data(image, parts[0]) or is_data_path(parts[0]):
                    return True
                continue
            source, target, mode = parts[0], parts[1], (parts[2] if len(parts) > 2 else "")
            named = bool(source) and not source.startswith(("/", ".", "~", "$"))
            read_only = "ro" in mode.split(",")
        elif isinstance(v, dict):
            kind, target = v.get("type", "volume"), str(v.get("target", ""))
            named = kind == "volume" and bool(v.get("source"))
            read_only = bool(v.get("read_only"))
            if kind == "tmpfs":
                continue
        else:
            continue
        if (named and not read_only) or holds_data(image, target) or is_data_path(target):
            return True
    return False


def scaled_service(services: Mapping[str, Mapping[str, Any]], enabled: tuple[str, ...],
                   lookup: Callable[[str], str | None]) -> str | None:
    """The service the production profile gives `replicas: 2` as an example: a stateless one (no data
    volume, not a database/queue/cache image), preferably one that serves a port; None when none is."""
    import contextlib

    from stackctl.compose.interpolation import interpolate
    from stackctl.errors import StackctlError
    from stackctl.knownimages import is_single_instance_image

    candidates: list[tuple[int, str]] = []
    for name, svc in sorted(services.items()):
        svc_profiles = svc.get("profiles")
        if isinstance(svc_profiles, list) and svc_profiles and not set(map(str, svc_profiles)) & set(enabled):
            continue  # not part of the project unless its Compose profile is active
        image = svc.get("image") if isinstance(svc.get("image"), str) else None
        if image is not None:
            raw = image
            try:
                image = interpolate(raw, lookup)
            except StackctlError:  # a required variable without a value: a stand-in still names the image
                with contextlib.suppress(StackctlError):
                    image = interpolate(raw, lambda n: lookup(n) or "x")
        if is_single_instance_image(image) or _mounts_data(image, svc.get("volumes")):
            continue
        serves = bool(svc.get("ports") or svc.get("expose"))
        candidates.append((0 if serves else 1, name))
    return min(candidates)[1] if candidates else None


def profile_texts(stack: str | None, choice: ComposeChoice, root: Path, scaled: str | None,
                  local_env: str = ".env") -> dict[str, str]:
    def compose_block(files: tuple[Path, ...]) -> str:
        text = "compose:\n  files:\n" + "".join(f"    - {display(f, root)}\n" for f in files)
        if choice.profiles:
            text += "  profiles: [" + ", ".join(choice.profiles) + "]\n"
        return text

    stack_line = f"stack: {stack}\n" if stack else ""
    local = (
        "# Local development: `stackctl up --profile local` runs this stack with Docker Compose.\n"
        f"{stack_line}{compose_block(choice.files)}"
        + ("# .env is committed (a shipped default): stackctl renders the local env into .env.local instead.\n"
           if local_env != ".env" else "")
        + f"env:\n  template: .env.example\n  file: {local_env}\n"
    )
    namespace = f"{stack or 'app'}-prod"[:63]
    left_out = ""
    if choice.override is not None:
        left_out = (f"# {display(choice.override, root)} is left out: Compose loads it by default, for local "
                    "development;\n# list it under compose.files if production needs it.\n")
    services = (
        "services:\n"
        f"  {scaled}:\n"
        "    replicas: 2\n"
        "    strategy: rolling\n"
    ) if scaled else (
        "# services:  (no stateless service found to scale: databases, caches and services with data\n"
        "#            volumes keep one replica; set `replicas:` per service here)\n"
    )
    production = (
        "# Production: `stackctl promote production` renders this profile for Kubernetes.\n"
        f"{stack_line}{left_out}{compose_block(choice.production_files)}"
        "env:\n  template: .env.example\n  file: .env.production\n"
        "defaults:\n"
        "  resources:\n"
        "    limits: {cpus: 500m, memory: 256Mi}\n"
        "    requests: {cpus: 100m, memory: 64Mi}\n"
        f"{services}"
        "kubernetes:\n"
        "  context: production        # the kubeconfig context this profile may promote to\n"
        f"  namespace: {namespace}\n"
        "  protected: true            # promote asks for confirmation and checks the context\n"
    )
    return {"profiles/local.yaml": local, "profiles/production.yaml": production}


# ---------------------------------------------------------------------------------------------
# The plan, and writing it
# ---------------------------------------------------------------------------------------------
@dataclass
class InitPlan:
    files: dict[str, str]  # relative path → full text
    gitignore_add: list[str]
    variables: list[Variable]
    choice: ComposeChoice | None = None
    imported: EnvImport | None = None
    scaled: str | None = None
    backup: str | None = None  # `.env.before-stackctl`: a byte-identical copy of the imported `.env`
    local_env: str = ".env"  # the local profile's env file (`.env.local` when `.env` is committed)

    @property
    def imported_config(self) -> list[str]:
        return [n for n in (self.imported.entries if self.imported else ()) if not self.is_secret(n)]

    @property
    def imported_secrets(self) -> list[str]:
        return [n for n in (self.imported.entries if self.imported else ()) if self.is_secret(n)]

    def is_secret(self, name: str) -> bool:
        return self.imported.is_secret(name) if self.imported is not None else secret_kind(name)[0]


def plan(root: Path, compose: list[Path], *, env_files: list[Path] | None = None, import_env: bool = True,
         environ: Mapping[str, str] | None = None) -> InitPlan:
    import os

    env = os.environ if environ is None else environ
    # Compose's settings (COMPOSE_FILE, ...) apply with or without the import, as in Compose.
    read = read_env_import(root, env_files or [], env)
    imported = read if import_env else None
    choice = choose_compose(root, compose, env, read)
    name, services = _read_compose(choice.files[0], root)
    for extra in choice.files[1:]:
        for svc, data in _read_compose(extra, root)[1].items():
            services[svc] = {**services.get(svc, {}), **data}
    project_name = _setting("COMPOSE_PROJECT_NAME", env, read)
    values = {k: v.value for k, v in (read.entries if read else {}).items()}
    scaled = scaled_service(services, choice.profiles, lambda n: env.get(n, values.get(n)))
    variables = collect_variables(list(choice.files), root)
    # A `.env` committed to git (shipped defaults) cannot be the file `env render` writes secrets into.
    tracked = (root / ".env").is_file() and _git_tracked(root / ".env", root)
    local_env = ".env.local" if tracked else ".env"
    texts = profile_texts(_stack_name(project_name[0] if project_name else name, root), choice, root, scaled,
                          local_env)
    rel = [display(f, root) for f in choice.files]
    texts[".env.example"] = env_example(variables, ", ".join(rel), imported,
                                        imported.credentials if imported is not None else frozenset())
    gitignore = root / ".gitignore"
    present = set(gitignore.read_text().splitlines()) if gitignore.is_file() else set()
    backup = None
    if imported is not None and root / ".env" in imported.paths and not tracked:
        backup = f".env{BACKUP_SUFFIX}"
    return InitPlan(files=texts, gitignore_add=[ln for ln in GITIGNORE_LINES if ln not in present],
                    variables=variables, choice=choice, imported=imported, scaled=scaled, backup=backup,
                    local_env=local_env)


def _git_tracked(path: Path, root: Path) -> bool:
    from stackctl.secrets.envfile import git_tracked

    return bool(git_tracked(path, root))


def apply(root: Path, init_plan: InitPlan, *, force: bool) -> list[str]:
    """Write the plan; refuse (writing nothing) when a file exists and `force` is false. The project's
    `.env` is never written: it stays byte-identical, and a copy of it is kept (`.env.before-stackctl`,
    mode 0600, once) because `stackctl env render -p local` rewrites it later."""
    from stackctl.fsutil import SECRET_MODE, atomic_write

    existing = [rel for rel in init_plan.files if (root / rel).exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; nothing was "
                         "written", hint="pass --force to overwrite")
    written = []
    for rel, text in init_plan.files.items():
        atomic_write(root / rel, text)
        written.append(rel)
    if init_plan.backup is not None and not (root / init_plan.backup).exists():
        atomic_write(root / init_plan.backup, (root / ".env").read_bytes(), mode=SECRET_MODE)
        written.append(init_plan.backup)
    if init_plan.gitignore_add:
        gitignore = root / ".gitignore"
        current = gitignore.read_text() if gitignore.is_file() else ""
        if current and not current.endswith("\n"):
            current += "\n"
        block = "# stackctl: plaintext env files and private keys stay out of git\n" + "\n".join(
            init_plan.gitignore_add) + "\n"
        atomic_write(gitignore, current + block)
        written.append(".gitignore")
    return written


def import_secrets(root: Path, imported: EnvImport, names: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Put the imported secrets into the local profile's encrypted store, creating it with this
    machine's key as `stackctl secrets init` does when there is none. Values are kept as the local
    stack uses them (a local database was initialised with them), placeholders included (flagged).
    Returns (name, what happened) rows, never a value, and notes (a key created)."""
    from stackctl.profile import load_profile
    from stackctl.secrets import ops
    from stackctl.secrets import store as st

    if not names:
        return [], []
    profile = load_profile(root, "local")
    template = ops.template_of(profile)
    notes: list[str] = []
    if not profile.secrets.store.exists():
        notes.extend(ops.init(profile).notes)
    rows: list[tuple[str, str]] = []
    with st.transaction(profile.secrets.store, profile.name, display=ops.store_display(profile),
                        history=profile.secrets.history) as store:
        for name in names:
            value = imported.entries[name].value
            key = template.get(name)
            problem = key.generator.validate(value) if key is not None and key.generator is not None else None
            if value == "":
                rows.append((name, "skipped: empty (`stackctl secrets generate` or `secrets set` gives it one)"))
            elif problem:
                rows.append((name, f"skipped: the value {problem}"))
            elif name in store:
                same = store.value(name) == value
                rows.append((name, "kept: the store holds the same value" if same else
                             "kept: the store holds another value (`stackctl secrets import --overwrite` replaces it)"))
            else:
                store.put(name, value, type=key.type if key is not None else "manual", origin="import")
                rows.append((name, "imported" + (" (a placeholder value: fine locally, never for production)"
                                                 if ops.is_placeholder(value) else "")))
    return rows, notes


@dataclass
class ImportPlan:
    """`init --import-env` on a project that has its template already: what the import adds to it."""

    template: Path
    text: str  # the template's new text
    imported: EnvImport
    added: list[str] = field(default_factory=list)  # keys new to the template
    filled: list[str] = field(default_factory=list)  # config keys whose empty template value was set
    differs: list[str] = field(default_factory=list)  # config keys the template gives another value
    secrets: list[str] = field(default_factory=list)  # imported keys the template marks @secret


def plan_import(root: Path, *, env_files: list[Path] | None = None,
                environ: Mapping[str, str] | None = None) -> ImportPlan:
    """Merge the project's `.env` into the local profile's template (`.env.example`; made when there is
    none): keys it lacks are appended, an empty config value takes the imported one, everything else
    in the template is kept as written."""
    import os

    from stackctl.compose import dotenv
    from stackctl.secrets.template import load_template

    env = os.environ if environ is None else environ
    imported = read_env_import(root, env_files or [], env)
    if imported is None:
        raise InputError("no .env to import in the project directory", field="--import-env",
                         hint="name the file with --env-file FILE")
    path = root / ".env.example"
    if (root / "profiles" / "local.yaml").is_file():
        from stackctl.profile import load_profile

        path = load_profile(root, "local").env.template  # the template the local store is read against
    shown = display(path, root)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    template = load_template(path, display=shown) if path.is_file() else None
    entries = {e.key: e for e in dotenv.parse_entries(text, filename=shown)}
    lines = text.splitlines()
    out = ImportPlan(template=path, text=text, imported=imported)
    appended: list[str] = []
    origin = ", ".join(imported.files)
    for name, imp in imported.entries.items():
        key = template.get(name) if template is not None else None
        if key is None:
            is_secret, generator = imported.is_secret(name), secret_kind(name)[1]
            appended.append("")
            if is_secret:
                appended += [f"# Imported from {origin}: the value is in the local profile's encrypted store.",
                             f"# @secret {generator}" if generator else "# @secret", f"{name}="]
                out.secrets.append(name)
            else:
                appended += [f"# Value imported from {origin}.", "# @optional", imp.line]
            out.added.append(name)
        elif key.is_secret:
            out.secrets.append(name)
        elif key.kind == "config" and key.raw == "" and not key.inherit and imp.value != "":
            inline = entries[name].inline_comment if name in entries else None
            lines[key.line - 1] = imp.line + (f"  # {inline}" if inline else "")
            out.filled.append(name)
        elif key.kind == "config" and imp.value != "" and dotenv.parse(f"{_key_line(key)}\n") != {name: imp.value}:
            out.differs.append(name)
    if appended:
        lines += ["", f"# Imported from {origin} by `stackctl init --import-env`.", *appended[1:]]
    out.text = "\n".join(lines).lstrip("\n") + "\n"
    return out


def _key_line(key: Any) -> str:
    from stackctl.compose.dotenv import format_template, format_value

    if key.inherit:
        return str(key.name)
    return f"{key.name}={format_value(key.raw) if key.quote == chr(39) else format_template(key.raw)}"
