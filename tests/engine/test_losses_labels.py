"""Loss choices, sampler settings, assignment telemetry and validation loss on the real engine."""

from __future__ import annotations

import json
from pathlib import Path
import math

import pytest
import torch
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

from cockpit.diagnostics.assignment_hook import AssignmentRulesHook
from cockpit.engine.assignment import KEYS
from cockpit.engine.commands import ApplyPatch
from cockpit.engine.events import AssignmentOverlay, CommandAck, FlagRaised, ConfigChanged, StepMetrics
from cockpit.engine.heads import CockpitRoIHeads
from cockpit.engine.hooks import Hook
from cockpit.engine.model import _build_tiny, build_model
from cockpit.engine.step import train_step
from cockpit.engine.trainer import Trainer
from cockpit.engine.val_loss import validation_loss
from support import Recorder
from tiny_objects import write_tiny_objects

CHOICES = [
    {"loss.box": "giou"},
    {"loss.box": "diou"},
    {"loss.box": "ciou"},
    {"loss.box": "l1"},
    {"loss.classifier": "focal"},
    {"loss.hard_negatives": True},
]


def sample_batch(config, count=4):
    from cockpit.data.loader import build_dataset

    dataset = build_dataset(config, "train", train=False)
    images, targets = zip(*[dataset[i] for i in range(count)])
    return list(images), list(targets)


def losses_of(model, images, targets, seed=0):
    torch.manual_seed(seed)
    model.train()
    return {k: v.item() for k, v in model(images, targets).items()}


def test_default_losses_equal_stock_torchvision_tiny(sample_config):
    config = sample_config()
    ours = build_model(config)
    stock = _build_tiny(config.data.num_classes, config.model)  # torchvision's FasterRCNN, untouched
    assert type(stock.roi_heads) is not CockpitRoIHeads
    stock.load_state_dict(ours.state_dict(), strict=True)
    images, targets = sample_batch(config)
    assert losses_of(ours, images, targets) == losses_of(stock, images, targets)


def test_default_losses_equal_stock_torchvision_mobilenet(sample_config):
    config = sample_config("model.arch='fasterrcnn_mobilenet_v3_large_320_fpn'", "model.min_size=96", "model.max_size=128")
    ours = build_model(config)
    stock = fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=config.data.num_classes, min_size=96, max_size=128,
        box_score_thresh=config.model.box_score_thresh,
    )
    stock.load_state_dict(ours.state_dict(), strict=True)
    images, targets = sample_batch(config, 2)
    ours_losses, stock_losses = losses_of(ours, images, targets), losses_of(stock, images, targets)
    assert list(ours_losses) == ["loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"]
    assert ours_losses == stock_losses


@pytest.mark.parametrize("choice", CHOICES + [{"sampler.roi_positive_fraction": 0.5}], ids=lambda c: str(c))
def test_checkpoint_of_any_loss_choice_loads_strict_into_stock(sample_config, choice):
    overrides = [f"{k}={json.dumps(v) if isinstance(v, str) else str(v).lower()}" for k, v in choice.items()]
    config = sample_config(*overrides)
    ours = build_model(config)
    images, targets = sample_batch(config, 2)
    optimizer = torch.optim.SGD(ours.parameters(), lr=0.01)
    train_step(ours, optimizer, torch.amp.GradScaler("cpu", enabled=False), images, targets,
               accumulation=1, grad_clip=0.0, amp=False, device_type="cpu")
    stock = _build_tiny(config.data.num_classes, config.model)
    stock.load_state_dict(ours.state_dict(), strict=True)
    for key, value in stock.state_dict().items():
        assert torch.equal(value, ours.state_dict()[key])


@pytest.mark.parametrize("choice", CHOICES, ids=lambda c: str(c))
def test_every_loss_choice_trains_with_finite_losses(sample_config, choice):
    overrides = [f"{k}={json.dumps(v) if isinstance(v, str) else str(v).lower()}" for k, v in choice.items()]
    config = sample_config(*overrides)
    torch.manual_seed(0)
    model = build_model(config)
    images, targets = sample_batch(config)
    default = losses_of(build_model(sample_config()), images, targets)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    results = [
        train_step(model, optimizer, scaler, images, targets, accumulation=1, grad_clip=0.0, amp=False, device_type="cpu")
        for _ in range(3)
    ]
    assert all(r.finite for r in results)
    assert set(results[0].losses) == set(default)  # torchvision's keys whatever the loss
    changed = "loss_box_reg" if "loss.box" in choice else "loss_classifier"
    if "loss.hard_negatives" not in choice:
        assert results[0].losses[changed] != pytest.approx(default[changed], rel=1e-3)


def test_hard_negatives_pick_the_highest_loss_background():
    heads_scores = torch.tensor([0.1, 5.0, 0.2, 3.0, 0.0, 9.0])
    labels = [torch.tensor([0, 0, 0, 0, 1, -1])]

    class Fixed(CockpitRoIHeads):
        def __init__(self):  # only what subsample() touches
            torch.nn.Module.__init__(self)

    heads = Fixed()
    heads.fg_bg_sampler = lambda labels: ([torch.tensor([0, 0, 0, 0, 1, 0], dtype=torch.uint8)],
                                          [torch.tensor([1, 0, 1, 0, 0, 0], dtype=torch.uint8)])
    heads._scorer = lambda candidates: [heads_scores]
    heads._candidates = [torch.zeros(6, 4)]
    sampled = heads.subsample(labels)[0].tolist()
    # Two negatives as the random sampler chose; the two highest-loss background ones (1, 3),
    # never the ignored proposal (5) however high its loss.
    assert sampled == [1, 3, 4]


def test_telemetry_does_not_change_the_numbers(sample_config):
    config = sample_config()
    model = build_model(config)
    images, targets = sample_batch(config)
    recorded = losses_of(model, images, targets)
    with model.cockpit_telemetry.paused():
        silent = losses_of(model, images, targets)
    assert recorded == silent


def test_telemetry_values_are_sane(sample_config):
    config = sample_config()
    model = build_model(config)
    images, targets = sample_batch(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = train_step(model, optimizer, torch.amp.GradScaler("cpu", enabled=False), images, targets,
                        accumulation=2, grad_clip=0.0, amp=False, device_type="cpu")
    labels = result.labels
    assert set(KEYS) <= set(labels)
    batch = model.roi_heads.fg_bg_sampler.batch_size_per_image
    assert 0 < labels["roi_fg"] and labels["roi_fg"] + labels["roi_bg"] <= batch
    assert labels["rpn_pos"] + labels["rpn_neg"] <= model.rpn.fg_bg_sampler.batch_size_per_image
    for key in ("gt_no_anchor", "roi_fg_frac", "cls_accuracy", "fg_cls_accuracy", "false_negative"):
        assert 0.0 <= labels[key] <= 1.0, key
    # torchvision adds each GT box to the proposals: at least that many foreground RoIs.
    gt_per_image = sum(t["boxes"].shape[0] for t in targets) / len(targets)
    assert labels["roi_fg"] >= gt_per_image


def test_validation_loss_is_repeatable_and_leaves_training_state_alone(sample_config):
    from torch.utils.data import DataLoader

    from cockpit.data.loader import SkippingDataset, build_dataset, collate_skipping

    config = sample_config()
    model = build_model(config)
    model.train()
    model.roi_heads.eval()  # an odd mix of modes must come back as it was
    val = build_dataset(config, "val", train=False)
    loader = DataLoader(SkippingDataset(torch.utils.data.Subset(val, range(4))), batch_size=2, collate_fn=collate_skipping)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    stats = bn.running_mean.clone()
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    first = validation_loss(model, loader, torch.device("cpu"), seed=0)
    assert torch.equal(torch.get_rng_state(), rng)
    second = validation_loss(model, loader, torch.device("cpu"), seed=0)
    assert first == second
    assert set(first) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss"}
    assert first["loss"] == pytest.approx(sum(v for k, v in first.items() if k != "loss"))
    assert torch.equal(bn.running_mean, stats)
    assert model.training and not model.roi_heads.training and model.backbone.training


class PatchAt(Hook):
    def __init__(self, at, changes):
        self.at, self.changes, self.seen = at, changes, {}

    def after_step(self, trainer, outcome):
        if outcome.iter == self.at:
            trainer.send(ApplyPatch(self.changes))
        if outcome.iter == self.at + 1:
            heads = trainer.model.roi_heads
            self.seen = {"box": heads.loss_settings.box, "fraction": heads.fg_bg_sampler.positive_fraction,
                         "rpn_fg": trainer.model.rpn.proposal_matcher.high_threshold}


def test_loss_and_sampler_are_live_and_recorded(sample_config):
    hook = PatchAt(2, {"loss.box": "giou", "sampler.roi_positive_fraction": 0.5, "sampler.rpn_fg_iou_thresh": 0.6})
    trainer = Trainer(sample_config("run.max_iters=4"), hooks=[hook])
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    trainer.join(120)
    trainer.close()
    assert hook.seen == {"box": "giou", "fraction": 0.5, "rpn_fg": 0.6}
    changed = events.of(ConfigChanged)
    assert changed and changed[0].iter == 2 and "loss.box" in changed[0].changed
    assert changed[0].config["loss"]["box"] == "giou"
    assert all(math.isfinite(e.loss) for e in events.of(StepMetrics))


def test_bad_live_loss_is_refused_with_the_choices(sample_config):
    trainer = Trainer(sample_config("run.max_iters=3"), hooks=[PatchAt(1, {"loss.box": "gio"})])
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    trainer.join(120)
    trainer.close()
    ack = next(e for e in events.of(CommandAck) if e.command == ApplyPatch.name)
    assert not ack.ok and "giou" in ack.message
    assert not events.of(ConfigChanged)


def test_sample_run_records_telemetry_and_val_loss(sample_config):
    trainer = Trainer(sample_config("run.max_iters=8", "run.log_every=4"))
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    trainer.join(180)
    trainer.close()
    lines = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in lines if r["kind"] == "train"]
    assert len(train) == 2
    for record in train:
        assert set(KEYS) <= set(record)
        assert record["roi_fg"] + record["roi_bg"] <= 64  # the tiny preset's RoIs per image
        for key in ("gt_no_anchor", "roi_fg_frac", "cls_accuracy", "fg_cls_accuracy", "false_negative"):
            assert 0.0 <= record[key] <= 1.0
    evals = [r for r in lines if r["kind"] == "eval"]
    assert evals and set(evals[-1]["val_loss"]) >= {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss"}
    assert all(math.isfinite(v) for v in evals[-1]["val_loss"].values())
    # Every preview (at the start, after each evaluation) brings its overlay.
    assert [e.iter for e in events.of(AssignmentOverlay)] == [0, 8]


def test_overlay_shows_positive_anchors_and_sampled_proposals(sample_config):
    from cockpit.data.loader import build_dataset
    from cockpit.engine.overlay import make_overlay

    config = sample_config()
    model = build_model(config)
    dataset = build_dataset(config, "val", train=False)
    index = next(i for i in range(len(dataset)) if dataset[i][1]["boxes"].numel())
    rng = torch.get_rng_state()
    overlay = make_overlay(model, dataset, index, device=torch.device("cpu"), iteration=3)
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    assert overlay.gt_boxes == [[round(v, 1) for v in box] for box in dataset[index][1]["boxes"].tolist()]
    assert overlay.positive_anchors and overlay.fg_proposals and overlay.bg_proposals
    assert set(overlay.gt_unmatched) <= set(range(len(overlay.gt_boxes)))
    width, height = dataset[index][0].shape[-1], dataset[index][0].shape[-2]
    for x1, y1, x2, y2 in overlay.fg_proposals:  # back in the image's own pixels
        assert -1 <= x1 < x2 <= width + 1 and -1 <= y1 < y2 <= height + 1


def test_tiny_objects_have_no_anchor_and_raise_the_flag(tmp_path):
    from cockpit.config import load_config

    path = write_tiny_objects(tmp_path / "tiny")
    config = load_config(path, ["run.max_iters=25", f"run.output_dir='{tmp_path / 'runs'}'"])
    # No pre-flight (as --no-check): the live rule, attached as every assembled run has it, must see it.
    trainer = Trainer(config, hooks=[AssignmentRulesHook()])
    events = Recorder()
    trainer.subscribe(events)
    trainer.start()
    trainer.join(180)
    trainer.close()
    steps = events.of(StepMetrics)
    assert steps[-1].labels["gt_no_anchor"] > 0.95
    flags = [e for e in events.of(FlagRaised) if e.rule == "no_anchor_match" and e.status == "FLAGGED"]
    assert flags and "16 px" in flags[0].evidence


def test_every_assembled_run_watches_label_assignment(sample_config):
    from cockpit.assembly import watched_hooks
    from cockpit.engine.session import RunRequest

    request = RunRequest(config=sample_config(), config_path=Path("shapes.toml"))
    assert any(isinstance(hook, AssignmentRulesHook) for hook in watched_hooks(request))
