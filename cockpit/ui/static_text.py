"""New text for a ``Static`` without laying the whole screen out again.

``Static.update()`` and the ``Static.content`` setter ask Textual for a layout, and a
layout repaints every widget on the screen (the footer, the config editor, the scroll
bars...). At 160 x 48 that made each routine redraw -- a new status line, new numbers in
the legend, the checklist's "still OK at it N" -- cost ~40 ms of the UI thread, GIL time
taken from the training step. Text that changes but keeps its height only needs its own
widget repainted; a layout is asked for only when the height changes (another line count,
or another number of wrapped lines).
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import Static


def show_text(static: Static, content: Content) -> None:
    """Put ``content`` in ``static``: nothing when it is unchanged (text and styles), a
    repaint when its height stays, a layout otherwise."""
    old = static.content
    if isinstance(old, Content) and old.plain == content.plain and old.spans == content.spans:
        return
    static.update(content, layout=not _same_height(static, old, content))


def _same_height(static: Static, old: object, new: Content) -> bool:
    if not isinstance(old, Content) or not static.is_mounted:
        return False
    width = static.content_region.width
    if width <= 0:
        return False
    old_lines, new_lines = old.plain.split("\n"), new.plain.split("\n")
    if len(old_lines) == len(new_lines) and all(cell_len(line) <= width for line in (*old_lines, *new_lines)):
        height = len(new_lines)
    else:
        # A line wraps (the loss legend does on a narrow pane, every frame): count the
        # lines as Textual will wrap them, a fraction of a millisecond against a layout's tens.
        height = new.get_height(static.styles, width)
        if old.get_height(static.styles, width) != height:
            return False
    # The box must hold that height as laid out now. Textual caches an arrangement by its
    # size, so a pane maximized and restored gets back the layout made for older text.
    return static.content_region.height == height
