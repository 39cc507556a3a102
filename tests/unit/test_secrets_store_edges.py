"""The store's edges (issue 18, items 6–9): a removed recipient is locked out, the whole file is
covered by the MAC, a rolled-back file is noticed, key files and the key directory are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.errors import SecretsError
from stackctl.secrets import keys
from stackctl.secrets import store as st


def _identity(name: str) -> keys.Identity:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = X25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                    serialization.NoEncryption())
    return keys.Identity(name=name, private=raw, source=f"<{name}>")


@pytest.fixture
def pair(tmp_path: Path, isolated_env: Path) -> tuple[Path, keys.Identity, keys.Identity]:
    """A store with two generated recipients, A (who created it) and B."""
    a, b = _identity("a"), _identity("b")
    path = tmp_path / ".stackctl" / "secrets" / "production.json"
    st.create(path, "production", a, "a")
    with st.transaction(path, "production", ids=[a]) as s:
        s.put("DB_PASSWORD", "before-removal", type="hex:32", origin="generate")
        s.add_recipient("b", b.public)
    return path, a, b


# --- 6: removing a recipient locks them out -----------------------------------------------------
def test_removed_recipient_cannot_read_a_value_written_after_removal(pair) -> None:
    path, a, b = pair
    held = st.load(path, "production", ids=[b])  # what B knows before the removal: every data key
    b_deks = dict(held._deks)
    with st.transaction(path, "production", ids=[a]) as s:
        s.remove_recipient("b")
    with st.transaction(path, "production", ids=[a]) as s:
        s.put("DB_PASSWORD", "after-removal", type="hex:32", origin="rotate")
    doc = st.parse_document(path.read_text())
    ver = doc.secrets["DB_PASSWORD"].current_version
    for dek in b_deks.values():
        with pytest.raises(ValueError):
            st.unseal(dek, "production", "DB_PASSWORD", ver)
    with pytest.raises(SecretsError):
        st.load(path, "production", ids=[b])
    assert st.load(path, "production", ids=[a]).value("DB_PASSWORD") == "after-removal"


def test_removed_recipients_forgery_fails_verify(pair) -> None:
    path, a, b = pair
    b_deks = dict(st.load(path, "production", ids=[b])._deks)
    with st.transaction(path, "production", ids=[a]) as s:
        s.remove_recipient("b")
    # B re-seals the value with the data key it still knows and recomputes the file MAC
    doc = st.parse_document(path.read_text())
    entry = doc.secrets["DB_PASSWORD"]
    ver = entry.current_version
    for key_id, dek in b_deks.items():
        nonce, ct = st.seal(dek, "production", "DB_PASSWORD", ver.v, ver.id, "forged-by-b")
        forged = st.Version(v=ver.v, id=ver.id, created=ver.created, origin=ver.origin, key=key_id,
                            nonce=nonce, ct=ct)
        entry.versions[0] = forged
        doc.mac = st.compute_mac(doc, dek)
        path.write_text(st.dumps(doc))
        with pytest.raises(SecretsError):
            st.load(path, "production", ids=[a]).verify_all()


# --- 7: the whole file is covered; an altered own public key is detected -------------------------
@pytest.mark.parametrize(("where", "located"), [
    (lambda d: d["secrets"]["DB_PASSWORD"]["versions"][0], "secrets.DB_PASSWORD.versions[0]: unknown field 'x'"),
    (lambda d: d["secrets"]["DB_PASSWORD"], "secrets.DB_PASSWORD: unknown field 'x'"),
    (lambda d: d["recipients"]["b"], "recipients.b: unknown field 'x'"),
    (lambda d: next(iter(d["recipients"]["a"]["wrapped"].values())), "recipients.a.wrapped.k1: unknown field 'x'"),
])
def test_unknown_fields_anywhere_are_refused_with_their_place(pair, where, located) -> None:
    path, a, _ = pair
    data = json.loads(path.read_text())
    where(data)["x"] = "\x1b]0;owned\x07"
    path.write_text(json.dumps(data))
    for need_key in (True, False):
        with pytest.raises(SecretsError) as err:
            st.load(path, "production", ids=[a], need_key=need_key)
        assert located in str(err.value)


def test_an_altered_copy_of_my_own_public_key_is_detected_without_verifying(pair) -> None:
    path, a, _ = pair
    data = json.loads(path.read_text())
    data["recipients"]["a"]["public_key"] = _identity("mallory").public
    path.write_text(json.dumps(data))
    for need_key in (True, False):  # `secrets list` opens with need_key=False
        with pytest.raises(SecretsError) as err:
            st.load(path, "production", ids=[a], need_key=need_key)
        assert "recipient 'a' is your key" in str(err.value) and "public key in the file was changed" in str(err.value)


# --- 8: a store put back to an older copy is noticed; version numbers are never reused -----------
def test_rollback_of_the_file_warns_and_version_numbers_are_not_reused(pair, capsys) -> None:
    path, a, _ = pair
    old_copy = path.read_text()  # DB_PASSWORD v1, as committed earlier
    for value in ("second", "third"):
        with st.transaction(path, "production", ids=[a]) as s:
            s.put("DB_PASSWORD", value, type="hex:32", origin="rotate")
    assert st.load(path, "production", ids=[a]).entry("DB_PASSWORD").current == 3
    capsys.readouterr()
    path.write_text(old_copy)  # `git checkout <old> -- .stackctl/secrets/production.json`
    s = st.load(path, "production", ids=[a])
    err = capsys.readouterr().err
    assert "Warning:" in err and "an older copy was put back" in err and str(path) in err
    assert s.entry("DB_PASSWORD").current == 1
    with st.transaction(path, "production", ids=[a]) as s:
        ver = s.put("DB_PASSWORD", "after-rollback", type="hex:32", origin="rotate")
    assert ver.v == 4  # v2 and v3 existed (other copies of the file, other clusters) — never again
    capsys.readouterr()
    st.load(path, "production", ids=[a])  # written past the remembered generation: no warning any more
    assert "Warning" not in capsys.readouterr().err
    state = st.state_path()
    assert state.stat().st_mode & 0o777 == 0o600
    assert "after-rollback" not in state.read_text() and "third" not in state.read_text()


def test_a_store_without_id_and_generation_is_read_and_migrated_on_write(pair) -> None:
    path, a, _ = pair
    s = st.load(path, "production", ids=[a])
    doc = s.doc
    doc.store_id, doc.generation = None, None  # as written before these fields existed
    doc.mac = st.compute_mac(doc, s._deks[doc.active_key])
    path.write_text(st.dumps(doc))
    data = json.loads(path.read_text())
    assert "store_id" not in data and "generation" not in data
    assert st.load(path, "production", ids=[a]).value("DB_PASSWORD") == "before-removal"
    with st.transaction(path, "production", ids=[a]) as s:
        s.put("OTHER", "x", type="manual", origin="set")
    data = json.loads(path.read_text())
    assert len(data["store_id"]) == 32 and data["generation"] == 1
    st.load(path, "production", ids=[a]).verify_all()


def test_store_id_and_generation_are_covered_by_the_mac(pair) -> None:
    path, a, _ = pair
    data = json.loads(path.read_text())
    data["generation"] += 10
    path.write_text(json.dumps(data))
    with pytest.raises(SecretsError) as err:
        st.load(path, "production", ids=[a])
    assert "integrity check failed" in str(err.value)


# --- 9: env file, key files, key directory -----------------------------------------------------------
def test_more_rotations_than_history_keeps_is_stale_not_hand_edited(project) -> None:
    from stackctl.compose import dotenv
    from stackctl.profile import load_profile
    from stackctl.secrets import envfile, ops, secret_values

    project.write("compose.yaml", "services:\n  api:\n    image: busybox\n    environment:\n"
                                  "      JWT_SECRET: ${JWT_SECRET}\n")
    project.write(".env.example", "# @secret hex:32\nJWT_SECRET=\n")
    project.profile("staging", "compose:\n  files: [compose.yaml]\nsecrets:\n  history: 2\n")

    def prof():
        return load_profile(project.root, "staging")

    ops.generate(prof())
    envfile.render(prof())
    for _ in range(3):  # v1 (in the env file) leaves the kept history
        ops.rotate(prof(), ["JWT_SECRET"])
    assert [p.kind for p in envfile.check(prof()).problems] == ["stale"]
    assert envfile.render(prof()).changed == ["JWT_SECRET"]
    assert dotenv.load(project.root / ".env.staging")["JWT_SECRET"] == secret_values(prof())["JWT_SECRET"]


def test_a_stray_loose_key_file_does_not_block_the_key_actually_used(pair, monkeypatch) -> None:
    path, a, _ = pair
    directory = keys.keys_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stray = directory / "old.key"
    stray.write_text("whatever\n")
    stray.chmod(0o644)
    monkeypatch.setenv(keys.ENV_KEY, f"{keys.PRIVATE_PREFIX}{keys._b64(a.private)}")
    assert st.load(path, "production").value("DB_PASSWORD") == "before-removal"
    monkeypatch.delenv(keys.ENV_KEY)  # now no usable key: the unusable file is what the user must hear about
    with pytest.raises(SecretsError) as err:
        st.load(path, "production")
    assert "refusing a private key file readable by others (mode 0644)" in str(err.value)
    assert str(stray) in str(err.value)


def test_a_key_file_that_is_not_a_regular_file(isolated_env, monkeypatch) -> None:
    monkeypatch.setenv(keys.ENV_KEY_FILE, "/dev/null")
    with pytest.raises(SecretsError) as err:
        keys.identities()
    assert "not a regular file" in str(err.value) and "chmod" not in str(err.value)


def test_a_key_directory_writable_by_others_is_refused(isolated_env) -> None:
    ident, _ = keys.keygen("me")
    directory = keys.keys_dir()
    directory.chmod(0o777)
    with pytest.raises(SecretsError) as err:
        keys.default_identity()
    assert "writable by group or others (mode 0777)" in str(err.value)
    assert f"chmod 700 {directory}" in str(err.value)
    directory.chmod(0o700)
    assert keys.default_identity() == ident
