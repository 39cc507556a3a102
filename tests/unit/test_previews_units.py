"""Preview environments without a cluster: names, the objects made the preview's, the values kept or
generated, the expiry, what `previews prune` selects (stackctl.kubernetes.deploy.previews)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import InputError, OperationError, ProfileError
from stackctl.kubernetes.client import Ref
from stackctl.kubernetes.deploy import previews
from stackctl.profile import load_profile
from stackctl.profile.types import Profile

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    (tmp_path / ".env.example").write_text("# @secret password:20\nDB_PASSWORD=\n# @secret\nSTRIPE_KEY=\n"
                                           "LOG_LEVEL=info\n")
    return tmp_path


def profile(root: Path, kube: str = "namespace: shop") -> Profile:
    (root / "profiles" / "staging.yaml").write_text(f"compose: {{files: [compose.yaml]}}\nkubernetes: {{{kube}}}\n")
    return load_profile(root, "staging")


class FakeCluster:
    """`get` and `list` over a dict of objects; `delete` removes (the namespace is gone at once)."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {Ref.of(o).key: o for o in objects}
        self.deleted: list[str] = []

    def get(self, ref: Ref) -> dict[str, Any] | None:
        return self.objects.get(ref.key)

    def kind(self, api_version: str, kind: str) -> str:
        return kind

    def list(self, kind: str, namespace: str | None, *, selector: str | None = None) -> tuple[list[Any], str]:
        return [o for o in self.objects.values() if o["kind"] == kind
                and (selector is None or selector in (o["metadata"].get("labels") or {}))], "1"

    def delete(self, ref: Ref) -> bool:
        self.deleted.append(ref.name)
        return self.objects.pop(ref.key, None) is not None


def namespace(name: str, preview: str | None = None, expires: str | None = None, profile: str = "staging"
              ) -> dict[str, Any]:
    labels = {"stackctl.io/preview": preview, "stackctl.io/profile": profile} if preview else {}
    notes = {"stackctl.io/expires": expires} if expires else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels,
                                                                 "annotations": notes,
                                                                 "creationTimestamp": "2026-03-01T00:00:00Z"}}


# ---------------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------------
def test_the_namespace_is_the_profiles_plus_the_name(root: Path) -> None:
    assert previews.namespace_of(profile(root), "pr-42") == "shop-pr-42"
    prof = previews.profile_for(profile(root), "pr-42")
    assert prof.kubernetes is not None and prof.kubernetes.namespace == "shop-pr-42"


@pytest.mark.parametrize("name", ["PR-42", "pr_42", "-pr", "pr-", "", "pr.42", "p" * 64])
def test_a_name_that_is_not_a_dns_label_is_refused(root: Path, name: str) -> None:
    with pytest.raises(InputError) as info:
        previews.namespace_of(profile(root), name)
    assert info.value.exit_code == 2 and "--preview" in str(info.value) and "DNS-1123 label" in str(info.value)


def test_a_namespace_longer_than_63_characters_is_refused_with_the_longest_name_allowed(root: Path) -> None:
    prof = profile(root, "namespace: " + "n" * 50)
    assert previews.namespace_of(prof, "x" * 12) == "n" * 50 + "-" + "x" * 12  # 63: fine
    with pytest.raises(InputError) as info:
        previews.namespace_of(prof, "x" * 13)
    text = str(info.value)
    assert "would be 64 characters" in text and "at most 12 characters" in text


def test_a_reserved_namespace_is_refused(root: Path) -> None:
    with pytest.raises(InputError, match="reserves"):
        previews.namespace_of(profile(root, "namespace: kube"), "system")


def test_preview_hosts() -> None:
    assert previews.preview_host("shop.example.com", "pr-1") == "pr-1.shop.example.com"
    assert previews.preview_host("*.example.com", "pr-1") == "*.pr-1.example.com"


def test_profile_preview_settings(root: Path) -> None:
    prof = profile(root, "namespace: shop, preview: {ttl: 24h, generate: [DB_PASSWORD]}")
    assert prof.kubernetes is not None
    assert prof.kubernetes.preview.ttl == 24 * 3600 and prof.kubernetes.preview.generate == ("DB_PASSWORD",)
    for body, where in (("preview: {ttl: soon}", "kubernetes.preview.ttl"),
                        ("preview: {ttl: 0}", "kubernetes.preview.ttl"),
                        ("preview: {generate: [' x']}", "kubernetes.preview.generate[0]"),
                        ("preview: {generate: [A, A]}", "kubernetes.preview.generate[1]"),
                        ("preview: {keep: true}", "kubernetes.preview.keep")):
        with pytest.raises(ProfileError) as info:
            profile(root, f"namespace: shop, {body}")
        assert f"profiles/staging.yaml: {where}" in str(info.value), str(info.value)


# ---------------------------------------------------------------------------------------------
# begin: values and expiry
# ---------------------------------------------------------------------------------------------
def generating(root: Path) -> Profile:
    return profile(root, "namespace: shop, preview: {generate: [DB_PASSWORD]}")


def test_a_new_preview_generates_its_values_and_expires_after_the_ttl(root: Path) -> None:
    plan = previews.begin(FakeCluster(), generating(root), previews.Request("pr-1"), now=NOW)
    assert plan.namespace == "shop-pr-1" and plan.expires == "2026-03-04T12:00:00Z"
    value, digest = plan.values["DB_PASSWORD"]
    assert len(value) == 20 and len(digest) == 32
    assert value not in repr(plan)
    again = previews.begin(FakeCluster(), generating(root), previews.Request("pr-1", ttl=3600), now=NOW)
    assert again.values["DB_PASSWORD"][0] != value and again.expires == "2026-03-01T13:00:00Z"


def test_a_re_promote_reads_its_values_back_and_keeps_the_expiry_unless_ttl_is_given(root: Path) -> None:
    prof = generating(root)
    first = previews.begin(FakeCluster(), prof, previews.Request("pr-1"), now=NOW)
    objects = previews.finish([namespace("shop-pr-1")], first, lambda _: None)
    live = FakeCluster(*objects)
    second = previews.begin(live, prof, previews.Request("pr-1"), now=NOW + dt.timedelta(hours=5))
    assert second.values == first.values and second.expires == first.expires
    third = previews.begin(live, prof, previews.Request("pr-1", ttl=60), now=NOW + dt.timedelta(hours=5))
    assert third.values == first.values and third.expires == "2026-03-01T17:01:00Z"


def test_a_value_without_its_version_is_generated_again(root: Path) -> None:
    prof = generating(root)
    data = {"DB_PASSWORD": base64.b64encode(b"kept-value").decode()}
    stale = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": previews.VALUES_SECRET,
                                                                "namespace": "shop-pr-1"}, "data": data}

    def value() -> str:
        plan = previews.begin(FakeCluster(namespace("shop-pr-1", "pr-1"), stale), prof,
                              previews.Request("pr-1"), now=NOW)
        return plan.values["DB_PASSWORD"][0]

    assert value() != "kept-value" and len(value()) == 20
    data["DB_PASSWORD.version"] = base64.b64encode(b"abc").decode()
    assert value() == "kept-value"  # read back as it is, as the store keeps a value set by hand


@pytest.mark.parametrize(("name", "words"), [("LOG_LEVEL", "is not a @secret key"),
                                              ("NOPE", "is not a @secret key"),
                                              ("STRIPE_KEY", "has no generator")])
def test_generate_names_only_secrets_with_a_generator(root: Path, name: str, words: str) -> None:
    prof = profile(root, f"namespace: shop, preview: {{generate: [{name}]}}")
    with pytest.raises(ProfileError) as info:
        previews.begin(FakeCluster(), prof, previews.Request("pr-1"), now=NOW)
    assert f"profiles/staging.yaml: kubernetes.preview.generate[0]: {name} {words}" in str(info.value)


def test_a_namespace_that_is_not_this_preview_is_not_taken_over(root: Path) -> None:
    for live in (namespace("shop-pr-1"), namespace("shop-pr-1", "pr-2"), namespace("shop-pr-1", "pr-1", profile="x")):
        with pytest.raises(InputError, match="shop-pr-1"):
            previews.begin(FakeCluster(live), profile(root), previews.Request("pr-1"), now=NOW)


# ---------------------------------------------------------------------------------------------
# finish: the objects made the preview's
# ---------------------------------------------------------------------------------------------
def plan(values: bool = False) -> previews.Plan:
    return previews.Plan(name="pr-1", namespace="shop-pr-1", profile="staging", branch="feature/Login page",
                         expires="2026-03-04T12:00:00Z", values={"DB_PASSWORD": ("v" * 20, "d" * 32)} if values
                         else {}, versions={"DB_PASSWORD": "1" * 32} if values else {})


def ingress(ns: str = "shop-pr-1") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": ns},
            "spec": {"rules": [{"host": "shop.example.com"}, {"host": "*.shop.example.com"}],
                     "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]}}


def test_finish_labels_the_namespace_and_moves_the_ingress_hosts() -> None:
    warnings: list[str] = []
    ns = namespace("shop-pr-1")
    ns["metadata"]["labels"] = {"stackctl.io/stack": "demo"}
    ing = ingress()
    out = previews.finish([ns, ing], plan(values=True), warnings.append)
    meta = out[0]["metadata"]
    assert meta["labels"] == {"stackctl.io/stack": "demo", "stackctl.io/preview": "pr-1",
                              "stackctl.io/profile": "staging", "stackctl.io/branch": "feature-Login-page"}
    assert meta["annotations"] == {"stackctl.io/branch": "feature/Login page",
                                   "stackctl.io/expires": "2026-03-04T12:00:00Z"}
    assert [r["host"] for r in out[1]["spec"]["rules"]] == ["pr-1.shop.example.com", "*.pr-1.shop.example.com"]
    assert out[1]["spec"]["tls"][0]["hosts"] == ["pr-1.shop.example.com"]
    assert ing["spec"]["rules"][0]["host"] == "shop.example.com"  # the input is not changed
    assert any("shop-tls must exist in namespace shop-pr-1" in w for w in warnings)
    assert any("shop.example.com → pr-1.shop.example.com" in w for w in warnings)
    secret = out[2]
    assert secret["metadata"]["name"] == previews.VALUES_SECRET and secret["metadata"]["namespace"] == "shop-pr-1"
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]).decode() == "v" * 20
    assert secret["metadata"]["labels"]["stackctl.io/stack"] == "demo"


def test_finish_refuses_an_object_outside_the_preview_namespace() -> None:
    for stray in (ingress("shop"), {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                    "metadata": {"name": "x"}}):
        with pytest.raises(OperationError, match="outside the preview's shop-pr-1"):
            previews.finish([namespace("shop-pr-1"), stray], plan(), lambda _: None)
    with pytest.raises(OperationError, match="no Namespace"):
        previews.finish([ingress()], plan(), lambda _: None)
    with pytest.raises(OperationError, match="not the preview's"):
        previews.finish([namespace("shop")], plan(), lambda _: None)


def test_a_rollback_keeps_the_expiry_the_preview_has_now() -> None:
    old = namespace("shop-pr-1", "pr-1", "2026-03-01T00:00:00Z")
    live = FakeCluster(namespace("shop-pr-1", "pr-1", "2026-03-09T00:00:00Z"))
    out = previews.keep_expiry(live, [old, ingress()], "shop-pr-1")
    assert out[0]["metadata"]["annotations"]["stackctl.io/expires"] == "2026-03-09T00:00:00Z"
    assert old["metadata"]["annotations"]["stackctl.io/expires"] == "2026-03-01T00:00:00Z"
    assert out[1] == ingress()


def test_without_a_branch_no_branch_label() -> None:
    out = previews.finish([namespace("shop-pr-1")], dataclasses.replace(plan(), branch=None), lambda _: None)
    assert "stackctl.io/branch" not in out[0]["metadata"]["labels"]
    assert "stackctl.io/branch" not in out[0]["metadata"]["annotations"]


# ---------------------------------------------------------------------------------------------
# list and prune
# ---------------------------------------------------------------------------------------------
def cluster_with_previews() -> FakeCluster:
    return FakeCluster(namespace("shop"), namespace("shop-old", "old", "2026-03-01T11:00:00Z"),
                       namespace("shop-new", "new", "2026-03-02T11:00:00Z"),
                       namespace("shop-new-x", "new", "2026-03-01T11:59:59Z", profile="production"))


def test_list_shows_only_previews_with_their_expiry() -> None:
    found = previews.list_previews(cluster_with_previews(), now=NOW)
    assert [(i.namespace, i.name, i.expired) for i in found] == [
        ("shop-new", "new", False), ("shop-new-x", "new", True), ("shop-old", "old", True)]


def test_prune_selects_the_named_or_the_expired_and_never_a_namespace_that_is_not_a_preview() -> None:
    c = cluster_with_previews()

    def names(*args: str, expired: bool = False) -> list[str]:
        return [i.namespace for i in previews.select(c, args, expired=expired, now=NOW)]

    assert names(expired=True) == ["shop-new-x", "shop-old"]
    assert names("new") == ["shop-new", "shop-new-x"]  # a preview name: every profile's
    assert names("shop-new") == ["shop-new"]
    assert names("new", expired=True) == ["shop-new-x"]
    with pytest.raises(InputError, match="not a preview"):
        names("shop")
    with pytest.raises(InputError, match="no preview 'gone'"):
        names("gone")
    with pytest.raises(InputError, match="or pass --expired"):
        names()


def test_delete_refuses_a_namespace_that_lost_its_label_and_waits_for_the_rest() -> None:
    c = cluster_with_previews()
    chosen = previews.select(c, ["old"], expired=False, now=NOW)
    previews.delete(c, chosen, timeout=5, sleep=lambda _: None)
    assert c.deleted == ["shop-old"]
    info = previews.info_of(namespace("shop"), NOW)
    with pytest.raises(InputError, match="not a preview"):
        previews.delete(c, [dataclasses.replace(info, namespace="shop")], timeout=5)
    assert c.deleted == ["shop-old"]


def test_the_branch_git_has_checked_out(tmp_path: Path) -> None:
    import subprocess

    from stackctl import git

    assert git.current_branch(tmp_path) is None  # not a repository
    subprocess.run(["git", "init", "-q", "-b", "feature/x", str(tmp_path)], check=True)
    assert git.current_branch(tmp_path) == "feature/x"  # no commit yet: still the branch
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "--detach"], check=True)
    assert git.current_branch(tmp_path) is None  # detached HEAD
