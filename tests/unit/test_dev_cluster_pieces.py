"""The pure pieces of `stackctl dev` on a cluster (stackctl/dev/cluster.py): where a host file goes
in the container, the tar stream `tar -x -C /` unpacks there, deletions, the ledger played into new
containers, the forwarded ports, the log prefix, a taken local port."""

from __future__ import annotations

import io
import socket
import tarfile
from pathlib import Path

import pytest

from stackctl.dev.cluster import (
    Ledger,
    Plan,
    bind_local,
    container_path,
    forwarded_ports,
    prefixed,
    sync_plan,
    tar_stream,
)
from stackctl.dev.rules import WatchRule
from stackctl.errors import OperationError
from stackctl.model import Port, Service


def rule(path: Path, target: str | None = "/app", action: str = "sync", **kw: object) -> WatchRule:
    return WatchRule(service="web", action=action, path=path, target=target,  # type: ignore[arg-type]  # Literal
                     where="compose.yaml: services.web.develop.watch[0]", **kw)  # type: ignore[arg-type]


def test_a_file_below_the_watched_directory_goes_below_the_target(tmp_path: Path) -> None:
    r = rule(tmp_path / "src", "/app/src")
    assert container_path(r, tmp_path / "src" / "a" / "b.py") == "/app/src/a/b.py"
    assert container_path(r, tmp_path / "src" / "index.html") == "/app/src/index.html"


def test_a_watched_file_goes_to_the_target_itself(tmp_path: Path) -> None:
    r = rule(tmp_path / "nginx.conf", "/etc/nginx/nginx.conf")
    assert container_path(r, tmp_path / "nginx.conf") == "/etc/nginx/nginx.conf"


def test_a_rebuild_rule_has_no_container_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rebuild rule has no target"):
        container_path(rule(tmp_path, None, action="rebuild"), tmp_path / "x")


def test_the_tar_stream_holds_the_files_at_their_container_paths_with_their_modes(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "page.html").write_bytes(b"<h1>v2</h1>\n")
    data = tar_stream([(tmp_path / "run.sh", "/app/bin/run.sh"), (tmp_path / "page.html", "/srv/www/page.html")])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["app/bin/run.sh", "srv/www/page.html"]  # relative to / (tar -x -C /)
        assert members["app/bin/run.sh"].mode & 0o777 == 0o755
        assert members["srv/www/page.html"].uid == 0
        extracted = tar.extractfile("srv/www/page.html")
        assert extracted is not None and extracted.read() == b"<h1>v2</h1>\n"


def test_the_tar_stream_is_deterministic_in_order(tmp_path: Path) -> None:
    for name in ("b", "a"):
        (tmp_path / name).write_text(name)
    one = tar_stream([(tmp_path / "b", "/x/b"), (tmp_path / "a", "/x/a")])
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        assert tar.getnames() == ["x/a", "x/b"]


def test_a_path_that_is_gone_is_a_deletion_and_an_existing_one_a_copy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "kept.py").write_text("x")
    plan = sync_plan(rule(src, "/app"), [src / "kept.py", src / "removed.py"])
    assert plan.copy == [(src / "kept.py", "/app/kept.py")]
    assert plan.delete == ["/app/removed.py"]


def test_a_new_directory_is_walked_through_the_rules_ignore_patterns(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x")
    (src / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"\0")
    r = rule(src, "/app", ignore=("**/__pycache__",))
    plan = sync_plan(r, [src / "pkg"])
    assert plan.copy == [(src / "pkg" / "mod.py", "/app/pkg/mod.py")]
    assert plan.delete == []


def test_the_ledger_replays_the_latest_state_deletions_included(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    ledger = Ledger()
    ledger.record(Plan(copy=[(a, "/app/a"), (b, "/app/b")]))
    ledger.record(Plan(delete=["/app/b", "/app/image-file"]))
    assert ledger.replay() == Plan(copy=[(a, "/app/a")], delete=["/app/b", "/app/image-file"])
    ledger.record(Plan(copy=[(b, "/app/b")]))  # written again after its deletion
    assert ledger.replay() == Plan(copy=[(a, "/app/a"), (b, "/app/b")], delete=["/app/image-file"])
    ledger.clear()  # a rebuild: the new image holds the files
    assert ledger.replay() == Plan()


def test_the_ledger_skips_a_host_file_deleted_since(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.write_text("a")
    ledger = Ledger()
    ledger.record(Plan(copy=[(a, "/app/a")]))
    a.unlink()
    assert ledger.replay().copy == []


def test_published_ports_are_forwarded_from_the_same_local_port() -> None:
    svc = Service(name="web", ports=(Port(target=80, published="8080"), Port(target=9000),
                                     Port(target=53, published="5353", protocol="udp"),
                                     Port(target=7000, published="7000-7002")))
    assert forwarded_ports(svc) == [(8080, 80), (9000, 9000), (7000, 7000)]


def test_log_lines_carry_the_service_name_padded() -> None:
    assert prefixed("api", 6, "started") == "api    | started"


def test_a_taken_local_port_is_a_clear_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OperationError) as err:
            bind_local(port, "service web (ports[0])")
        assert f"service web (ports[0]): localhost:{port} is taken by another process" in str(err.value)
        assert "nothing was promoted" in str(err.value)
    finally:
        taken.close()
    free = bind_local(port, "service web (ports[0])")  # and free again once the other process is gone
    free.close()
