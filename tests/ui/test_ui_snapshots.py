"""Snapshots of a populated cockpit, driven by the fixed script of the fake engine.

Deterministic by construction: every event carries a fixed time (it/s and ETA come from
event times), the preview PNG is generated from fixed shapes, and toasts (which expire on
the wall clock) are cleared before the picture is taken. Regenerate the baselines with
``pytest tests/ui/test_ui_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import pytest

from ui_support import settle


async def _populated(pilot) -> None:
    await settle(pilot)
    pilot.app.clear_notifications()
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_populated_cockpit(snap_compare, make_app, size):
    app, _ = make_app()
    assert snap_compare(app, terminal_size=size, run_before=_populated)


def test_narrow_checklist_pane(snap_compare, make_app):
    app, _ = make_app()

    async def show_checklist(pilot) -> None:
        await pilot.press("3")
        await _populated(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=show_checklist)


def test_narrow_labels_pane(snap_compare, make_app):
    app, _ = make_app()

    async def show_labels(pilot) -> None:
        await pilot.press("6")
        await _populated(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=show_labels)


def test_preview_anchor_overlay(snap_compare, make_app):
    app, _ = make_app()

    async def show_anchors(pilot) -> None:
        await pilot.press("4", "a", "a")
        await _populated(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=show_anchors)
