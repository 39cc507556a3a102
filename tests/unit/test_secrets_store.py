"""The encrypted store: round trips, tamper detection, keys and recipients, history, rekey, file format."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from stackctl.errors import InputError, SecretsError
from stackctl.secrets import keys
from stackctl.secrets import store as st


@pytest.fixture
def me(isolated_env: Path) -> keys.Identity:
    ident, created = keys.keygen("me")
    assert created
    return ident


def other_identity(isolated_env: Path, name: str) -> keys.Identity:
    """A key that lives in another directory (another person's machine)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = X25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                    serialization.NoEncryption())
    return keys.Identity(name=name, private=raw, source=f"<{name}>")


def make_store(tmp_path: Path, me: keys.Identity, profile: str = "production", **values: str) -> Path:
    path = tmp_path / ".stackctl" / "secrets" / f"{profile}.json"
    st.create(path, profile, me, "me")
    with st.transaction(path, profile) as s:
        for name, value in values.items():
            s.put(name, value, type="hex:32", origin="generate")
    return path


def raw(path: Path) -> dict:
    return json.loads(path.read_text())


def write_raw(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))


def test_round_trip_and_file_mode(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha", B="multi\nline $value 'q' \"dq\" #")
    s = st.load(path, "production")
    assert s.values() == {"A": "alpha", "B": "multi\nline $value 'q' \"dq\" #"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text()
    assert "alpha" not in text and "multi" not in text
    assert (path.parent / ".gitignore").read_text().splitlines()[1:] == ["*.lock", ".*.tmp"]


def test_ciphertext_length_is_padded(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, SHORT="a", LONGER="abcdefghijklmnopqrstu")
    data = raw(path)["secrets"]
    assert len(data["SHORT"]["versions"][0]["ct"]) == len(data["LONGER"]["versions"][0]["ct"])


# --- tamper cases: each is detected, with a clear message, and nothing decrypts ------------------
def _expect_integrity_error(path: Path) -> None:
    with pytest.raises(SecretsError) as err:
        st.load(path, "production")
    assert "integrity check failed" in str(err.value) or "does not decrypt" in str(err.value) \
        or "not a valid secrets store" in str(err.value)
    assert err.value.exit_code == 1


def test_flipped_byte_in_a_ciphertext(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    data = raw(path)
    ct = bytearray(data["secrets"]["A"]["versions"][0]["ct"], "ascii")
    ct[5] = ord("A") if ct[5] != ord("A") else ord("B")
    data["secrets"]["A"]["versions"][0]["ct"] = ct.decode()
    write_raw(path, data)
    _expect_integrity_error(path)


@pytest.mark.parametrize("offset", [0, 37, 200, -40, -3])
def test_flipped_byte_anywhere_in_the_file(tmp_path: Path, me: keys.Identity, offset: int) -> None:
    path = make_store(tmp_path, me, A="alpha", B="beta")
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SecretsError):
        st.load(path, "production")


def test_values_swapped_between_keys(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha", B="beta")
    data = raw(path)
    a, b = data["secrets"]["A"]["versions"][0], data["secrets"]["B"]["versions"][0]
    for f in ("nonce", "ct"):
        a[f], b[f] = b[f], a[f]
    write_raw(path, data)
    _expect_integrity_error(path)


def test_swapped_values_fail_even_with_a_recomputed_mac(tmp_path: Path, me: keys.Identity) -> None:
    """Second layer: the AEAD associated data binds name/version/profile, whatever the MAC says."""
    path = make_store(tmp_path, me, A="alpha", B="beta")
    s = st.load(path, "production")
    a, b = s.doc.secrets["A"].versions[0], s.doc.secrets["B"].versions[0]
    a.nonce, b.nonce, a.ct, b.ct = b.nonce, a.nonce, b.ct, a.ct
    s.doc.mac = st.compute_mac(s.doc, s._deks[s.doc.active_key])
    path.write_text(st.dumps(s.doc))
    reopened = st.load(path, "production")  # the MAC now matches...
    with pytest.raises(SecretsError) as err:
        reopened.value("A")  # ...but the value is bound to B
    assert "A v1 does not decrypt" in str(err.value)
    assert "beta" not in str(err.value) and "alpha" not in str(err.value)


def test_removed_entry(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha", B="beta")
    data = raw(path)
    del data["secrets"]["B"]
    write_raw(path, data)
    _expect_integrity_error(path)


def test_removed_version_or_changed_current(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    with st.transaction(path, "production") as s:
        s.put("A", "alpha2", type="hex:32", origin="rotate")
    data = raw(path)
    data["secrets"]["A"]["current"] = 1  # silently roll back to the old value
    write_raw(path, data)
    _expect_integrity_error(path)


def test_reordered_versions(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    with st.transaction(path, "production") as s:
        s.put("A", "alpha2", type="hex:32", origin="rotate")
    data = raw(path)
    data["secrets"]["A"]["versions"].reverse()
    write_raw(path, data)
    _expect_integrity_error(path)


def test_entry_from_another_profile(tmp_path: Path, me: keys.Identity) -> None:
    prod = make_store(tmp_path, me, "production", A="prod-value")
    staging = make_store(tmp_path, me, "staging", A="staging-value")
    data = raw(prod)
    data["secrets"]["A"] = raw(staging)["secrets"]["A"]
    write_raw(prod, data)
    _expect_integrity_error(prod)


def test_whole_file_from_another_profile(tmp_path: Path, me: keys.Identity) -> None:
    staging = make_store(tmp_path, me, "staging", A="staging-value")
    with pytest.raises(SecretsError) as err:
        st.load(staging, "production")
    assert "belongs to profile 'staging', not 'production'" in str(err.value)
    data = raw(staging)
    data["profile"] = "production"
    target = staging.with_name("production.json")
    write_raw(target, data)
    with pytest.raises(SecretsError):  # the wrapped key and the MAC are bound to the profile too
        st.load(target, "production")


def test_tampered_wrapped_key(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    data = raw(path)
    w = data["recipients"]["me"]["wrapped"]["k1"]
    w["ct"] = w["ct"][:-6] + ("AAAA==" if not w["ct"].endswith("AAAA==") else "BBBB==")
    write_raw(path, data)
    with pytest.raises(SecretsError) as err:
        st.load(path, "production")
    assert "cannot unwrap the data key for recipient 'me'" in str(err.value)


def test_garbage_file_is_a_clear_error(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    path.write_text(path.read_text()[:100])
    with pytest.raises(SecretsError) as err:
        st.load(path, "production")
    assert "not a valid secrets store: invalid JSON at line" in str(err.value)


def test_a_failed_transaction_writes_nothing(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), st.transaction(path, "production") as s:
        s.put("A", "new", type="hex:32", origin="rotate")
        raise RuntimeError("boom")
    assert path.read_bytes() == before


# --- keys ----------------------------------------------------------------------------------------
def test_no_key_says_which_recipients_and_how(tmp_path: Path, me: keys.Identity, monkeypatch) -> None:
    path = make_store(tmp_path, me, A="alpha")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    with pytest.raises(SecretsError) as err:
        st.load(path, "production")
    msg = str(err.value)
    assert "no private key found to open this store (its recipients: me)" in msg
    assert "stackctl secrets keygen" in msg and "STACKCTL_SECRET_KEY" in msg
    locked = st.load(path, "production", need_key=False)  # metadata still readable
    assert locked.names == ["A"] and not locked.unlocked
    with pytest.raises(SecretsError):
        locked.value("A")


def test_wrong_key_is_refused(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    stranger = other_identity(tmp_path, "stranger")
    with pytest.raises(SecretsError) as err:
        st.load(path, "production", ids=[stranger])
    assert "none of your keys is a recipient of this store (recipients: me" in str(err.value)


def test_key_file_with_loose_permissions_is_refused(isolated_env: Path) -> None:
    ident, _ = keys.keygen("loose")
    path = Path(ident.source)
    os.chmod(path, 0o644)
    found = keys.identities()  # not used, so not an error yet (see test_secrets_store_edges.py)
    assert list(found) == [] and len(found.problems) == 1
    with pytest.raises(SecretsError) as err:
        keys.default_identity()
    assert "refusing a private key file readable by others (mode 0644)" in str(err.value)
    assert f"chmod 600 {path}" in str(err.value)


def test_keygen_is_idempotent_and_private(isolated_env: Path) -> None:
    a, created_a = keys.keygen()
    b, created_b = keys.keygen()
    assert created_a and not created_b and a.public == b.public
    key_file = Path(a.source)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert oct(key_file.parent.stat().st_mode & 0o777) == "0o700"
    assert str(isolated_env) in a.source  # under the temp XDG_CONFIG_HOME, never the real one
    assert "private" not in repr(a) and a.private.hex() not in repr(a)


def test_key_from_environment_variable(tmp_path: Path, me: keys.Identity, monkeypatch) -> None:
    path = make_store(tmp_path, me, A="alpha")
    key_line = Path(me.source).read_text().splitlines()[-1]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "ci-home"))
    monkeypatch.setenv("STACKCTL_SECRET_KEY", key_line)
    assert st.load(path, "production").value("A") == "alpha"
    monkeypatch.setenv("STACKCTL_SECRET_KEY", "STACKCTL-KEY-1:short")
    with pytest.raises(SecretsError) as err:
        st.load(path, "production")
    assert "$STACKCTL_SECRET_KEY: not a stackctl private key" in str(err.value)


# --- recipients ----------------------------------------------------------------------------------
def test_adding_a_recipient_does_not_reencrypt_removing_one_renews_the_key(tmp_path: Path,
                                                                            me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha", B="beta")
    before = raw(path)["secrets"]
    ci = other_identity(tmp_path, "ci")
    with st.transaction(path, "production") as s:
        s.add_recipient("ci", ci.public)
    assert raw(path)["secrets"] == before
    assert st.load(path, "production", ids=[ci]).values() == {"A": "alpha", "B": "beta"}
    with st.transaction(path, "production") as s:
        s.remove_recipient("ci")
    assert raw(path)["active_key"] == "k2" and raw(path)["secrets"] != before
    assert st.load(path, "production").values() == {"A": "alpha", "B": "beta"}
    with pytest.raises(SecretsError):
        st.load(path, "production", ids=[ci])


def test_recipient_guards(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha")
    with pytest.raises(SecretsError) as err, st.transaction(path, "production") as s:
        s.remove_recipient("me")
    assert "last recipient" in str(err.value)
    ci = other_identity(tmp_path, "ci")
    with st.transaction(path, "production") as s:
        s.add_recipient("ci", ci.public)
    with pytest.raises(SecretsError) as err, st.transaction(path, "production") as s:
        s.remove_recipient("me")
    assert "your own key" in str(err.value)
    with pytest.raises(InputError) as err, st.transaction(path, "production") as s:
        s.add_recipient("ci2", ci.public)
    assert "already recipient 'ci'" in str(err.value)
    with pytest.raises(InputError) as err, st.transaction(path, "production") as s:
        s.add_recipient("bad", "ssh-ed25519 AAAA")
    assert "not a stackctl public key" in str(err.value)


# --- versions, history, rollback -----------------------------------------------------------------
def test_history_is_capped_and_rollback_is_a_new_version(tmp_path: Path, me: keys.Identity) -> None:
    path = tmp_path / "s.json"
    st.create(path, "production", me, "me", history=3)
    for i in range(1, 6):
        with st.transaction(path, "production", history=3) as s:
            s.put("A", f"value-{i}", type="hex:32", origin="generate" if i == 1 else "rotate")
    s = st.load(path, "production", history=3)
    assert [v.v for v in s.entry("A").versions] == [5, 4, 3]
    assert s.value("A") == "value-5" and s.value("A", 3) == "value-3"
    with st.transaction(path, "production", history=3) as s:
        ver = s.rollback("A")
    assert ver.v == 6 and ver.origin == "rollback:v4"
    s = st.load(path, "production")
    assert s.value("A") == "value-4"
    with st.transaction(path, "production", history=3) as s:
        s.rollback("A", to=5)
    assert st.load(path, "production").value("A") == "value-5"
    with pytest.raises(InputError) as err, st.transaction(path, "production") as s:
        s.rollback("A", to=1)
    assert "A has no version 1 (kept: 7, 6, 5)" in str(err.value)


def test_digest_changes_on_rotation_only(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha", B="beta")
    d1 = st.load(path, "production", need_key=False)
    a1, b1 = d1.digest("A"), d1.digest("B")
    assert "alpha" not in a1
    with st.transaction(path, "production") as s:
        s.put("A", "alpha2", type="hex:32", origin="rotate")
    d2 = st.load(path, "production")
    assert d2.digest("A") != a1 and d2.digest("B") == b1
    st.rekey(path, "production")
    d3 = st.load(path, "production")
    assert d3.digest("A") == d2.digest("A") and d3.digest("B") == b1


# --- rekey ---------------------------------------------------------------------------------------
def test_rekey_keeps_everyone_in_and_reseals_everything(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, A="alpha", B="beta")
    ci = other_identity(tmp_path, "ci")
    with st.transaction(path, "production") as s:
        s.add_recipient("ci", ci.public)
        s.put("A", "alpha2", type="hex:32", origin="rotate")
    before = raw(path)
    old, new = st.rekey(path, "production")
    after = raw(path)
    assert (old, new) == ("k1", "k2") and after["active_key"] == "k2"
    assert all(set(r["wrapped"]) == {"k2"} for r in after["recipients"].values())
    old_cts = {v["ct"] for e in before["secrets"].values() for v in e["versions"]}
    new_cts = {v["ct"] for e in after["secrets"].values() for v in e["versions"]}
    assert not old_cts & new_cts
    for ident in (me, ci):
        s = st.load(path, "production", ids=[ident])
        assert s.values() == {"A": "alpha2", "B": "beta"} and s.value("A", 1) == "alpha"


def test_rekey_interrupted_after_the_first_step(tmp_path: Path, me: keys.Identity) -> None:
    """Step 1 (new wraps written next to the old) is a valid store; the next rekey finishes it."""
    path = make_store(tmp_path, me, A="alpha")
    with st.transaction(path, "production") as s:
        pending = s._add_pending_key()
    mid = raw(path)
    assert mid["active_key"] == "k1" and set(mid["recipients"]["me"]["wrapped"]) == {"k1", pending}
    assert st.load(path, "production").value("A") == "alpha"
    with st.transaction(path, "production") as s:  # ordinary writes still work in between
        s.put("B", "beta", type="hex:32", origin="generate")
    assert st.rekey(path, "production") == ("k1", pending)
    s = st.load(path, "production")
    assert s.values() == {"A": "alpha", "B": "beta"} and s.doc.key_ids() == [pending]


# --- format --------------------------------------------------------------------------------------
def test_format_is_stable_and_a_rotation_is_a_small_diff(tmp_path: Path, me: keys.Identity) -> None:
    path = make_store(tmp_path, me, **{f"K{i:02d}": f"v{i}" for i in range(20)})
    text = path.read_text()
    doc = st.parse_document(text)
    assert st.dumps(doc) == text  # load + dump is byte-identical
    with st.transaction(path, "production") as s:
        s.put("K07", "new", type="hex:32", origin="rotate")
    diff = [ln for ln in difflib.unified_diff(text.splitlines(), path.read_text().splitlines(), n=0, lineterm="")
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    # one new version line, `generation`, `current` and `mac` (- and +)
    assert len(diff) == 7, diff
    assert sum(ln.startswith("+") for ln in diff) == 4


def test_reseal_after_a_hand_merge(tmp_path: Path, me: keys.Identity) -> None:
    """Two branches rotated different keys: the merged file has both entries but a stale MAC."""
    from stackctl.secrets import ops

    path = make_store(tmp_path, me, A="alpha", B="beta")
    base = path.read_text()
    with st.transaction(path, "production") as s:
        s.put("A", "alpha2", type="hex:32", origin="rotate")
    ours = raw(path)
    path.write_text(base)
    with st.transaction(path, "production") as s:
        s.put("B", "beta2", type="hex:32", origin="rotate")
    merged = raw(path)
    merged["secrets"]["A"] = ours["secrets"]["A"]
    write_raw(path, merged)
    _expect_integrity_error(path)

    class P:  # the few Profile fields ops.verify uses
        name = "production"
        root = tmp_path

        class secrets:
            store = path
            history = 10

    result = ops.verify(P, reseal=True)  # type: ignore[arg-type]
    assert result["versions_checked"] == 4
    assert st.load(path, "production").values() == {"A": "alpha2", "B": "beta2"}


def test_errors_and_reprs_never_contain_values(tmp_path: Path, me: keys.Identity) -> None:
    secret = "s3cr3t-VALUE-xyz"
    path = make_store(tmp_path, me, A=secret)
    s = st.load(path, "production")
    assert secret not in repr(s) and secret not in repr(s.doc)  # the document holds ciphertext only
    with pytest.raises(SecretsError) as err:
        s.value("A", 9)
    assert secret not in str(err.value)
    with pytest.raises(InputError) as err2, st.transaction(path, "production") as s2:
        s2.put("A", "bad\x00value", type="hex:32", origin="set")
    assert "bad" not in str(err2.value)


def test_key_from_a_file_named_by_the_environment(tmp_path: Path, me: keys.Identity, monkeypatch) -> None:
    path = make_store(tmp_path, me, A="alpha")
    ci_key = tmp_path / "ci.key"
    ci_key.write_text(Path(me.source).read_text())
    os.chmod(ci_key, 0o600)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "ci-home"))
    monkeypatch.setenv("STACKCTL_SECRET_KEY_FILE", str(ci_key))
    assert st.load(path, "production").value("A") == "alpha"
    os.chmod(ci_key, 0o640)
    with pytest.raises(SecretsError) as err:
        st.load(path, "production")
    assert "(mode 0640)" in str(err.value)
