"""ConfigMaps and Secrets: the services' environment split into config and secret keys, and the
Compose `secrets:` and `configs:` as objects."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from stackctl import model as m
from stackctl.errors import InputError
from stackctl.kubernetes import names as k
from stackctl.kubernetes.labels import A_VALUES
from stackctl.kubernetes.render import mapping
from stackctl.kubernetes.render.context import WAVE_CONFIG, Context, EnvEntry, Plan
from stackctl.secrets import mask

SECRET_NAME = re.compile(r"(PASSW(OR)?D|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL"
                         r"|(^|_)KEY$|(^|_)DSN$|(^|_)SALT$)", re.IGNORECASE)
# `DB_PASSWORD_FILE=/run/secrets/db_password` names where a secret is, not a secret.
NOT_SECRET_NAME = re.compile(r"_(FILE|PATH|DIR|URL_FILE|KEY_FILE|LENGTH|ENABLED|ALGORITHM)$", re.IGNORECASE)
# `scheme://user:password@` and `scheme://:password@` (Redis has no user).
URL_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]*:[^@\s/]+@", re.IGNORECASE)
# A store value shorter than this is not looked for inside other values: it would match by chance.
MIN_TRACKED_VALUE = 4
_SECRET_MARKER = re.compile(r"<secret:([A-Za-z_][A-Za-z0-9_]*)>")


def environment(ctx: Context) -> dict[str, list[EnvEntry]]:
    """Split every service's environment into ConfigMap keys and Secret keys.

    A variable is secret when it is annotated `@secret` in `.env.example`, when any secret flows
    into its value (`secret_flows_into`: its Compose value references one, or the value holds one,
    also through `env_file:` and `.env.example` defaults such as `JAVA_OPTS=-Dpw=${DB_PASSWORD}`),
    or (a safety net, with a note) when its name or value looks like a credential. A secret whose
    Compose value is exactly one variable (`${DB_PASSWORD}`) is stored once under that variable's
    name; any other secret value under `<service>.<NAME>`.
    """
    from stackctl.compose.interpolation import references

    out: dict[str, list[EnvEntry]] = {}
    shared: dict[str, str] = {}  # Secret data key → value, to detect disagreeing values
    for plan in ctx.sorted_plans:
        svc, entries = plan.svc, []
        for key in sorted(svc.environment):
            value = svc.environment[key]
            where = f"{plan.where}.environment.{key}"
            if value is None:
                ctx.warn(where, "has no value (Compose passes it from the shell, which Kubernetes cannot); "
                                 "set it in the profile's env file")
                continue
            template = ctx.secrets.templates.get((svc.name, key))
            refs: list[str] = []
            if template is not None:
                try:
                    refs = [r.name for r in references(template)]
                except InputError:
                    refs = []
            pure = _pure_reference(template)
            store_key: str | None = None
            if pure is not None and pure in ctx.secrets.keys:
                store_key = pure
            elif template is None and key in ctx.secrets.keys:
                store_key = key
            composite = store_key is None and (any(r in ctx.secrets.keys for r in refs)
                                               or secret_flows_into(ctx, value))
            if store_key is None and not composite and key not in ctx.secrets.keys:
                reason = ("its name looks like a credential" if SECRET_NAME.search(key)
                          and not NOT_SECRET_NAME.search(key) else
                          "its value holds URL credentials" if URL_CREDENTIALS.match(value) else None)
                if reason is None:
                    data_key = key if k.CONFIG_KEY.match(key) else ""
                    entries.append(EnvEntry(key=key, secret=False, data_key=data_key, value=value))
                    continue
                ctx.note(where, f"kept in a Secret because {reason}; annotate it `# @secret` in .env.example "
                                 "so the secrets store manages it")
                store_key = pure  # a plain `${VAR}`: named after VAR, like a store entry
            candidate = store_key or (None if composite else key)
            if candidate and k.CONFIG_KEY.match(candidate) and shared.get(candidate, value) == value:
                data_key = candidate
            else:
                data_key, store_key = k.config_key(f"{svc.name}.{key}"), None
            shared.setdefault(data_key, value)
            entries.append(EnvEntry(key=key, secret=True, data_key=data_key, value=value, store_key=store_key))
            ctx.env_secret_data.setdefault(
                data_key, (_secret_value(ctx, store_key, value), _fingerprint(ctx, store_key, value)))
        out[svc.name] = entries
    return out


def secrets_in(ctx: Context, value: str) -> list[tuple[str, str]]:
    """(store name, how it shows in `value`) for every secret that flows into `value`: its marker
    (a render without values) or its plaintext (a render with them)."""
    found = [(m.group(1), m.group(0)) for m in _SECRET_MARKER.finditer(value)]
    found += [(name, secret) for name, secret in sorted((ctx.secrets.values or {}).items(),
                                                         key=lambda item: -len(item[1]))
              if len(secret) >= MIN_TRACKED_VALUE and secret in value]
    return found


def command_args(ctx: Context, env: list[EnvEntry], argv: tuple[str, ...], needed: dict[str, str]) -> list[str]:
    """`command`/`args` for the container: a secret in them (`redis-server --requirepass
    ${REDIS_PASSWORD}`) becomes `$(VAR)`, which Kubernetes expands from the container's environment,
    VAR being filled from the Secret (`needed`: VAR → store name, added by `container_env`); the
    workload itself never holds the value."""
    out = []
    for arg in argv:
        text = mapping.escape_dollar(arg)
        for name, shown in secrets_in(ctx, arg):
            var = _secret_var(env, name)
            needed[var] = name
            text = text.replace(mapping.escape_dollar(shown), f"$({var})")
        out.append(text)
    return out


def shell_command(ctx: Context, env: list[EnvEntry], argv: tuple[str, ...], needed: dict[str, str]) -> list[str]:
    """`argv` as `sh -c 'exec …'` with every secret in it as `${VAR}` (VAR filled from the Secret, as
    for `command_args`): for a probe, where Kubernetes expands no `$(VAR)`. The arguments reach the
    program as they were (the shell only substitutes the variables)."""
    import shlex

    words = []
    for arg in argv:
        found = secrets_in(ctx, arg)
        if not found:
            words.append(shlex.quote(arg))
            continue
        text = _double_quoted(arg)
        for name, shown in found:
            var = _secret_var(env, name)
            needed[var] = name
            text = text.replace(_double_quoted(shown), "${" + var + "}")
        words.append(f'"{text}"')
    return ["/bin/sh", "-c", "exec " + " ".join(words)]


def _double_quoted(text: str) -> str:
    return re.sub(r'([\\"$`])', r"\\\1", text)


def _secret_var(env: list[EnvEntry], name: str) -> str:
    """The container variable that holds store secret `name`: its own name, unless the container
    has a variable of that name with another value."""
    same = next((e for e in env if e.key == name), None)
    if same is None or (same.secret and same.store_key == name):
        return name
    return f"STACKCTL_SECRET_{name}"


def secret_flows_into(ctx: Context, value: str) -> bool:
    """Whether a secret reached `value` by interpolation, wherever it was written (Compose file,
    env file, a `.env.example` default): shown as its marker (`stackctl.secrets.mask`) when the
    stack was resolved without values, found as the store's plaintext when it was resolved with
    them. Both renders then agree on which keys go to the Secret."""
    if mask.holds_secret(value):
        return True
    values = ctx.secrets.values or {}
    return any(len(secret) >= MIN_TRACKED_VALUE and secret in value for secret in values.values())


def _fingerprint(ctx: Context, store_key: str | None, value: str) -> str:
    """What a checksum annotation covers for one Secret value: the store's digest when the value
    is a store entry (it reveals nothing), else a hash of the value."""
    if store_key is not None and store_key in ctx.secrets.digests:
        return f"store:{ctx.secrets.digests[store_key]}"
    return f"sha256:{k.sha256(value)}"


def _secret_value(ctx: Context, store_key: str | None, value: str) -> str:
    if ctx.secrets.values is None:
        return ""
    if store_key is not None and store_key in ctx.secrets.values:
        return ctx.secrets.values[store_key]
    return value


def env_secret(ctx: Context) -> None:
    if not ctx.env_secret_data:
        return
    data = {key: b64(value.encode("utf-8")) for key, (value, _) in sorted(ctx.env_secret_data.items())}
    annotations = {} if ctx.secrets.values is not None else {A_VALUES: "omitted"}
    ctx.emit("Secret", ctx.secret_name, {"type": "Opaque", "data": data}, wave=WAVE_CONFIG,
              label_name=ctx.stack_label, annotations=annotations)


def file_objects(ctx: Context) -> dict[tuple[str, str], tuple[str, str, str]]:
    """Secret/ConfigMap objects for the Compose `secrets:` and `configs:` that services use.
    Returns (kind, name) → (object kind, object name, data key), kind being secret|config."""
    used_secrets = {ref.source for s in ctx.stack.services for ref in s.secrets}
    used_configs = {ref.source for s in ctx.stack.services for ref in s.configs}
    out: dict[tuple[str, str], tuple[str, str, str]] = {}
    for what, items, used in (("secret", ctx.stack.secrets, used_secrets),
                              ("config", ctx.stack.configs, used_configs)):
        obj_kind = "Secret" if what == "secret" else "ConfigMap"
        for item in items:
            if item.name not in used:
                continue
            where = f"{what}s.{item.name}"
            key = k.config_key(item.name)
            base = k.dns_label(item.resolved_name if item.external and item.resolved_name else item.name) or "x"
            if item.external:
                out[(what, item.name)] = (obj_kind, base, key)
                ctx.note(where, f"external: the {obj_kind} {base!r} with key {key!r} must exist in namespace "
                                 f"{ctx.namespace!r}")
                ctx.file_fingerprints[(what, item.name)] = f"external:{base}"
                continue
            name = ctx.claim_name(obj_kind, k.with_suffix(k.dns_label(ctx.stack.name) or "stack", base),
                                    where)
            content, fingerprint = _file_content(ctx, what, item, where)
            ctx.file_fingerprints[(what, item.name)] = fingerprint
            out[(what, item.name)] = (obj_kind, name, key)
            if what == "secret":
                value = b"" if ctx.secrets.values is None else (content or b"")
                annotations = {} if ctx.secrets.values is not None else {A_VALUES: "omitted"}
                ctx.emit("Secret", name, {"type": "Opaque", "data": {key: b64(value)}}, wave=WAVE_CONFIG,
                          label_name=ctx.stack_label, annotations=annotations)
            else:
                ctx.emit("ConfigMap", name, config_data({key: content or b""}), wave=WAVE_CONFIG,
                          label_name=ctx.stack_label)
    return out


def _file_content(ctx: Context, what: str, item: m.Secret, where: str) -> tuple[bytes | None, str]:
    if item.content is not None:
        data = item.content.encode("utf-8")
        return data, f"sha256:{k.sha256(data)}"
    if item.environment is not None:
        var = item.environment
        value = (ctx.secrets.values or {}).get(var)
        if var in ctx.secrets.digests:
            fingerprint = f"store:{ctx.secrets.digests[var]}"
        elif value is not None:
            fingerprint = f"sha256:{k.sha256(value)}"
        else:
            fingerprint = f"env:{var}"
        if ctx.secrets.values is not None and value is None:
            ctx.warn(where, f"its value comes from the variable {var}, which the store does not hold; the "
                             "object is rendered empty")
        return (value.encode("utf-8") if value is not None else None), fingerprint
    if item.file is not None:
        info = ctx.host.get(item.file)
        if info is None or info.kind != "file":
            reason = info.reason if info and info.reason else "it is not a readable file in the project"
            ctx.warn(where, f"file {info.display if info else item.file}: {reason}; the object is rendered empty")
            return None, f"missing:{item.name}"
        data = info.files.get("", b"")
        return data, f"sha256:{k.sha256(data)}"
    ctx.warn(where, f"has no file, environment or content; the {what} is rendered empty")
    return None, f"empty:{item.name}"


def container_env(ctx: Context, plan: Plan, env: list[EnvEntry], container: dict[str, Any], config_sums: dict[str, str],
                  secret_sums: dict[str, str], needed: Mapping[str, str] | None = None) -> None:
    """`needed`: container variable → store secret, for the `$(VAR)` of `command_args`."""
    config = {e.data_key: e.value for e in env if not e.secret and e.data_key}
    literal = [e for e in env if not e.secret and not e.data_key]
    secret = [e for e in env if e.secret]
    env_list: list[dict[str, Any]] = []
    for e in literal:
        env_list.append({"name": e.key, "value": mapping.escape_dollar(e.value)})
    for e in secret:
        env_list.append({"name": e.key, "valueFrom": {"secretKeyRef": {"name": ctx.secret_name,
                                                                     "key": e.data_key}}})
        secret_sums[f"Secret/{ctx.secret_name}/{e.data_key}"] = ctx.env_secret_data[e.data_key][1]
    present = {e.key for e in env}
    for var, name in sorted((needed or {}).items()):
        if var in present:
            continue
        # Under its own name only when that key is the store's (an @secret key); a key named after a
        # variable that only looks like a credential may hold another value.
        own = k.CONFIG_KEY.match(name) and name in ctx.secrets.keys
        data_key = name if own else k.config_key(f"{plan.svc.name}.{var}")
        ctx.env_secret_data.setdefault(data_key, (_secret_value(ctx, name, ""), _fingerprint(ctx, name, "")))
        env_list.append({"name": var, "valueFrom": {"secretKeyRef": {"name": ctx.secret_name, "key": data_key}}})
        secret_sums[f"Secret/{ctx.secret_name}/{data_key}"] = ctx.env_secret_data[data_key][1]
    if config:
        name = config_map(ctx, k.with_suffix(plan.name, "env", 253), {"data": dict(sorted(config.items()))},
                          plan.where, plan.name)
        container["envFrom"] = [{"configMapRef": {"name": name}}]
        for key, value in config.items():
            config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(value)
    if env_list:
        container["env"] = env_list


def _pure_reference(template: str | None) -> str | None:
    """`${NAME}`, `$NAME`, `${NAME:?msg}`, `${NAME:-default}` → NAME: the value is that variable."""
    if template is None:
        return None
    match = re.fullmatch(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?])[^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))",
                         template.strip())
    if not match:
        return None
    return match.group(1) or match.group(2)


def config_map(ctx: Context, name: str, body: dict[str, Any], owner: str, label_name: str) -> str:
    """Emit a ConfigMap, or reuse the one already emitted with the same contents (same keys, same
    values): services that mount the same files or share an environment share one object, named
    after its first user (plans render in name order, so the choice is deterministic). Returns its name."""
    digest = k.sha256(k.canonical(body))
    if digest in ctx.config_maps:
        return ctx.config_maps[digest]
    chosen = ctx.claim_name("ConfigMap", name, owner)
    ctx.emit("ConfigMap", chosen, body, wave=WAVE_CONFIG, label_name=label_name)
    ctx.config_maps[digest] = chosen
    return chosen


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def config_data(entries: Mapping[str, bytes]) -> dict[str, Any]:
    """`data` for UTF-8 text, `binaryData` (base64) for anything else."""
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, value in sorted(entries.items()):
        try:
            text[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = b64(value)
    out: dict[str, Any] = {}
    if text:
        out["data"] = text
    if binary:
        out["binaryData"] = binary
    return out
