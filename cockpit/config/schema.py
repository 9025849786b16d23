"""The run configuration: one typed schema, one docstring per field.

The field names are a user-facing contract (they appear in every config file and in
``--set section.key=value``); rename nothing without a migration. Defaults follow the
torchvision Faster R-CNN fine-tuning recipe (SGD 0.005 / 0.9 / 5e-4, StepLR 3 x 0.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

from cockpit.config.choices import BOX_LOSSES, CLASSIFIER_LOSSES, check_choice

ARCHITECTURES = (
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "tiny",
)

# Fields the engine may change between two iterations without rebuilding anything.
LIVE_FIELDS = frozenset(
    {
        "optim.lr",
        "optim.momentum",
        "optim.weight_decay",
        "optim.grad_clip",
        "eval.every_epochs",
        "eval.score_thresh",
        "augment.hflip",
        "augment.photometric",
        "run.log_every",
        "loss.box",
        "loss.box_beta",
        "loss.classifier",
        "loss.focal_gamma",
        "loss.hard_negatives",
        "sampler.rpn_batch_size_per_image",
        "sampler.rpn_positive_fraction",
        "sampler.rpn_fg_iou_thresh",
        "sampler.rpn_bg_iou_thresh",
        "sampler.roi_batch_size_per_image",
        "sampler.roi_positive_fraction",
        "sampler.roi_fg_iou_thresh",
        "sampler.roi_bg_iou_thresh",
    }
)


MAX_LR = 10.0
"""The largest learning rate cockpit accepts anywhere (config, ``--set``, keys, socket, patches).

Detection fine-tuning uses ~0.001-0.05; 10 is already far past divergence, and a bound well
inside float32 keeps SGD from overflowing ("value cannot be converted to type float")."""


def lr_problem(lr: object) -> str | None:
    """Why ``lr`` is not a usable learning rate (one line), or None when it is: 0 < lr <= MAX_LR, finite."""
    try:
        value = float(lr)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"LR must be a number (got {lr!r})"
    if value != value or value in (float("inf"), float("-inf")):
        return f"LR must be finite (got {value})"
    if not value > 0:
        return f"LR must be > 0 (got {value:g})"
    if value > MAX_LR:
        return f"LR must be <= {MAX_LR:g} (got {value:g})"
    return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class RunSection(_Section):
    """Where the run is written and how long it lasts."""

    name: str = "run"
    """Prefix of the run folder: ``<output_dir>/<name>-<timestamp>/``."""
    output_dir: str = "runs"
    """Folder that holds run folders, relative to the config file."""
    seed: int = 0
    """Seed for Python, torch and the data order; the same seed gives the same losses on CPU."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    epochs: int = Field(10, ge=1)
    """Number of passes over the training split."""
    max_iters: int = Field(0, ge=0)
    """When > 0, stop after this many iterations in total (across resumes)."""
    log_every: int = Field(10, ge=1)
    """Iterations between two metric records (and headless lines)."""
    tensorboard: bool = False
    """Also write TensorBoard event files into the run folder, beside metrics.jsonl (needs the
    optional extra: ``pip install '.[tensorboard]'``); ``tensorboard --logdir`` on the
    output folder then shows every run."""

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError("must be auto, cpu, cuda or cuda:N")


class DataSection(_Section):
    """Which dataset to read and how to batch it."""

    format: Literal["coco", "masks", "module"] = "coco"
    """``coco`` (COCO JSON), ``masks`` (Penn-Fudan layout) or ``module`` (your own Dataset class)."""
    classes: list[str] = Field(default_factory=lambda: ["object"])
    """Foreground class names, in label order 1..K; num_classes = len(classes) + 1 (background is 0)."""
    train: str = ""
    """coco: annotation JSON; masks: dataset root; module: ``module_name:ClassName``."""
    val: str = ""
    """Same as ``train``, for the validation split (evaluation and previews)."""
    train_images: Optional[str] = None
    """coco only: folder of the training images (default: the JSON's folder)."""
    val_images: Optional[str] = None
    """coco only: folder of the validation images (default: the JSON's folder)."""
    batch_size: int = Field(2, ge=1)
    """Images per iteration on each process (the global batch is this x the number of processes)."""
    num_workers: int = Field(2, ge=0)
    """DataLoader worker processes; 0 loads in the training thread."""
    train_args: dict = Field(default_factory=dict)
    """module only: keyword arguments for the training Dataset."""
    val_args: dict = Field(default_factory=dict)
    """module only: keyword arguments for the validation Dataset."""

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one foreground class (background is implicit)")
        if len(set(value)) != len(value):
            raise ValueError("class names must be unique")
        if any(name.strip() == "" for name in value):
            raise ValueError("class names must not be empty")
        return value

    @property
    def num_classes(self) -> int:
        """Classes the model predicts, background included."""
        return len(self.classes) + 1


class ModelSection(_Section):
    """Which detector to build."""

    arch: str = "fasterrcnn_resnet50_fpn"
    """One of fasterrcnn_resnet50_fpn, fasterrcnn_resnet50_fpn_v2, fasterrcnn_mobilenet_v3_large_fpn,
    fasterrcnn_mobilenet_v3_large_320_fpn or tiny (a small CPU-friendly model)."""
    weights: str = "none"
    """``none`` (random init, offline), ``default`` (torchvision's COCO weights) or a checkpoint path."""
    trainable_backbone_layers: int = Field(3, ge=0, le=5)
    """Backbone stages left trainable when starting from pretrained weights."""
    min_size: Optional[int] = Field(None, ge=32)
    """Shorter image side after resizing; unset = the architecture's own default."""
    max_size: Optional[int] = Field(None, ge=32)
    """Longer image side cap after resizing; unset = the architecture's own default."""
    box_score_thresh: float = Field(0.05, ge=0.0, le=1.0)
    """Detections below this score are dropped by the model at inference."""

    @field_validator("arch")
    @classmethod
    def _arch(cls, value: str) -> str:
        if value not in ARCHITECTURES:
            raise ValueError(f"unknown arch {value!r}; choose one of: {', '.join(ARCHITECTURES)}")
        return value


class OptimSection(_Section):
    """SGD with linear warm-up and StepLR, as in torchvision's references."""

    lr: float = Field(0.005, gt=0.0, le=MAX_LR, allow_inf_nan=False)
    """Learning rate, finite and in (0, 10] for the global batch: data.batch_size x processes (torchrun / --nproc); the
    OOM fallback's gradient accumulation keeps that batch, so it changes nothing here. torchvision's
    recipe is 0.02 for 16 images (2 per GPU x 8 GPUs), 0.005 for 4: scale it linearly with the
    global batch yourself -- cockpit uses the value as given."""
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    """SGD momentum."""
    weight_decay: float = Field(0.0005, ge=0.0)
    """L2 weight decay."""
    step_size: int = Field(3, ge=1)
    """StepLR period, in epochs."""
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    """StepLR factor applied every ``step_size`` epochs."""
    warmup_iters: int = Field(100, ge=0)
    """Linear warm-up as torch's ``LinearLR(start_factor=1e-3, total_iters=warmup_iters)`` in
    torchvision's references: the first step uses lr/1000, the LR reaches lr at step
    warmup_iters + 1; 0 = none."""
    grad_clip: float = Field(0.0, ge=0.0)
    """Maximum gradient norm; 0 = no clipping."""
    amp: bool = False
    """Mixed precision with a GradScaler (CUDA only; ignored on CPU)."""


class EvalSection(_Section):
    """COCO evaluation on the validation split."""

    every_epochs: int = Field(1, ge=0)
    """Evaluate every N epochs (and at the end); 0 = only at the end and on demand."""
    score_thresh: float = Field(0.5, ge=0.0, le=1.0)
    """Score above which a detection counts (previews, detection counts, diagnostics)."""
    batch_size: int = Field(1, ge=1)
    """Val images per forward pass. 1 (torchvision references' setting) gives AP independent of
    batching; larger is faster but torchvision pads a batch to one canvas, which moves AP a little."""


class AugmentSection(_Section):
    """Training-time augmentation probabilities (torchvision.transforms.v2)."""

    hflip: float = Field(0.5, ge=0.0, le=1.0)
    """Probability of a horizontal flip (boxes move with the image)."""
    photometric: float = Field(0.5, ge=0.0, le=1.0)
    """Probability of RandomPhotometricDistort."""


class LossSection(_Section):
    """The box head's losses (the RPN keeps torchvision's). Loss keys stay torchvision's names."""

    box: str = "smooth_l1"
    """Box head regression loss: smooth_l1 (torchvision's), l1, or giou / diou / ciou
    (torchvision.ops IoU losses on the decoded boxes, normalised like detectron2's)."""
    box_beta: float = Field(1.0 / 9.0, gt=0.0)
    """smooth_l1 only: where the loss turns from quadratic to linear (torchvision uses 1/9)."""
    classifier: str = "ce"
    """Box head classification loss: ce (torchvision's cross-entropy) or focal (softmax focal
    loss over the background + foreground classes, mean over the sampled RoIs)."""
    focal_gamma: float = Field(2.0, ge=0.0)
    """focal only: the focusing exponent; 0 is plain cross-entropy."""
    hard_negatives: bool = False
    """OHEM: pick the box head's background RoIs by their classification loss (highest first)
    instead of at random; costs one extra no-grad pass of the box head over every proposal."""

    @field_validator("box")
    @classmethod
    def _box(cls, value: str) -> str:
        return check_choice(value, BOX_LOSSES, "box loss")

    @field_validator("classifier")
    @classmethod
    def _classifier(cls, value: str) -> str:
        return check_choice(value, CLASSIFIER_LOSSES, "classifier loss")


class SamplerSection(_Section):
    """How anchors (RPN) and proposals (box head) become positive / negative, and how many are sampled.

    The defaults are torchvision's. The two batch sizes default to the architecture's own
    value: torchvision's 256 / 512, or 128 / 64 for the ``tiny`` preset (kept small for CPUs).
    """

    rpn_batch_size_per_image: Optional[int] = Field(None, ge=1)
    """Anchors sampled per image for the RPN losses (torchvision: 256); unset = the architecture's own."""
    rpn_positive_fraction: float = Field(0.5, ge=0.0, le=1.0)
    """Largest share of positive anchors in that sample (the rest are negatives)."""
    rpn_fg_iou_thresh: float = Field(0.7, ge=0.0, le=1.0)
    """An anchor with IoU >= this with a GT box is positive (each GT also keeps its best anchor)."""
    rpn_bg_iou_thresh: float = Field(0.3, ge=0.0, le=1.0)
    """An anchor with IoU < this with every GT box is negative; in between it is ignored."""
    roi_batch_size_per_image: Optional[int] = Field(None, ge=1)
    """Proposals (RoIs) sampled per image for the box head (torchvision: 512); unset = the architecture's own."""
    roi_positive_fraction: float = Field(0.25, ge=0.0, le=1.0)
    """Largest share of foreground RoIs in that sample."""
    roi_fg_iou_thresh: float = Field(0.5, ge=0.0, le=1.0)
    """A proposal with IoU >= this with a GT box is foreground (labelled with that box's class)."""
    roi_bg_iou_thresh: float = Field(0.5, ge=0.0, le=1.0)
    """A proposal with IoU < this with every GT box is background; in between it is ignored."""

    @field_validator("rpn_bg_iou_thresh", "roi_bg_iou_thresh")
    @classmethod
    def _bg_not_above_fg(cls, value: float, info: ValidationInfo) -> float:
        # Declared after its fg field, so that one is already in info.data when valid.
        stage = info.field_name.split("_", 1)[0]
        fg = info.data.get(f"{stage}_fg_iou_thresh")
        if fg is not None and value > fg:
            raise ValueError(f"must not be above {stage}_fg_iou_thresh ({fg:g})")
        return value


class Config(_Section):
    """A whole run: the parsed TOML file."""

    run: RunSection = Field(default_factory=RunSection)
    """Run naming, length and device."""
    data: DataSection = Field(default_factory=DataSection)
    """Dataset format, paths and batching."""
    model: ModelSection = Field(default_factory=ModelSection)
    """Detector architecture and weights."""
    optim: OptimSection = Field(default_factory=OptimSection)
    """Optimizer and LR schedule."""
    eval: EvalSection = Field(default_factory=EvalSection)
    """Evaluation cadence and thresholds."""
    augment: AugmentSection = Field(default_factory=AugmentSection)
    """Augmentation probabilities."""
    loss: LossSection = Field(default_factory=LossSection)
    """The box head's loss choices."""
    sampler: SamplerSection = Field(default_factory=SamplerSection)
    """Anchor / proposal matching thresholds and sampling."""

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in this config are resolved against (the file's folder)."""
        return self._base_dir

    def with_base_dir(self, base_dir: Path) -> "Config":
        self._base_dir = Path(base_dir).resolve()
        return self

    def resolve_path(self, value: str | None) -> Path | None:
        """Turn a path from the config into an absolute path (relative to the config file)."""
        if value is None or value == "":
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self._base_dir / path)

    def copy_with(self, patch: dict[str, object]) -> "Config":
        """A validated copy with dotted-key changes applied (``{"optim.lr": 0.01}``)."""
        data = self.model_dump()
        for dotted, value in patch.items():
            section, _, key = dotted.partition(".")
            data[section][key] = value
        return Config.model_validate(data).with_base_dir(self._base_dir)
