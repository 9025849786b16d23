"""The preview pane: a val image with GT boxes (green) and predictions (red), in half blocks.

``a`` cycles the label-assignment overlay (an ``AssignmentOverlay`` the engine computes
from the model as it is now): GT only -> the anchors matched positive (GT boxes that no
anchor reaches at the RPN threshold in yellow) -> the box head's sampled foreground /
background proposals -> back to the normal view.

The engine writes the (eval-transformed) image as a PNG and sends a ``PreviewReady``;
here PIL scales it to the pane, draws the boxes, and rich-pixels turns it into half-block
cells (two pixels per cell, any terminal, tmux included). The PIL work runs in a thread
worker so a big image never stalls the UI; class names and scores go in the caption,
where they are readable.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from cockpit.engine.events import AssignmentOverlay, PreviewReady
from cockpit.ui.static_text import show_text

GT_RGB = (0, 200, 0)
PRED_RGB = (230, 20, 20)
MODES = ("both", "gt", "pred")
OVERLAYS = ("off", "gt", "anchors", "proposals")
"""``a`` cycles these: the normal view, GT only, positive anchors, sampled proposals."""
UNMATCHED_RGB = (255, 230, 0)
ANCHOR_RGB = (0, 220, 230)
FG_RGB = (255, 140, 0)
BG_RGB = (90, 120, 255)


def overlay_for(preview: PreviewReady | None, overlay: AssignmentOverlay | None) -> AssignmentOverlay | None:
    """``overlay`` when it belongs to the image ``preview`` shows, else None."""
    if preview is None or overlay is None:
        return None
    if overlay.index != preview.index or overlay.split != preview_split(preview):
        return None
    return overlay


def overlay_layers(overlay: AssignmentOverlay | None, mode: str) -> list[tuple[list, tuple[int, int, int], int]]:
    """(boxes, colour, line width) to draw, bottom to top, for an overlay ``mode``."""
    if overlay is None or mode == "off":
        return []
    unmatched = set(overlay.gt_unmatched)
    matched = [box for i, box in enumerate(overlay.gt_boxes) if i not in unmatched]
    missing = [box for i, box in enumerate(overlay.gt_boxes) if i in unmatched]
    if mode == "anchors":
        return [(overlay.positive_anchors, ANCHOR_RGB, 1), (matched, GT_RGB, 1), (missing, UNMATCHED_RGB, 2)]
    if mode == "proposals":
        return [(overlay.bg_proposals, BG_RGB, 1), (overlay.fg_proposals, FG_RGB, 1), (overlay.gt_boxes, GT_RGB, 1)]
    return [(overlay.gt_boxes, GT_RGB, 1)]


def render_image(
    preview: PreviewReady, columns: int, rows: int, mode: str = "both",
    layers: list[tuple[list, tuple[int, int, int], int]] | None = None,
):  # -> rich_pixels.Pixels | None
    """Scale the PNG into ``columns`` x ``2*rows`` pixels, draw boxes, return Pixels."""
    from PIL import Image, ImageDraw
    from rich_pixels import Pixels

    if not preview.image_path or columns < 4 or rows < 2:
        return None
    with Image.open(preview.image_path) as source:
        image = source.convert("RGB")
    width, height = image.size
    scale = min(columns / width, (2 * rows) / height)
    size = (max(1, int(width * scale)), max(2, int(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    if layers is None:
        layers = []
        if mode in ("both", "gt"):
            layers.append((preview.gt_boxes, GT_RGB, 1))
        if mode in ("both", "pred"):
            layers.append((preview.boxes, PRED_RGB, 1))
    for boxes, colour, line in layers:
        for x1, y1, x2, y2 in boxes:
            box = [x1 * scale, y1 * scale, max(x1 * scale, x2 * scale - 1), max(y1 * scale, y2 * scale - 1)]
            draw.rectangle(box, outline=colour, width=line)
    return Pixels.from_image(image)


def preview_split(preview: PreviewReady) -> str:
    """``val`` or ``train`` (the engine names its PNGs ``<split>-<index>.png``)."""
    split = getattr(preview, "split", None)
    if split:
        return str(split)
    name = Path(preview.image_path).name if preview.image_path else ""
    return "train" if name.startswith("train-") else "val"


def overlay_caption(overlay: AssignmentOverlay | None, mode: str) -> Content:
    """The overlay's legend line (what each colour is, with counts)."""
    if overlay is None:
        return Content.styled(f"[a] overlay {mode}: computing for this image… (the engine sends it)", "$text-muted")
    if mode == "anchors":
        missing = len(overlay.gt_unmatched)
        return Content.assemble(
            ("[a] ", "$text-muted"),
            (f"■ {len(overlay.positive_anchors)} positive anchors", "ansi_cyan"),
            f" (IoU ≥ {overlay.rpn_fg_iou_thresh:g}, or best)  ",
            (f"■ {missing}/{len(overlay.gt_boxes)} GT without one", "ansi_yellow"),
        )
    if mode == "proposals":
        return Content.assemble(
            ("[a] ", "$text-muted"),
            (f"■ {len(overlay.fg_proposals)} fg", "#ff8c00"),
            " : ",
            (f"■ {len(overlay.bg_proposals)} bg", "ansi_blue"),
            f" sampled RoIs (fg IoU ≥ {overlay.roi_fg_iou_thresh:g}; ≤ 40 each drawn)",
        )
    return Content.assemble(("[a] ", "$text-muted"), ("■ GT only", "ansi_green"), ("  a: positive anchors next", "$text-muted"))


def caption(preview: PreviewReady | None, class_name, mode: str) -> Content:
    if preview is None:
        return Content.styled("No preview yet: the engine sends the GT of a val image when the run starts.", "$text-muted")
    shown = {"both": "GT + predictions", "gt": "GT only", "pred": "predictions only"}[mode]
    head = Content.assemble(
        (f"{preview_split(preview)} #{preview.index}", "bold"),
        f"  it {preview.iter}  ",
        (f"■ GT {len(preview.gt_boxes)}", "ansi_green"),
        "  ",
        (f"■ pred {len(preview.boxes)}", "ansi_red"),
        ("  [d] " + shown + "  [n]/[b] next/prev", "$text-muted"),
    )
    lines = [head]
    if preview.gt_labels:
        names = ", ".join(class_name(label) for label in preview.gt_labels[:8])
        more = f" +{len(preview.gt_labels) - 8}" if len(preview.gt_labels) > 8 else ""
        lines.append(Content.assemble(("GT   ", "ansi_green"), names + more))
    if preview.boxes:
        ranked = sorted(zip(preview.scores, preview.labels), reverse=True)
        names = ", ".join(f"{class_name(label)} {score:.2f}" for score, label in ranked[:6])
        more = f" +{len(ranked) - 6}" if len(ranked) > 6 else ""
        lines.append(Content.assemble(("pred ", "ansi_red"), names + more))
    elif preview.iter == 0:
        lines.append(Content.styled("pred none yet (after the first eval, or press e)", "$text-muted"))
    else:
        lines.append(Content.styled("pred no detection above the score threshold", "$text-muted"))
    if not preview.gt_boxes:
        lines.append(Content.styled("this image has no GT objects (n: next image)", "$text-muted"))
    return Content("\n").join(lines)


class PreviewPanel(Vertical, can_focus=True):
    """Draws the latest ``PreviewReady``; ``d`` cycles GT+pred / GT / pred."""

    ALLOW_MAXIMIZE = True
    BINDINGS = [
        Binding("d", "cycle_mode", "GT/pred", tooltip="Show GT + predictions, GT only, or predictions only"),
        Binding("a", "cycle_overlay", "Assign", tooltip="Overlay: GT only / positive anchors / sampled proposals / off"),
    ]

    class OverlayChanged(Message):
        """The user picked another assignment overlay (the app asks the engine for a fresh one)."""

        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    DEFAULT_CSS = """
    PreviewPanel > .image { height: 1fr; content-align: center middle; }
    PreviewPanel > .caption { height: auto; }
    """

    mode: reactive[str] = reactive("both")
    overlay_mode: reactive[str] = reactive("off")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.preview: PreviewReady | None = None
        self.overlay: AssignmentOverlay | None = None
        self._class_name = lambda label: f"class {label}"

    def compose(self) -> ComposeResult:
        yield Static(classes="image")
        yield Static(classes="caption")

    def on_mount(self) -> None:
        self.border_title = "4 Preview"
        self._update_caption()

    def show(self, preview: PreviewReady | None, class_name=None, overlay: AssignmentOverlay | None = None) -> None:
        self.preview = preview
        self.overlay = overlay
        if class_name is not None:
            self._class_name = class_name
        self._update_caption()
        self.redraw()

    def action_cycle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def action_cycle_overlay(self) -> None:
        self.overlay_mode = OVERLAYS[(OVERLAYS.index(self.overlay_mode) + 1) % len(OVERLAYS)]
        if self.overlay_mode == "anchors":
            self.post_message(self.OverlayChanged(self.overlay_mode))

    def watch_overlay_mode(self) -> None:
        self._update_caption()
        self.redraw()

    def watch_mode(self) -> None:
        self._update_caption()
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def _update_caption(self) -> None:
        if self.is_mounted:
            text = caption(self.preview, self._class_name, self.mode)
            if self.overlay_mode != "off" and self.preview is not None:
                text = Content("\n").join([text, overlay_caption(overlay_for(self.preview, self.overlay), self.overlay_mode)])
            show_text(self.query_one(".caption", Static), text)

    def redraw(self) -> None:
        if not self.is_mounted or self.preview is None:
            return
        image = self.query_one(".image", Static)
        # Size the image to the space left once the caption has its lines.
        rows = max(2, self.content_region.height - (5 if self.overlay_mode != "off" else 4))
        layers = None
        if self.overlay_mode != "off":
            overlay = overlay_for(self.preview, self.overlay)
            # Until the overlay for this image arrives, GT alone (never stale boxes of another image).
            layers = overlay_layers(overlay, self.overlay_mode) if overlay else [(self.preview.gt_boxes, GT_RGB, 1)]
        self._draw_image(self.preview, image.content_region.width or self.content_region.width, rows, self.mode, layers)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _draw_image(self, preview: PreviewReady, columns: int, rows: int, mode: str, layers=None) -> None:
        try:
            pixels = render_image(preview, columns, rows, mode, layers)
            message: object = pixels if pixels is not None else Content.styled("(no image)", "$text-muted")
        except Exception as error:  # noqa: BLE001 - a missing/corrupt PNG is shown, not raised
            message = Content.styled(f"cannot draw {preview.image_path}: {error}", "$text-error")
        try:
            self.app.call_from_thread(self._set_image, message)
        except RuntimeError:  # the app closed while we drew
            pass

    def _set_image(self, renderable) -> None:
        if self.is_mounted:
            # The image's box is 1fr high and as wide as the pane, whatever it holds: a
            # repaint, not a layout of the whole screen (~30 ms at 160 x 48).
            self.query_one(".image", Static).update(renderable, layout=False)
