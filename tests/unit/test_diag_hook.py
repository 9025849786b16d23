"""DiagnosticsHook: feeds the history from StepOutcomes and publishes only state changes."""

from __future__ import annotations

import math
from types import SimpleNamespace

from cockpit.config.schema import Config
from cockpit.diagnostics.flags import CheckState
from cockpit.diagnostics.hook import DiagnosticsHook, boxes_and_sizes
from cockpit.engine.events import EvalResult, FlagRaised, Severity
from cockpit.engine.hooks import StepOutcome


class FakeTrainer:
    """Only what the hook may use: publish, config, iteration, is_headless."""

    def __init__(self, **patch):
        self.config = Config.model_validate(patch or {"optim": {"warmup_iters": 0}, "run": {"log_every": 10}})
        self.iteration = 0
        self.is_headless = True
        self.events: list[FlagRaised] = []

    def publish(self, event):
        self.events.append(event)

    def flags(self, rule=None):
        return [e for e in self.events if rule is None or e.rule == rule]


def step(it, box_reg=0.2, finite=True, data_time=0.01, boxes=(2, 3), cls=None):
    losses = {"loss_classifier": cls if cls is not None else 1.0 / (1 + it / 50), "loss_box_reg": box_reg,
              "loss_objectness": 0.1, "loss_rpn_box_reg": 0.02}
    if not finite:
        losses["loss_box_reg"] = math.nan
    return StepOutcome(iter=it, epoch=1, losses=losses, loss=sum(losses.values()), lr=0.01, grad_norm=1.0,
                       iter_time=0.2, data_time=data_time, batch_size=2, accumulation=1, finite=finite,
                       image_ids=[it, it + 1000], image_paths=[f"img{it}.png", None], boxes_per_image=list(boxes))


def run(hook, trainer, its, **kw):
    for it in its:
        trainer.iteration = it
        hook.after_step(trainer, step(it, **kw))


def test_healthy_steps_publish_ok_once_per_rule_and_nothing_flagged():
    trainer, hook = FakeTrainer(), DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 301), boxes=(2, 3))
    assert all(e.status == CheckState.OK.value for e in trainer.events)
    rules = [e.rule for e in trainer.events]
    assert len(rules) == len(set(rules))  # each rule announced once: NOT_CHECKED -> OK
    assert {"nonfinite_loss", "flat_loss", "divergence", "data_bottleneck"} <= set(rules)


def test_rules_are_evaluated_only_every_log_every_steps():
    trainer, hook = FakeTrainer(), DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 10))
    assert trainer.events == []
    run(hook, trainer, range(10, 11))
    assert trainer.flags("nonfinite_loss")


def test_label_zero_run_flagged_then_not_republished():
    trainer, hook = FakeTrainer(), DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 51), box_reg=0.0)
    flat = trainer.flags("flat_loss")
    assert len(flat) == 1 and flat[0].status == "FLAGGED" and flat[0].iter <= 50
    assert "no foreground matched" in flat[0].likely_cause
    run(hook, trainer, range(51, 101), box_reg=0.0)
    assert len(trainer.flags("flat_loss")) == 1  # same state: no new event
    run(hook, trainer, range(101, 131), box_reg=0.2)
    assert [e.status for e in trainer.flags("flat_loss")] == ["FLAGGED", "OK"]


def test_nonfinite_step_is_judged_at_once_with_culprit():
    trainer, hook = FakeTrainer(), DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 6))
    bad = step(6, finite=False)
    hook.after_step(trainer, bad)
    events = trainer.flags("nonfinite_loss")
    assert len(events) == 1 and events[0].status == "FLAGGED" and events[0].severity == Severity.ERROR
    assert "loss_box_reg" in events[0].evidence and "iteration 6" in events[0].evidence
    assert hook.recorder.culprit()["image_paths"][0] == "img6.png"
    assert hook.history.nonfinite_count == 1
    # A second NaN (after a rewind, same iteration number) is news.
    hook.after_step(trainer, step(6, finite=False))
    assert hook.history.nonfinite_count == 2
    second = trainer.flags("nonfinite_loss")
    assert len(second) == 2 and "2 non-finite step(s)" in second[-1].evidence


def test_on_oom_publishes_the_verdict_once_per_new_oom():
    trainer, hook = FakeTrainer(model={"arch": "fasterrcnn_resnet50_fpn"}), DiagnosticsHook()
    hook.before_train(trainer)
    verdict = hook.on_oom(trainer, {"iter": 4, "batch_size": 4, "image_size": None, "allocated_mb": 1000.0})
    assert verdict.state == CheckState.FLAGGED
    assert "batch_size>1 on 800px images" in verdict.flag.likely_cause  # arch default filled in
    (event,) = trainer.flags("cuda_oom")
    assert event.status == CheckState.FLAGGED and event.iter == 4
    # A second OOM at another iteration is news again.
    hook.on_oom(trainer, {"iter": 9, "batch_size": 4, "image_size": None, "allocated_mb": 1000.0})
    assert [e.iter for e in trainer.flags("cuda_oom")] == [4, 9]


def eval_result(it=300, n=10):
    return EvalResult(iter=it, epoch=3, metrics={"AP": 0.0}, per_class={}, num_images=n)


def test_after_eval_flags_threshold_with_histogram_and_corner_boxes():
    trainer = FakeTrainer(eval={"score_thresh": 0.9})
    hook = DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 201), cls=None)
    sample = [{"boxes": [[0.1, 0.1, 0.5, 0.5], [0, 0, 1, 1]], "size": [160, 160]}] * 4
    hook.after_eval(trainer, eval_result(), {"raw_scores": [0.2, 0.4, 0.6], "pred_boxes": sample})
    (no_val,) = trainer.flags("no_val_detections")
    assert no_val.status == "FLAGGED" and no_val.data["score_histogram"]["counts"][12] == 1
    (corner,) = trainer.flags("boxes_in_corner")
    assert corner.status == "FLAGGED" and "predicted" in corner.evidence


def test_probe_via_after_eval_extra():
    trainer, hook = FakeTrainer(), DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 201))
    hook.after_eval(trainer, eval_result(n=4), {"raw_scores": [0.9], "probe": True})
    assert trainer.flags("eval_probe")[0].status == "OK"
    assert trainer.flags("no_val_detections") == []


def test_data_bottleneck_via_hook_uses_config_num_workers():
    trainer = FakeTrainer(data={"num_workers": 0})
    hook = DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 101), data_time=0.15)
    (event,) = trainer.flags("data_bottleneck")
    assert event.status == "FLAGGED" and "data.num_workers" in event.fix


def test_boxes_and_sizes_formats():
    boxes, sizes = boxes_and_sizes([{"boxes": [[1, 2, 3, 4]], "image_size": (80, 100)},
                                    {"boxes": [], "width": 5, "height": 6}])
    assert boxes.shape == (1, 4) and sizes.tolist() == [[100, 80]]
    boxes, sizes = boxes_and_sizes(([[1, 2, 3, 4]], [[10, 20]]))
    assert sizes.tolist() == [[10, 20]]


def test_hook_works_with_a_minimal_trainer():
    trainer = SimpleNamespace(events=[], config=None, iteration=0, is_headless=False)
    trainer.publish = trainer.events.append
    hook = DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 21))
    assert trainer.events


def test_after_eval_without_raw_scores_uses_the_event_histogram():
    trainer, hook = FakeTrainer(), DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 201))
    result = EvalResult(iter=200, epoch=2, metrics={}, per_class={}, num_images=5, detections_per_image=0.0,
                        score_histogram=[4, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    hook.after_eval(trainer, result, {})
    (event,) = trainer.flags("no_val_detections")
    hist = event.data["score_histogram"]
    assert event.status == "FLAGGED" and len(hist["edges"]) == 11 and hist["counts"][0] == 4


def test_on_probe_consecutive_empty_probes():
    trainer, hook = FakeTrainer(), DiagnosticsHook()
    hook.before_train(trainer)
    run(hook, trainer, range(1, 201))
    hook.on_probe(trainer, {"iter": 200, "num_images": 4, "scores": [0.1]})
    hook.on_probe(trainer, {"iter": 250, "num_images": 4, "scores": [0.2]})
    assert [e.status for e in trainer.flags("eval_probe")] == ["OK", "FLAGGED"]
