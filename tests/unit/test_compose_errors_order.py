"""The loader's own reading of what Compose fails on, so that with several problems the error names the
same one every run (issue 12 item 11; Compose names whichever its map iteration meets first)."""

from __future__ import annotations

from pathlib import Path

from stackctl.compose.loader import ComposeInvocation, _cast_problem, _dangling, _interpolation_errors, _same_field


def test_dangling_references_in_service_order_worded_as_compose_words_them() -> None:
    data = {"services": {
        "zeta": {"depends_on": {"nope": {"condition": "service_started", "required": True},
                                "optional": {"condition": "service_started", "required": False}}},
        "alpha": {"networks": {"default": None, "front": None, "nonet": None},
                  "volumes": [{"type": "volume", "source": "novol", "target": "/d"},
                              {"type": "bind", "source": "/srv", "target": "/srv"}],
                  "secrets": [{"source": "s1"}, {"source": "nosecret"}], "configs": [{"source": "noconfig"}]}},
        "networks": {"default": {}, "front": {}}, "secrets": {"s1": {}}}
    assert _dangling(data) == [
        'service "alpha" refers to undefined network nonet', 'service "alpha" refers to undefined volume novol',
        'service "alpha" refers to undefined secret nosecret', 'service "alpha" refers to undefined config noconfig',
        'service "zeta" depends on undefined service "nope"']


def test_values_that_do_not_cast_as_compose_says_it() -> None:
    assert _cast_problem("services.api.read_only", "") == "failed to cast to expected type: invalid boolean: "
    assert _cast_problem("services.api.read_only", "Yes") is None
    assert _cast_problem("services.api.healthcheck.retries", "three") == (
        'failed to cast to expected type: strconv.Atoi: parsing "three": invalid syntax')
    assert _cast_problem("services.api.healthcheck.retries", "3") is None
    assert _cast_problem("services.api.environment.read_only", "") is None  # a string field
    assert _same_field("services.a.ports[0].target", "services.a.ports.0.target")


def test_interpolation_errors_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  zeta:\n    image: nginx:${Z:?set Z}\n    read_only: ${RO}\n"
        "  alpha:\n    image: nginx:${A:?set A}\n    environment: {X: '${Z:?set Z}'}\n")
    (tmp_path / "values.env").write_text("RO=maybe\n")
    invocation = ComposeInvocation(files=(tmp_path / "compose.yaml",), env_files=(tmp_path / "values.env",),
                                   profiles=(), project_name=None, project_directory=None)
    found = _interpolation_errors(invocation, tmp_path, {})
    assert [(name, field) for name, _, field, _ in found] == [
        ("Z", "services.zeta.image"), (None, "services.zeta.read_only"), ("A", "services.alpha.image"),
        ("Z", "services.alpha.environment.X")]
    assert found[1][3] == "failed to cast to expected type: invalid boolean: maybe"
    assert _interpolation_errors(invocation, tmp_path, {"Z": "1", "A": "2", "RO": "true"}) == []
