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


def test_saved_previews_say_when_they_were_predicted_when_no_checkpoint_can_predict(tmp_path):
    from report_fixtures import make_finished_run

    from cockpit.report.previews import preview_images
    from cockpit.report.rundir import read_run_dir

    import json

    run_dir = make_finished_run(tmp_path)  # its checkpoints are not torch files
    sidecar = run_dir / "previews" / "val-0.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "iter": 111}))
    images, note = preview_images(read_run_dir(run_dir))
    assert images and "could not predict" in note and "\n" not in note
    (image,) = images
    assert "predicted at iteration 111" in image.caption
