"""The Secret files of `render gitops`: an unchanged Secret keeps its (randomised) encrypted file byte for
byte, a changed value or recipient re-encrypts, and what is recorded to tell reveals no value."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import ProfileError
from stackctl.kubernetes.gitops import secrets as gs
from stackctl.profile import load_profile
from stackctl.profile.types import Profile, SecretProvider

AGE = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
OTHER = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg"


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    (tmp_path / "profiles" / "production.yaml").write_text(
        "compose: {files: [compose.yaml]}\nkubernetes: {namespace: shop}\n")
    return load_profile(tmp_path, "production")


def secret(value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shop-env", "namespace": "shop", "labels": {"app.kubernetes.io/part-of": "shop"},
                         "annotations": {"stackctl.io/wave": "1"}},
            "type": "Opaque", "data": {"DB_PASSWORD": base64.b64encode(value.encode()).decode()}}


def seal(profile: Profile, provider: SecretProvider, obj: dict[str, Any],
         before: gs.Sealed | None = None) -> gs.Sealed:
    warnings: list[str] = []
    return gs.seal(profile, provider, obj, stack="shop", previous=before.record if before else None,
                   previous_text=before.text if before else None, warn=warnings.append)


def test_unchanged_secret_keeps_its_file_changed_one_is_encrypted_again(profile: Profile) -> None:
    sops = SecretProvider(provider="sops", recipients=(AGE,))
    first = seal(profile, sops, secret("hunter2-correct-horse"))
    assert first.path == "secrets/shop-env.sops.yaml" and "ENC[AES256_GCM" in first.text
    again = seal(profile, sops, secret("hunter2-correct-horse"), first)
    assert again.text == first.text and again.record == first.record
    rotated = seal(profile, sops, secret("another-value-entirely"), first)
    assert rotated.text != first.text and rotated.record != first.record
    recipients = seal(profile, SecretProvider(provider="sops", recipients=(AGE, OTHER)),
                      secret("hunter2-correct-horse"), first)
    assert recipients.text != first.text


def test_the_record_holds_no_value(profile: Profile) -> None:
    value = "hunter2-correct-horse"
    sealed = seal(profile, SecretProvider(provider="sops", recipients=(AGE,)), secret(value))
    assert sealed.record is not None and set(sealed.record) == {"salt", "digest"}
    encoded = base64.b64encode(value.encode()).decode()
    for text in (sealed.text, *sealed.record.values()):
        assert value not in text and encoded not in text


def test_a_bad_recipient_names_the_profile_field(profile: Profile) -> None:
    low_order = "age1" + "q" * 58  # well-formed, but no key can decrypt for it
    with pytest.raises(ProfileError) as info:
        seal(profile, SecretProvider(provider="sops", recipients=(low_order,)), secret("x"))
    assert str(info.value).startswith("profiles/production.yaml: gitops.secrets.recipients: ")


def test_a_missing_certificate_names_the_profile_field(profile: Profile) -> None:
    provider = SecretProvider(provider="sealed-secrets", cert=profile.root / "keys/none.pem",
                              cert_display="keys/none.pem")
    with pytest.raises(ProfileError) as info:
        seal(profile, provider, secret("x"))
    assert "profiles/production.yaml: gitops.secrets.cert: cannot read the sealed-secrets certificate " \
           "keys/none.pem" in str(info.value)


def test_external_secret_targets_the_same_secret(profile: Profile) -> None:
    provider = SecretProvider(provider="external-secrets", store="vault", store_kind="ClusterSecretStore",
                              key="{stack}/{profile}/{secret}", property="{key}")
    sealed = seal(profile, provider, secret(""))
    assert sealed.record is None and sealed.path == "secrets/externalsecret-shop-env.yaml"
    ext = gs.external_secret(profile, provider, secret(""), stack="shop")
    assert ext["spec"]["target"]["name"] == "shop-env"
    assert ext["spec"]["target"]["template"]["metadata"] == {"labels": {"app.kubernetes.io/part-of": "shop"},
                                                             "annotations": {"stackctl.io/wave": "1"}}
    assert ext["spec"]["data"] == [{"secretKey": "DB_PASSWORD",
                                    "remoteRef": {"key": "shop/production/shop-env", "property": "DB_PASSWORD"}}]
