"""Report plots and previews tell the truth and stay readable (#17 items 5, 16)."""

from __future__ import annotations

import itertools


def test_lr_change_labels_never_overlap():
    from cockpit.report import plots

    figure, axes = plots._new_figure(11, 3.4)
    ax = axes[0][0]
    xs = list(range(0, 1000, 10))
    ax.step(xs, [0.02 if x < 450 else 0.01 for x in xs], where="post")
    # Six changes within a few iterations of each other, the same LR twice: the old code
    # drew every label at the same offset, on top of one another.
    marks = [(400 + i, 0.02 / (1 + i % 2), "#e67e22") for i in range(6)] + [(900, 0.01, "#c0392b")]
    for it, _, colour in marks:
        ax.axvline(it, color=colour)
    placed = plots.label_lr_changes(ax, marks)
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in placed]
    assert len(placed) >= 2 and any(t.get_text() == "0.01" and t.xy[0] == 900 for t in placed)
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    assert plots.to_png(figure).startswith(b"\x89PNG")
