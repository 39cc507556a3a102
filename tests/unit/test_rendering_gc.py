"""`render kubernetes` runs without the cyclic garbage collector (its full passes over the render's one
big graph were the non-linear part of a 3,000-service render) and gives it back afterwards, also on
an error: the tests and any program that calls it in-process keep their collector."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from stackctl.cli import rendering


@pytest.mark.parametrize("fails", [False, True])
def test_the_collector_is_off_during_the_render_and_back_after(monkeypatch: pytest.MonkeyPatch, fails: bool) -> None:
    seen: list[bool] = []

    def body(*args: Any) -> None:
        seen.append(gc.isenabled())
        if fails:
            raise RuntimeError("render failed")

    monkeypatch.setattr(rendering, "_kubernetes", body)
    assert gc.isenabled()
    if fails:
        with pytest.raises(RuntimeError):
            rendering.kubernetes()
    else:
        rendering.kubernetes()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        rendering.kubernetes() if not fails else None
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
