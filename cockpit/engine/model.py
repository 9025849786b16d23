"""Build the Faster R-CNN a config asks for, with the box predictor sized for its classes.

Four torchvision architectures plus ``tiny``, a small random-init detector under
torchvision's own :class:`~torchvision.models.detection.FasterRCNN` class that trains on
a 2-core CPU. Weights come from nowhere (``none``), from torchvision's COCO weights
already in the torch hub cache (``default``), or from one of our checkpoints (a path).
Nothing here ever downloads: a missing file is a :class:`ModelError` that says how to get
it, so a run on an offline GPU server fails at once instead of hanging.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torchvision.models.detection import (
    FasterRCNN,
    FasterRCNN_MobileNet_V3_Large_320_FPN_Weights,
    FasterRCNN_MobileNet_V3_Large_FPN_Weights,
    FasterRCNN_ResNet50_FPN_V2_Weights,
    FasterRCNN_ResNet50_FPN_Weights,
    fasterrcnn_mobilenet_v3_large_320_fpn,
    fasterrcnn_mobilenet_v3_large_fpn,
    fasterrcnn_resnet50_fpn,
    fasterrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

__all__ = [
    "ModelError",
    "build_model",
    "count_parameters",
    "describe_model",
    "hub_weights_path",
    "load_checkpoint_weights",
]


class ModelError(Exception):
    """The model cannot be built as configured; the message says why and what to do."""


# arch -> (torchvision builder, its COCO weights enum). ``tiny`` is built separately.
_TORCHVISION: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "fasterrcnn_resnet50_fpn": (fasterrcnn_resnet50_fpn, FasterRCNN_ResNet50_FPN_Weights),
    "fasterrcnn_resnet50_fpn_v2": (fasterrcnn_resnet50_fpn_v2, FasterRCNN_ResNet50_FPN_V2_Weights),
    "fasterrcnn_mobilenet_v3_large_fpn": (
        fasterrcnn_mobilenet_v3_large_fpn,
        FasterRCNN_MobileNet_V3_Large_FPN_Weights,
    ),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        fasterrcnn_mobilenet_v3_large_320_fpn,
        FasterRCNN_MobileNet_V3_Large_320_FPN_Weights,
    ),
}

TINY_SIZE = 160
"""Default min_size / max_size of the ``tiny`` preset (it is meant for ~160 px images)."""


def build_model(config, instrument: bool = True) -> nn.Module:
    """Build the detector described by ``config.model`` for ``config.data.num_classes``.

    ``num_classes`` counts the background. ``config.model.min_size`` / ``max_size`` override
    the architecture's own resize defaults; ``box_score_thresh`` is passed through.
    ``instrument`` False leaves out what cockpit adds to torchvision's model (the recording
    matcher and samplers, the RoI heads that take the ``[loss]`` / ``[sampler]`` settings,
    which are then ignored): the bare loop of ``bench/`` trains the model as the lesson
    builds it, so that what the telemetry costs counts as cockpit's.
    Raises :class:`ModelError` (never a download, never a bare traceback) when weights or a
    checkpoint cannot be used.
    """
    section = config.model
    num_classes = config.data.num_classes
    weights = (section.weights or "none").strip()
    mode = weights.lower()

    if section.arch == "tiny":
        if mode == "default":
            raise ModelError(
                "model.weights = \"default\": the tiny preset has no pretrained weights; "
                "use weights = \"none\" or a checkpoint path from an earlier tiny run"
            )
        model = _build_tiny(num_classes, section)
    elif section.arch in _TORCHVISION:
        model = _build_torchvision(section.arch, num_classes, section, pretrained=(mode == "default"))
    else:
        raise ModelError(f"unknown model.arch {section.arch!r}")

    if mode not in ("none", "default"):
        path = config.resolve_path(weights) if hasattr(config, "resolve_path") else Path(weights)
        load_checkpoint_weights(model, Path(path), num_classes=num_classes)
    # Remembered for describe_model: the torchvision classes do not know their preset name.
    model.cockpit_arch = section.arch
    if not instrument:
        return model
    # Telemetry, loss choices and sampler settings: no new parameters, so the weights
    # (and the checkpoint above) keep torchvision's keys.
    from cockpit.engine.heads import apply_settings, install

    install(model)
    apply_settings(model, config)
    return model


def hub_weights_path(weights_enum) -> Path:
    """Where ``torch.hub`` keeps the file for a torchvision weights entry (it may not exist)."""
    filename = os.path.basename(weights_enum.url.split("?")[0])
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _build_torchvision(arch: str, num_classes: int, section, *, pretrained: bool) -> nn.Module:
    builder, weights_cls = _TORCHVISION[arch]
    kwargs: dict[str, Any] = {"box_score_thresh": section.box_score_thresh}
    if section.min_size is not None:
        kwargs["min_size"] = section.min_size
    if section.max_size is not None:
        kwargs["max_size"] = section.max_size

    if pretrained:
        entry = weights_cls.DEFAULT
        path = hub_weights_path(entry)
        if not path.is_file():
            raise ModelError(
                f"model.weights = \"default\": torchvision's COCO weights for {arch} are not on "
                f"this machine (looked for {path}). Download {entry.url} on a machine with "
                f"internet access and copy it to {path} (or set TORCH_HOME to a folder whose "
                f"hub/checkpoints/ holds it), or use weights = \"none\"."
            )
        # The file is in the cache, so load_state_dict_from_url reads it and never downloads.
        # The COCO head has 91 classes; it is replaced below.
        try:
            model = builder(
                weights=entry,
                weights_backbone=None,
                trainable_backbone_layers=section.trainable_backbone_layers,
                **kwargs,
            )
        except Exception as exc:  # a truncated or foreign file in the cache
            raise ModelError(
                f"model.weights = \"default\": could not load {path}: {exc}. Delete the file and "
                f"copy a fresh download of {entry.url} there."
            ) from exc
    else:
        # trainable_backbone_layers is not passed: without pretrained weights torchvision
        # trains every layer anyway and only warns when told otherwise.
        model = builder(weights=None, weights_backbone=None, num_classes=91, **kwargs)

    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
    return model


# --------------------------------------------------------------------------- tiny preset


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    # Plain (trainable) BatchNorm: with 4 images of 160x160 a conv layer still averages over
    # thousands of positions per channel, so batch statistics are stable, and random-init
    # training without normalisation converges far more slowly. FrozenBN only makes sense
    # with pretrained statistics, which tiny never has.
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyBackbone(nn.Module):
    """A stride-8 conv stack with 128 output channels (``out_channels`` as FasterRCNN wants).

    Stride 8 gives a 20x20 map on 160 px images, so 20 px objects still cover a few cells;
    the extra stride-8 convolutions grow the receptive field to cover ~70 px objects.
    """

    def __init__(self, width: int = 96, out_channels: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(3, 32, 2),
            _conv_bn(32, 32),
            _conv_bn(32, 64, 2),
            _conv_bn(64, 64),
            _conv_bn(64, width, 2),
            _conv_bn(width, width),
            _conv_bn(width, out_channels),
        )
        self.out_channels = out_channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict([("0", self.body(x))])


def _build_tiny(num_classes: int, section) -> nn.Module:
    backbone = TinyBackbone()
    anchors = AnchorGenerator(sizes=((16, 32, 64, 128),), aspect_ratios=((0.5, 1.0, 2.0),))
    # One sample per bin: at stride 8 a 7x7 grid over a <=56 px box already has bins smaller
    # than a feature cell, so more samples add RoIAlign backward time and no information.
    roi_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=1)
    size = TINY_SIZE
    # The box head's input is out_channels x 7 x 7; torchvision's 1024-wide MLP would hold
    # most of the parameters and dominate the matrix multiplies for no gain on simple data.
    representation = 256
    box_head = TwoMLPHead(backbone.out_channels * 7 * 7, representation)
    return FasterRCNN(
        backbone,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(representation, num_classes),
        min_size=section.min_size if section.min_size is not None else size,
        max_size=section.max_size if section.max_size is not None else size,
        rpn_anchor_generator=anchors,
        box_roi_pool=roi_pool,
        # Few proposals and few sampled RoIs: RoIAlign's backward dominates CPU time, and
        # 64 RoIs per image made an iteration ~6x faster than torchvision's 512.
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=64,
        box_detections_per_img=50,
        box_score_thresh=section.box_score_thresh,
    )


# --------------------------------------------------------------------------- checkpoints


def _read_checkpoint(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception:
        # torchvision's references pickle argparse.Namespace under "args", which the safe
        # loader refuses; the user named this file as their own checkpoint, so load it fully.
        return torch.load(path, map_location="cpu", weights_only=False)


def load_checkpoint_weights(model: nn.Module, path: Path, *, num_classes: int | None = None) -> None:
    """Load a checkpoint's weights into ``model``.

    Accepts our / torchvision references' format (a dict with the state_dict under
    ``"model"``) and a bare state_dict. Raises :class:`ModelError` for a missing or
    unreadable file and for keys or shapes that do not match (naming a class-count mismatch).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model.weights: checkpoint {path} does not exist (use \"none\", \"default\" or a checkpoint file)")
    try:
        blob = _read_checkpoint(path)
    except Exception as exc:
        raise ModelError(f"model.weights: cannot read checkpoint {path}: {exc}") from exc

    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelError(
            f"model.weights: {path} holds no model weights (expected a dict with a \"model\" "
            "state_dict, or a bare state_dict)"
        )
    # A DistributedDataParallel model saves every key under "module.".
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}

    own = model.state_dict()
    cls_key = "roi_heads.box_predictor.cls_score.weight"
    if cls_key in state and cls_key in own and state[cls_key].shape[0] != own[cls_key].shape[0]:
        raise ModelError(
            f"model.weights: {path} was trained for {state[cls_key].shape[0]} classes "
            f"(background included) but this config has {own[cls_key].shape[0]} "
            f"(data.classes has {own[cls_key].shape[0] - 1}); match data.classes to the checkpoint"
        )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if mismatched:
            shapes = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched[:3])
            parts.append(f"{len(mismatched)} with other shapes ({shapes})")
        raise ModelError(
            f"model.weights: {path} does not fit model.arch; its weights have "
            + "; ".join(parts)
            + ". Was it saved from a different arch?"
        )
    model.load_state_dict(state)


# --------------------------------------------------------------------------- description


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe_model(model: nn.Module, arch: str | None = None) -> dict:
    """A JSON-able summary for the run's environment record."""
    transform = getattr(model, "transform", None)
    min_size = getattr(transform, "min_size", None)
    if isinstance(min_size, (tuple, list)):
        min_size = list(min_size) if len(min_size) > 1 else min_size[0]
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    cls_score = getattr(predictor, "cls_score", None)
    batch = getattr(model, "cockpit_arch_batch", {})
    return {
        **batch,
        "arch": arch or getattr(model, "cockpit_arch", type(model).__name__),
        "params": count_parameters(model),
        "trainable_params": count_parameters(model, trainable_only=True),
        "num_classes": getattr(cls_score, "out_features", None),
        "min_size": min_size,
        "max_size": getattr(transform, "max_size", None),
    }
