"""The status bar and the headless log show the same epoch count and the LR actually used."""

from __future__ import annotations

import io

from cockpit.engine.events import RunStarted, StepMetrics
from cockpit.engine.headless import HeadlessPrinter
from cockpit.ui.state import CockpitState
from cockpit.ui.widgets.status_bar import StatusBar

# A max_iters run: 65 of 20 x 30 iterations, so it reaches epoch 3, not 20.
STARTED = RunStarted(
    run_dir="/runs/shapes-1",
    config={"run": {"epochs": 20, "max_iters": 65}, "optim": {"lr": 0.02}},
    environment={"device": "cpu"},
    start_iter=0,
    start_epoch=1,
    total_iters=65,
    iters_per_epoch=30,
    total_epochs=3,
    lr=2e-5,
)
STEP = StepMetrics(iter=40, epoch=2, lr=0.0156, losses={"loss_classifier": 0.5}, loss=0.5, iter_time=0.5)


def test_before_the_first_step_the_bar_shows_the_warm_up_lr_not_the_config_lr():
    state = CockpitState()
    state.apply(STARTED)
    text = str(StatusBar.render_state(state))
    assert state.lr == 2e-5 and "lr 2.00e-05" in text and "lr 0.02" not in text


def test_the_bar_and_the_log_count_the_same_epochs():
    state = CockpitState()
    state.apply_all([STARTED, STEP])
    printer = HeadlessPrinter(io.StringIO())
    printer.format(STARTED)
    line = printer.format(STEP)
    assert "ep 2/3" in str(StatusBar.render_state(state))
    assert "ep 2/3" in line


def test_streams_from_before_total_epochs_still_derive_it():
    old = RunStarted(run_dir="/r", config={}, environment={}, total_iters=65, iters_per_epoch=30)
    assert old.epochs == 3
