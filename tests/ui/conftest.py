"""Fixtures for the cockpit's Pilot and snapshot tests: a scripted engine and an app factory."""

from __future__ import annotations


import pytest

from cockpit.config import Config
from fake_engine import CLASSES, FakeEngine, make_image, script



@pytest.fixture
def preview_png(tmp_path):
    return make_image(tmp_path / "preview.png")


@pytest.fixture
def ui_config(tmp_path) -> Config:
    config = Config.model_validate(
        {"run": {"name": "shapes"}, "data": {"classes": CLASSES}}
    )
    return config.with_base_dir(tmp_path)


@pytest.fixture
def make_app(ui_config, preview_png):
    """``make_app(events=None, **options) -> (app, fake)``: the cockpit over a FakeEngine."""
    from cockpit.ui.app import create_app

    def make(events=None, engine_factory=None, **options):
        fake = FakeEngine(script(image_path=str(preview_png)) if events is None else events, run_dir="runs/shapes-1")
        options.setdefault("redraw_interval", 0)
        app = create_app(fake, ui_config, "shapes.toml", engine_factory, **options)
        return app, fake

    return make

