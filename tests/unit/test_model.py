"""The model builder: every architecture trains a step offline, weights errors are clear."""

from __future__ import annotations

import pytest
import torch

from cockpit.config import Config
from cockpit.engine.model import (
    ModelError,
    build_model,
    count_parameters,
    describe_model,
    hub_weights_path,
)
from cockpit.config.schema import ARCHITECTURES

# Small images keep the ResNet-50 variants to a couple of seconds per step on 2 cores.
SMALL = {"min_size": 64, "max_size": 96}


def make_config(arch: str, tmp_path=None, **model) -> Config:
    fields = {"arch": arch, **({} if arch == "tiny" else SMALL), **model}
    config = Config.model_validate({"model": fields, "data": {"classes": ["circle", "square"]}})
    if tmp_path is not None:
        config.with_base_dir(tmp_path)
    return config


def shrink(model):
    """Sample few proposals and RoIs: at torchvision's 512 RoIs per image the ResNet-50 box
    heads cost ~10 CPU-seconds per step, and the test is about wiring, not capacity."""
    model.rpn._pre_nms_top_n = {"training": 100, "testing": 100}
    model.rpn._post_nms_top_n = {"training": 50, "testing": 50}
    model.roi_heads.fg_bg_sampler.batch_size_per_image = 16
    return model


def batch():
    """Two images, the second with no objects (an empty target must train fine)."""
    images = [torch.rand(3, 80, 96), torch.rand(3, 80, 96)]
    targets = [
        {"boxes": torch.tensor([[8.0, 10.0, 40.0, 50.0], [50.0, 20.0, 90.0, 70.0]]), "labels": torch.tensor([1, 2])},
        {"boxes": torch.zeros((0, 4), dtype=torch.float32), "labels": torch.zeros((0,), dtype=torch.int64)},
    ]
    return images, targets


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_arch_trains_one_step_offline(arch, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # any download attempt would fail loudly
    torch.manual_seed(0)
    model = shrink(build_model(make_config(arch)))
    assert model.roi_heads.box_predictor.cls_score.out_features == 3
    assert model.roi_heads.box_predictor.bbox_pred.out_features == 3 * 4

    model.train()
    images, targets = batch()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.roi_heads.box_predictor.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    with torch.no_grad():
        (out,) = model(images[:1])
    assert set(out) == {"boxes", "labels", "scores"}


def test_size_and_score_threshold_come_from_config():
    model = build_model(make_config("fasterrcnn_mobilenet_v3_large_320_fpn", box_score_thresh=0.3))
    assert model.transform.min_size == (64,)
    assert model.transform.max_size == 96
    assert model.roi_heads.score_thresh == 0.3

    tiny = build_model(make_config("tiny"))
    assert tiny.transform.min_size == (160,) and tiny.transform.max_size == 160
    tiny = build_model(make_config("tiny", min_size=128, max_size=128))
    assert tiny.transform.min_size == (128,) and tiny.transform.max_size == 128


def test_default_weights_missing_from_cache_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError) as info:
        build_model(make_config("fasterrcnn_resnet50_fpn", weights="default"))
    message = str(info.value)
    assert "not on this machine" in message
    assert str(tmp_path) in message  # says where to copy the file
    assert "https://download.pytorch.org/" in message  # and what to download
    assert not any((tmp_path / "hub" / "checkpoints").glob("*"))


def test_default_weights_load_from_the_hub_cache(monkeypatch, tmp_path):
    from torchvision.models.detection import (
        FasterRCNN_MobileNet_V3_Large_320_FPN_Weights,
        fasterrcnn_mobilenet_v3_large_320_fpn,
    )

    # Stand in for the downloaded COCO file: same format, random values, no network.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    coco = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = hub_weights_path(FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.DEFAULT)
    path.parent.mkdir(parents=True)
    torch.save(coco.state_dict(), path)

    model = build_model(make_config("fasterrcnn_mobilenet_v3_large_320_fpn", weights="default"))
    assert model.roi_heads.box_predictor.cls_score.out_features == 3
    key = "backbone.body.0.0.weight"
    assert torch.equal(model.state_dict()[key], coco.state_dict()[key])


def test_hub_weights_path_follows_torch_home(monkeypatch, tmp_path):
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = hub_weights_path(FasterRCNN_ResNet50_FPN_Weights.DEFAULT)
    assert path.parent == tmp_path / "hub" / "checkpoints"
    assert path.name.endswith(".pth")


def test_tiny_has_no_default_weights():
    with pytest.raises(ModelError, match="tiny"):
        build_model(make_config("tiny", weights="default"))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_config("tiny"))
    torch.save({"model": model.state_dict(), "epoch": 3, "args": {"lr": 0.01}}, tmp_path / "ckpt.pth")
    torch.save(model.state_dict(), tmp_path / "bare.pth")

    for name in ("ckpt.pth", "bare.pth"):
        torch.manual_seed(1)
        # A relative path resolves against the config file's folder.
        loaded = build_model(make_config("tiny", tmp_path, weights=name))
        for key, value in model.state_dict().items():
            assert torch.equal(value, loaded.state_dict()[key]), key


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        build_model(make_config("tiny", tmp_path, weights="nope/last.pth"))


def test_checkpoint_with_other_classes_or_arch_is_a_clear_error(tmp_path):
    other = Config.model_validate({"model": {"arch": "tiny"}, "data": {"classes": ["a"]}})
    torch.save({"model": build_model(other).state_dict()}, tmp_path / "two.pth")
    with pytest.raises(ModelError, match="trained for 2 classes"):
        build_model(make_config("tiny", tmp_path, weights="two.pth"))

    mobile = build_model(make_config("fasterrcnn_mobilenet_v3_large_320_fpn"))
    torch.save({"model": mobile.state_dict()}, tmp_path / "mobile.pth")
    with pytest.raises(ModelError, match="different arch"):
        build_model(make_config("tiny", tmp_path, weights="mobile.pth"))

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        build_model(make_config("tiny", tmp_path, weights="junk.pth"))


def test_describe_model_is_json_able():
    import json

    model = build_model(make_config("tiny"))
    info = describe_model(model)
    assert info["arch"] == "tiny"
    assert info["params"] == count_parameters(model) > 0
    assert info["trainable_params"] == count_parameters(model, trainable_only=True)
    assert info["min_size"] == 160 and info["max_size"] == 160
    assert info["num_classes"] == 3
    json.dumps(info)


def test_uninstrumented_model_is_torchvisions_own_with_the_same_weights():
    from torchvision.models.detection._utils import Matcher
    from torchvision.models.detection.roi_heads import RoIHeads

    from cockpit.engine.assignment import RecordingMatcher

    torch.manual_seed(0)
    cockpit_model = build_model(make_config("tiny"))
    torch.manual_seed(0)
    plain = build_model(make_config("tiny"), instrument=False)
    assert isinstance(cockpit_model.rpn.proposal_matcher, RecordingMatcher)
    assert hasattr(cockpit_model, "cockpit_telemetry")
    assert type(plain.rpn.proposal_matcher) is Matcher
    assert type(plain.roi_heads) is RoIHeads
    assert not hasattr(plain, "cockpit_telemetry")
    # The same detector underneath: same keys, same initial weights for the same seed.
    assert plain.state_dict().keys() == cockpit_model.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), cockpit_model.state_dict().values()))
    images, targets = batch()
    assert set(plain(images, targets)) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
