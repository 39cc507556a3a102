"""`render kubernetes` runs without the cyclic garbage collector (its full passes over the render's one
big graph were the non-linear part of a 3,000-service render) and gives it back afterwards, also on
an error: the tests and any program that calls it in-process keep their collector."""

from __future__ import annotations

import contextlib
import gc
from types import SimpleNamespace
from typing import Any

import pytest

import stackctl.kubernetes.gather as gather
from stackctl.cli import rendering


@pytest.mark.parametrize("fails", [False, True])
def test_the_collector_is_off_during_the_render_and_back_after(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str], fails: bool) -> None:
    seen: list[bool] = []

    def load(profile: str) -> Any:
        seen.append(gc.isenabled())
        if fails:
            raise RuntimeError("render failed")
        return SimpleNamespace(name=profile)

    def render(*args: Any, **kwargs: Any) -> Any:  # a render of nothing
        seen.append(gc.isenabled())
        return SimpleNamespace(warnings=[], loaded=SimpleNamespace(notes=()),
                               rendered=SimpleNamespace(notes=(), objects=[]),
                               target=SimpleNamespace(kubernetes=SimpleNamespace(version="1.35", namespace="x")))

    monkeypatch.setattr(rendering, "load_profile", load)
    monkeypatch.setattr(gather, "render_profile", render)
    assert gc.isenabled()
    if fails:
        with pytest.raises(RuntimeError):
            rendering.kubernetes()
    else:
        rendering.kubernetes()
        assert "rendered 0 objects" in capsys.readouterr().err
    assert seen == [False] * (1 if fails else 2)
    assert gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
            rendering.kubernetes()
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()

