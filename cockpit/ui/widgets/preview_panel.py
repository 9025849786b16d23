"""The preview pane: a val image with GT boxes (green) and predictions (red), in half blocks.

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
from textual.reactive import reactive
from textual.widgets import Static

from cockpit.engine.events import PreviewReady

GT_RGB = (0, 200, 0)
PRED_RGB = (230, 20, 20)
MODES = ("both", "gt", "pred")


def render_image(
    preview: PreviewReady, columns: int, rows: int, mode: str = "both"
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
    layers = []
    if mode in ("both", "gt"):
        layers.append((preview.gt_boxes, GT_RGB))
    if mode in ("both", "pred"):
        layers.append((preview.boxes, PRED_RGB))
    for boxes, colour in layers:
        for x1, y1, x2, y2 in boxes:
            box = [x1 * scale, y1 * scale, max(x1 * scale, x2 * scale - 1), max(y1 * scale, y2 * scale - 1)]
            draw.rectangle(box, outline=colour, width=1)
    return Pixels.from_image(image)


def preview_split(preview: PreviewReady) -> str:
    """``val`` or ``train`` (the engine names its PNGs ``<split>-<index>.png``)."""
    split = getattr(preview, "split", None)
    if split:
        return str(split)
    name = Path(preview.image_path).name if preview.image_path else ""
    return "train" if name.startswith("train-") else "val"


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
    BINDINGS = [Binding("d", "cycle_mode", "GT/pred", tooltip="Show GT + predictions, GT only, or predictions only")]
    DEFAULT_CSS = """
    PreviewPanel > .image { height: 1fr; content-align: center middle; }
    PreviewPanel > .caption { height: auto; }
    """

    mode: reactive[str] = reactive("both")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.preview: PreviewReady | None = None
        self._class_name = lambda label: f"class {label}"

    def compose(self) -> ComposeResult:
        yield Static(classes="image")
        yield Static(classes="caption")

    def on_mount(self) -> None:
        self.border_title = "4 Preview"
        self._update_caption()

    def show(self, preview: PreviewReady | None, class_name=None) -> None:
        self.preview = preview
        if class_name is not None:
            self._class_name = class_name
        self._update_caption()
        self.redraw()

    def action_cycle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def watch_mode(self) -> None:
        self._update_caption()
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def _update_caption(self) -> None:
        if self.is_mounted:
            self.query_one(".caption", Static).content = caption(self.preview, self._class_name, self.mode)

    def redraw(self) -> None:
        if not self.is_mounted or self.preview is None:
            return
        image = self.query_one(".image", Static)
        # Size the image to the space left once the caption has its lines.
        rows = max(2, self.content_region.height - 4)
        self._draw_image(self.preview, image.content_region.width or self.content_region.width, rows, self.mode)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _draw_image(self, preview: PreviewReady, columns: int, rows: int, mode: str) -> None:
        try:
            pixels = render_image(preview, columns, rows, mode)
            message: object = pixels if pixels is not None else Content.styled("(no image)", "$text-muted")
        except Exception as error:  # noqa: BLE001 - a missing/corrupt PNG is shown, not raised
            message = Content.styled(f"cannot draw {preview.image_path}: {error}", "$text-error")
        try:
            self.app.call_from_thread(self._set_image, message)
        except RuntimeError:  # the app closed while we drew
            pass

    def _set_image(self, renderable) -> None:
        if self.is_mounted:
            self.query_one(".image", Static).content = renderable
