"""Shared fixtures: configs on the bundled sample data with the ``tiny`` model."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import REPO, SAMPLE  # noqa: F401 - re-exported for fixtures


@pytest.fixture
def sample_config(tmp_path):
    """``sample_config(**{"run.max_iters": 5})`` -> a validated Config writing under tmp_path."""
    from cockpit.config import load_config

    def make(*overrides: str, path: Path = SAMPLE / "shapes.toml"):
        base = [
            f"run.output_dir='{tmp_path / 'runs'}'",
            "run.max_iters=6",
            "run.log_every=1",
            "eval.every_epochs=0",
            "optim.warmup_iters=2",
            "data.num_workers=0",
        ]
        return load_config(path, base + list(overrides))

    return make
