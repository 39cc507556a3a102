"""`stackctl init`: scaffold profiles and an annotated `.env.example` from an existing Compose project.

Pure text generation plus one write step that refuses to overwrite (unless forced) and checks
every target before writing any, so a refused init leaves nothing half-written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from stackctl.errors import InputError
from stackctl.fsutil import TEMP_GLOB
from stackctl.profile.types import display

COMPOSE_CANDIDATES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
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


def env_example(variables: list[Variable], compose_label: str) -> str:
    lines = [
        f"# Environment template for {compose_label}: documents every variable the Compose files use.",
        "# Copy nothing by hand: `stackctl secrets generate` fills the secrets (encrypted store) and",
        "# `stackctl env render` writes the .env Compose reads. Annotations (see docs/secrets.md):",
        "#   @secret GENERATOR   a secret stackctl generates (hex:32, password:32, jwt-hs256, ed25519, ...)",
        "#   @secret             a secret someone must provide (stackctl secrets set NAME)",
        "#   @required / @optional",
        "",
    ]
    for var in variables:
        is_secret, generator = secret_kind(var.name)
        where = ", ".join(var.services) or "compose"
        lines.append(f"# Used by {where}.")
        if is_secret:
            lines.append(f"# @secret {generator}" if generator else "# @secret")
            lines.append(f"{var.name}=")
        else:
            needed = var.required or var.default is None
            lines.append("# @required" if needed else "# @optional")
            lines.append(f"{var.name}={_example_value(var.default or '')}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _example_value(value: str) -> str:
    if value == "" or re.fullmatch(r"[A-Za-z0-9_./:@,+-]*", value):
        return value
    return "'" + value + "'" if "'" not in value and "\n" not in value else '"' + value.replace('"', '\\"') + '"'


def profile_texts(compose_rel: list[str], stack: str | None, services: list[str]) -> dict[str, str]:
    files = "\n".join(f"    - {f}" for f in compose_rel)
    stack_line = f"stack: {stack}\n" if stack else ""
    local = (
        "# Local development: `stackctl up --profile local` runs this stack with Docker Compose.\n"
        f"{stack_line}compose:\n  files:\n{files}\n"
        "env:\n  template: .env.example\n  file: .env\n"
    )
    example_service = services[0] if services else "web"
    namespace = f"{stack or 'app'}-prod"[:63]
    production = (
        "# Production: `stackctl promote production` renders this profile for Kubernetes.\n"
        f"{stack_line}compose:\n  files:\n{files}\n"
        "env:\n  template: .env.example\n  file: .env.production\n"
        "defaults:\n"
        "  resources:\n"
        "    limits: {cpus: 500m, memory: 256Mi}\n"
        "    requests: {cpus: 100m, memory: 64Mi}\n"
        "services:\n"
        f"  {example_service}:\n"
        "    replicas: 2\n"
        "    strategy: rolling\n"
        "kubernetes:\n"
        "  context: production        # the kubeconfig context this profile may promote to\n"
        f"  namespace: {namespace}\n"
        "  protected: true            # promote asks for confirmation and checks the context\n"
    )
    return {"profiles/local.yaml": local, "profiles/production.yaml": production}


def find_compose(root: Path, explicit: list[Path]) -> list[Path]:
    if explicit:
        out = []
        for f in explicit:
            path = f if f.is_absolute() else (Path.cwd() / f)
            if not path.is_file():
                raise InputError("file not found", file=str(f), field="--compose")
            out.append(path.resolve())
        return out
    for name in COMPOSE_CANDIDATES:
        if (root / name).is_file():
            return [(root / name).resolve()]
    raise InputError(f"no Compose file found in {root} (looked for {', '.join(COMPOSE_CANDIDATES)})",
                     hint="pass --compose FILE")


def _read_compose(path: Path, root: Path) -> tuple[str | None, list[str]]:
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
    return name, sorted(str(s) for s in data["services"])


def _stack_name(name: str | None, root: Path) -> str | None:
    candidate = (name or root.name).lower()
    candidate = re.sub(r"[^a-z0-9-]+", "-", candidate).strip("-")[:63]
    return candidate or None


@dataclass
class InitPlan:
    files: dict[str, str]  # relative path → full text
    gitignore_add: list[str]
    variables: list[Variable]


def plan(root: Path, compose: list[Path]) -> InitPlan:
    files = find_compose(root, compose)
    name, services = _read_compose(files[0], root)
    for extra in files[1:]:
        services = sorted(set(services) | set(_read_compose(extra, root)[1]))
    rel = [display(f, root) for f in files]
    variables = collect_variables(files, root)
    texts = profile_texts(rel, _stack_name(name, root), services)
    texts[".env.example"] = env_example(variables, ", ".join(rel))
    gitignore = root / ".gitignore"
    present = set(gitignore.read_text().splitlines()) if gitignore.is_file() else set()
    return InitPlan(files=texts, gitignore_add=[ln for ln in GITIGNORE_LINES if ln not in present],
                    variables=variables)


def apply(root: Path, init_plan: InitPlan, *, force: bool) -> list[str]:
    """Write the plan; refuse (writing nothing) when a file exists and `force` is false."""
    from stackctl.fsutil import atomic_write

    existing = [rel for rel in init_plan.files if (root / rel).exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; nothing was "
                         "written", hint="pass --force to overwrite")
    written = []
    for rel, text in init_plan.files.items():
        atomic_write(root / rel, text)
        written.append(rel)
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
