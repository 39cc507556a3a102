"""The profile's `gitops:` section (`stackctl render gitops`): the Secret provider, and the Argo CD /
Flux objects that point at the profile's overlay. Every error names the file and the field.

```yaml
gitops:
  secrets:
    provider: sops                 # sops | sealed-secrets | external-secrets
    recipients: [age1...]          # sops
    # cert: keys/sealed-secrets.pem  scope: strict       (sealed-secrets)
    # store: vault  store_kind: ClusterSecretStore  key: "{namespace}/{secret}/{key}"  (external-secrets)
  argocd: {repo: https://example.com/org/repo.git, revision: main}
  flux: {repo: https://example.com/org/repo.git, branch: main}
```
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from pathlib import Path

from stackctl.profile.reader import DNS1123_LABEL, DNS1123_SUBDOMAIN, Node
from stackctl.profile.types import SECRET_PROVIDERS, ArgoCDApp, FluxSync, GitOpsSettings, SecretProvider, display

AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")  # bech32: an X25519 age public key
SCOPES = ("strict", "namespace-wide", "cluster-wide")
STORE_KINDS = ("SecretStore", "ClusterSecretStore")
KEY_FIELDS = ("stack", "profile", "namespace", "secret", "key")
DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")
EXTERNAL_API_VERSIONS = ("external-secrets.io/v1beta1", "external-secrets.io/v1")
_PROVIDER_FIELDS = {
    "sops": ("recipients",),
    "sealed-secrets": ("cert", "scope"),
    "external-secrets": ("store", "store_kind", "key", "property", "refresh_interval", "api_version"),
}


def gitops_settings(node: Node | None, rel: Callable[[str], Path], root: Path) -> GitOpsSettings | None:
    """`rel` resolves a path of the profile against the project root (as every profile path)."""
    if node is None:
        return None
    node.only(("secrets", "argocd", "flux"))
    return GitOpsSettings(secrets=_provider(node.mapping("secrets"), rel, root),
                          argocd=_argocd(node.mapping("argocd")), flux=_flux(node.mapping("flux")))


def _provider(node: Node | None, rel: Callable[[str], Path], root: Path) -> SecretProvider | None:
    if node is None:
        return None
    provider = node.choice("provider", SECRET_PROVIDERS)
    if provider is None:
        raise node.fail(f"is required (one of {', '.join(SECRET_PROVIDERS)})", "provider")
    node.only(("provider", *_PROVIDER_FIELDS[provider]))
    if provider == "sops":
        recipients = node.string_list("recipients", required=True, pattern=AGE_RECIPIENT,
                                      what="must be an age recipient (age1 followed by 58 characters; "
                                           "`age-keygen -y KEYFILE` prints it)")
        return SecretProvider(provider=provider, recipients=tuple(sorted(set(recipients))))
    if provider == "sealed-secrets":
        cert_text = node.string("cert", required=True)
        assert cert_text is not None
        cert = rel(cert_text)
        return SecretProvider(provider=provider, cert=cert, cert_display=display(cert, root),
                              scope=node.choice("scope", SCOPES) or "strict")
    store = node.string("store", required=True, pattern=DNS1123_SUBDOMAIN,
                        what="must be the name of a SecretStore or ClusterSecretStore (a DNS-1123 subdomain)")
    assert store is not None
    key = node.string("key") or SecretProvider.key
    _pattern(node, "key", key)
    prop = node.string("property")
    if prop is not None:
        _pattern(node, "property", prop)
    interval = node.string("refresh_interval") or SecretProvider.refresh_interval
    if not DURATION.match(interval):
        raise node.fail("must be a duration such as 1h, 15m or 30s", "refresh_interval")
    return SecretProvider(provider=provider, store=store,
                          store_kind=node.choice("store_kind", STORE_KINDS) or "SecretStore",
                          key=key, property=prop, refresh_interval=interval,
                          api_version=node.choice("api_version", EXTERNAL_API_VERSIONS) or SecretProvider.api_version)


def _pattern(node: Node, field: str, pattern: str) -> None:
    """A remote key pattern names only the fields stackctl fills in (`{namespace}/{secret}/{key}`)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise node.fail(f"is not a valid pattern ({exc}); use {{field}} placeholders", field) from None
    for name in names:
        if name not in KEY_FIELDS:
            raise node.fail(f"unknown placeholder {{{name}}} (expected: "
                            f"{', '.join('{' + f + '}' for f in KEY_FIELDS)})", field)


def _argocd(node: Node | None) -> ArgoCDApp | None:
    if node is None:
        return None
    node.only(("repo", "revision", "path", "project", "namespace", "server", "automated"))
    repo = node.string("repo", required=True)
    assert repo is not None
    return ArgoCDApp(repo=repo, revision=node.string("revision") or "HEAD", path=_rel_path(node),
                     project=node.string("project") or "default",
                     namespace=node.string("namespace", pattern=DNS1123_LABEL, what="must be a namespace name "
                                           "(a DNS-1123 label)") or "argocd",
                     server=node.string("server") or ArgoCDApp.server, automated=node.boolean("automated", True))


def _flux(node: Node | None) -> FluxSync | None:
    if node is None:
        return None
    node.only(("repo", "branch", "path", "namespace", "interval", "decryption_secret"))
    repo = node.string("repo", required=True)
    assert repo is not None
    interval = node.string("interval") or FluxSync.interval
    if not DURATION.match(interval):
        raise node.fail("must be a duration such as 5m or 1h", "interval")
    return FluxSync(repo=repo, branch=node.string("branch") or "main", path=_rel_path(node),
                    namespace=node.string("namespace", pattern=DNS1123_LABEL, what="must be a namespace name "
                                          "(a DNS-1123 label)") or "flux-system",
                    interval=interval,
                    decryption_secret=node.string("decryption_secret", pattern=DNS1123_SUBDOMAIN,
                                                  what="must be a Secret name") or FluxSync.decryption_secret)


def _rel_path(node: Node) -> str | None:
    path = node.string("path")
    if path is not None and (path.startswith("/") or ".." in Path(path).parts):
        raise node.fail("must be a path inside the repository (relative, no '..')", "path")
    return path
