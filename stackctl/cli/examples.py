"""The examples at the end of every command's `--help`, in one table.

One place, so that a test can hold all of them to the real command line: tests/cli/test_help.py parses
every example with the typer app (an example that names a removed option fails the build) and checks
that no command is left without one.
"""

from __future__ import annotations

import typer

# command path -> (command line, what it does)
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "": (
        ("stackctl up", "the stack on this machine"),
        ("stackctl secrets rotate API_TOKEN", "a new value in the encrypted store"),
        ("stackctl promote production --diff", "what a promote would change"),
        ("stackctl promote production", "the stack on the cluster"),
        ("stackctl rollback production", "the previous revision again"),
    ),
    "env": (
        ("stackctl env check", "the local env file against .env.example"),
        ("stackctl env render -p staging", "write the env file of staging"),
    ),
    "secrets": (
        ("stackctl secrets generate", "fill every missing secret"),
        ("stackctl secrets list -p production", "names, versions, ages (no values)"),
    ),
    "secrets recipients": (
        ("stackctl secrets recipients list -p production", "who can open the store"),
    ),
    "render": (
        ("stackctl render kubernetes -p production", "the manifests on stdout"),
    ),
    "config": (
        ("stackctl config", "the local stack as every backend sees it"),
        ("stackctl config -p production -o yaml", "everything, as data (secret values masked)"),
    ),
    "init": (
        ("stackctl init", "profiles/ and .env.example from compose.yaml"),
        ("stackctl init -f compose.yaml -f compose.prod.yaml", "from these Compose files"),
        ("stackctl init --import-env", "an initialised project: merge .env into .env.example and the store"),
    ),
    "doctor": (
        ("stackctl doctor", "Docker, Compose and the local profile"),
        ("stackctl doctor -p production", "also the cluster of the production profile"),
    ),
    "up": (
        ("stackctl up", "everything, each service once what it needs is healthy"),
        ("stackctl up web --build", "web and what it depends on, images rebuilt"),
        ("stackctl up --watch", "then sync, rebuild, restart on edits (develop.watch) until Ctrl-C"),
    ),
    "down": (
        ("stackctl down", "remove containers and networks, keep the data"),
        ("stackctl down --volumes", "also remove the named volumes"),
    ),
    "status": (
        ("stackctl status", "one row per service"),
        ("stackctl status -o json", "the same as data"),
    ),
    "logs": (
        ("stackctl logs -f web", "follow web's log"),
        ("stackctl logs -n 50", "the last 50 lines of every service"),
    ),
    "restart": (
        ("stackctl restart worker", "restart and wait until it is healthy again"),
    ),
    "promote": (
        ("stackctl promote production --diff", "what would change, per object"),
        ("stackctl promote production --atomic", "apply; roll back if the rollout fails"),
        ("stackctl promote production --dry-run -o json", "a server-side dry run, as data"),
        ("stackctl promote staging --preview pr-42 --ttl 24h", "a preview in its own namespace"),
    ),
    "previews": (
        ("stackctl promote staging --preview pr-42", "the stack in namespace <ns>-pr-42"),
        ("stackctl previews list", "every preview, its branch and expiry"),
    ),
    "previews list": (
        ("stackctl previews list", "name, profile, namespace, branch, expiry"),
        ("stackctl previews list -o json", "the same as data"),
    ),
    "previews prune": (
        ("stackctl previews prune --expired --yes", "delete the expired previews"),
        ("stackctl previews prune pr-42", "delete preview pr-42 (asks first)"),
    ),
    "history": (
        ("stackctl history production", "the revisions in the cluster"),
        ("stackctl history production -o json", "the same as data"),
    ),
    "rollback": (
        ("stackctl rollback production", "back to the revision before the current one"),
        ("stackctl rollback production --to 3", "back to revision 3"),
    ),
    "run-job": (
        ("stackctl run-job production backup", "run the CronJob of service backup now"),
    ),
    "dev": (
        ("stackctl dev dev", "promote profile dev, then sync/rebuild on every change until Ctrl-C"),
        ("stackctl dev dev --down", "the same; Ctrl-C also deletes the dev namespace"),
    ),
    "env check": (
        ("stackctl env check", "the local env file against .env.example"),
        ("stackctl env check -p staging -o json", "the problems as data"),
    ),
    "env render": (
        ("stackctl env render", "write the env file Compose reads"),
        ("stackctl env render --dry-run", "say what would change"),
    ),
    "secrets keygen": (
        ("stackctl secrets keygen", "your key; prints the public key to share"),
    ),
    "secrets init": (
        ("stackctl secrets init -p production", "a store for production, you its first recipient"),
    ),
    "secrets generate": (
        ("stackctl secrets generate", "fill every missing secret"),
        ("stackctl secrets generate SESSION_KEY --force", "a new value for one, even if set"),
    ),
    "secrets rotate": (
        ("stackctl secrets rotate API_TOKEN", "a new value for API_TOKEN"),
        ("stackctl secrets rotate --all -p staging", "every secret that has a generator"),
    ),
    "secrets set": (
        ("stackctl secrets set STRIPE_KEY < key.txt", "a value from stdin"),
        ("stackctl secrets set TLS_KEY --from-file tls.key", "a value from a file, byte for byte"),
    ),
    "secrets import": (
        ("stackctl secrets import", "the secrets of the local env file into the store"),
        ("stackctl secrets import old.env -p production", "from another file"),
    ),
    "secrets list": (
        ("stackctl secrets list -p production", "names, types, versions, ages (no values)"),
    ),
    "secrets show": (
        ("stackctl secrets show DB_PASSWORD", "its metadata"),
        ("stackctl secrets show DB_PASSWORD --reveal", "its value, on stdout"),
    ),
    "secrets history": (
        ("stackctl secrets history DB_PASSWORD", "its kept versions, newest first"),
    ),
    "secrets rollback": (
        ("stackctl secrets rollback API_TOKEN", "the previous value again"),
        ("stackctl secrets rollback API_TOKEN --to 2", "version 2 again"),
    ),
    "secrets delete": (
        ("stackctl secrets delete OLD_TOKEN", "the secret and its history"),
    ),
    "secrets rekey": (
        ("stackctl secrets rekey -p production", "a new data key for the production store"),
    ),
    "secrets verify": (
        ("stackctl secrets verify -p production", "MAC and every kept version"),
    ),
    "secrets recipients list": (
        ("stackctl secrets recipients list -p production", "who can open the store"),
    ),
    "secrets recipients add": (
        ("stackctl secrets recipients add ci age1... -p production", "let the CI key open it"),
    ),
    "secrets recipients remove": (
        ("stackctl secrets recipients remove ci -p production", "then `secrets rekey` and `secrets rotate --all`"),
    ),
    "render gitops": (
        ("stackctl render gitops", "base/ + overlays/<profile>/ in deploy/gitops"),
        ("stackctl render gitops -p staging -p production --out gitops/", "these profiles, into gitops/"),
    ),
    "render kubernetes": (
        ("stackctl render kubernetes -p production", "the manifests on stdout (Secrets left out)"),
        ("stackctl render kubernetes -p production -o json", "the same as one JSON List"),
        ("stackctl render kubernetes -p production -d deploy/", "one file per object in deploy/"),
        ("stackctl render kubernetes -p production --report", "what each Compose field became"),
        ("stackctl render kubernetes -p production --strict", "exit 1 if anything is lost (CI)"),
        ("stackctl render kubernetes -p production --include-secrets | kubectl apply -f -",
         "with the real Secret values"),
    ),
    "render helm": (
        ("stackctl render helm", "a chart of every profile but local in deploy/helm/<stack>"),
        ("stackctl render helm -p production -p staging --out charts/shop", "two profiles, production the default"),
        ("stackctl render helm --version 1.4.0 --app-version \"$(git describe)\"", "the chart's versions (CI)"),
    ),
}


def epilog(path: str) -> str:
    """The `Examples:` block of one command; `\\b` keeps click from re-wrapping the lines. Side by side
    when that fits the help's width (click's: the terminal's, at most 80), else each under its comment."""
    from shutil import get_terminal_size

    fit = min(get_terminal_size().columns, 80) - 8  # click's indent, ours, the gap, "# "
    rows = EXAMPLES[path]
    width = max(len(line) for line, _ in rows)
    if all(width + len(what) <= fit for _, what in rows):
        lines = [f"  {line:<{width}}  # {what}" for line, what in rows]
    else:
        lines = [f"  # {what}\n  {line}" for line, what in rows]
    return "Examples:\n\n\b\n" + "\n".join(lines)


def attach(app: typer.Typer, prefix: str = "") -> None:
    """Set each registered command's and group's epilog from EXAMPLES (sub-apps included)."""
    app.info.epilog = epilog(prefix.strip())
    for command in app.registered_commands:
        path = f"{prefix}{command.name}"
        if path in EXAMPLES:
            command.epilog = epilog(path)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            attach(group.typer_instance, f"{prefix}{group.name} ")
