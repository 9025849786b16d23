"""Assemble the report's sections from a run directory (issue 6's contents, in order).

Each ``_section`` function owns one section and says, inside it, what is missing when
the run directory lacks the data -- the report never fails on a damaged run.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Callable

from cockpit.report import analysis as an
from cockpit.report import labels_plots, plots
from cockpit.report.document import Code, Document, Figure, KeyValues, Section, Subheading, Table, Text
from cockpit.report.previews import preview_images
from cockpit.report.rundir import COCO_KEYS, RunDir, finite
from cockpit.runfiles import layout

FLAG_LIMIT = 100
"""Flags listed one by one at most (a rule that flaps is summarised by the rest)."""


def _summary(run: RunDir) -> Section:
    section = Section("summary", "Summary")
    status = an.run_status(run)
    iteration, epoch = an.last_iteration(run)
    started = run.events_of("run_started")
    total = finite(started[-1].get("total_iters")) if started else None
    config = run.config
    env = an.environment(run)
    device = str(env.get("device") or (config.run.device if config is not None else "unknown"))
    gpu = env.get("gpu_name")
    best = an.best_eval(run)
    final = run.evals[-1] if run.evals else None

    iters_text = "none recorded" if iteration is None else str(iteration)
    if iteration is not None and total:
        iters_text += f" of {int(total)} planned"
    epochs_text = "unknown" if epoch is None else f"last recorded epoch {epoch}"
    if config is not None:
        epochs_text += f" (config: {config.run.epochs} epochs)"

    def ap_text(record: dict[str, Any] | None) -> str:
        if record is None:
            return "no evaluation yet"
        metrics = record["eval"]
        return f"AP {an.fmt_num(metrics.get('AP'))} / AP50 {an.fmt_num(metrics.get('AP50'))} (iteration {record.get('iter')})"

    items = [
        ("Run", run.name + (f" (run.name = {config.run.name})" if config is not None else "")),
        ("Folder", str(run.path)),
        ("Status", status.value + (f" -- {status.reason}" if status.reason else "")),
        ("Started", an.fmt_time(an.start_time(run))),
        ("Duration", an.fmt_duration(an.active_duration(run))),
        ("Iterations", iters_text),
        ("Epochs", epochs_text),
        ("Sessions", str(len(started)) + (" (resumed)" if len(started) > 1 else "") if started else "unknown"),
        ("Device", device + (f" ({gpu})" if gpu else "")),
        ("Best", ap_text(best)),
        ("Final", ap_text(final)),
    ]
    if config is not None:
        items.insert(7, ("Model", f"{config.model.arch}, weights {config.model.weights}, classes: {', '.join(config.data.classes)}"))
    if run.checkpoints:
        items.append(("Checkpoints", ", ".join(f"checkpoints/{c.name}.pt ({_size(c.size_bytes)}, saved {an.fmt_time(c.mtime)})" for c in run.checkpoints.values())))
    section.add(KeyValues(items))
    if run.missing or run.problems:
        section.add(Subheading("Missing or damaged"))
        section.add(*(Text(line, "missing") for line in run.missing))
        section.add(*(Text(line, "problem") for line in run.problems))
    return section


def _config(run: RunDir) -> Section:
    section = Section("config", "Configuration")
    if run.config is None and run.config_text is None:
        return section.add(Text("No config: config.toml is missing and no run_started event holds one.", "missing"))
    if run.config is not None:
        from cockpit.config.loader import diff_from_defaults

        changes = diff_from_defaults(run.config)
        section.add(Subheading("Differences from the defaults"))
        if changes:
            rows = [[key, _short(default), _short(value)] for key, (default, value) in sorted(changes.items())]
            section.add(Table(["setting", "default", "this run"], rows))
        else:
            section.add(Text("None: every setting is the default."))
    elif run.config_error:
        section.add(Text(f"config.toml does not validate, so no differences are shown: {run.config_error}", "problem"))
    if run.config_text:
        section.add(Subheading("Resolved config.toml"), Code(run.config_text.rstrip("\n")))
    return section


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _plots(run: RunDir) -> Section:
    section = Section("plots", "Training curves")
    n = len(run.train)
    makers: list[tuple[str, Callable[[RunDir], bytes | None], str, str]] = [
        ("losses", plots.loss_plot,
         f"Each loss term and the total over iterations: raw (light, with the min/max of each bucket shaded) "
         f"and EMA-smoothed (dark); dashed squares are the validation loss at each evaluation. {n} training records"
         + (f", drawn as at most {plots.MAX_POINTS} points per series." if n > plots.MAX_POINTS else ".")
         + " " + labels_plots.loss_names(run),
         "No training records: no loss plot."),
        ("labels", labels_plots.labels_plot,
         "Label assignment per logged step: foreground / background RoIs and positive anchors sampled per image "
         "(left), the foreground share against sampler.roi_positive_fraction and the box head's accuracies "
         "(detectron2's definitions) (right).",
         "No label-assignment telemetry in the training records: no label plot."),
        ("lr", plots.lr_plot,
         "Learning rate over iterations; dashed lines mark changes made by the user (orange) or by NaN recovery (red).",
         "No LR records: no LR plot."),
        ("memory", plots.memory_plot,
         "Memory over iterations (MB): CUDA allocated / reserved / peak when on a GPU, process RSS otherwise.",
         "No memory figures in the training records: no memory plot."),
        ("ap", plots.ap_plot, "AP, AP50 and AP75 at each evaluation; the star marks the best AP.",
         "No evaluation yet: no AP plot."),
    ]
    for name, make, caption, missing in makers:
        try:
            png = make(run)
        except Exception as error:  # a plot must not take the whole report down
            section.add(Text(f"The {name} plot could not be drawn: {error.__class__.__name__}: {error}", "problem"))
            continue
        section.add(Figure(name, png, caption) if png else Text(missing, "missing"))
    return section


def _evaluation(run: RunDir) -> Section:
    section = Section("evaluation", "Evaluation")
    if not run.evals:
        return section.add(Text("No evaluation yet: metrics.jsonl holds no eval record.", "missing"))
    best = an.best_eval(run)
    rows, styles = [], []
    for record in run.evals:
        metrics = record["eval"]
        rows.append([str(record.get("iter", "")), str(record.get("epoch", ""))] + [an.fmt_num(metrics.get(k)) for k in COCO_KEYS])
        styles.append("best" if record is best else "")
    section.add(
        Table(["iter", "epoch", *COCO_KEYS], rows, "The 12 COCO bbox numbers at each evaluation (n/a: undefined, e.g. no small objects).", styles)
    )
    section.add(Text(_eval_batch_note(run)))
    val_rows = labels_plots.val_loss_rows(run)
    if val_rows:
        section.add(Table(["iter", *labels_plots.VAL_LOSS_KEYS], val_rows,
                          "Validation loss at each evaluation: the four terms and their total on the val split "
                          "(train mode, BatchNorm frozen, fixed sampler seed; no gradient)."))
    if best is None:
        return section.add(Text("No evaluation produced a valid AP, so there is no best one.", "missing"))
    per_class_best = best["eval"].get("per_class") or {}
    final = run.evals[-1]
    per_class_final = final["eval"].get("per_class") or {}
    section.add(Subheading(f"Per-class AP at the best evaluation (iteration {best.get('iter')})"))
    if not isinstance(per_class_best, dict) or not per_class_best:
        return section.add(Text("The best evaluation has no per-class AP.", "missing"))
    headers = ["class", "AP at best"]
    show_final = final is not best and isinstance(per_class_final, dict)
    if show_final:
        headers.append(f"AP at final (iteration {final.get('iter')})")
    rows = []
    for name, value in per_class_best.items():
        row = [str(name), an.fmt_num(value)]
        if show_final:
            row.append(an.fmt_num(per_class_final.get(name)))
        rows.append(row)
    return section.add(Table(headers, rows))


def _eval_batch_note(run: RunDir) -> str:
    """Which val batch size the numbers come from: torchvision pads a batch to one canvas,
    so AP at batch 2 differs slightly from AP at batch 1 (the references' setting)."""
    config = run.config
    # A config written before eval.batch_size existed evaluated with the train batch.
    if config is None:
        return "Val batch size unknown (no readable config.toml)."
    if "batch_size" in (run.config_text or "").partition("[eval]")[2].partition("\n[")[0]:
        size = config.eval.batch_size
    else:
        size = config.data.batch_size
    if size == 1:
        return "Evaluated one val image at a time (eval.batch_size = 1), as torchvision's references do."
    return (f"Evaluated {size} val images per batch (eval.batch_size = {size}): torchvision pads a batch to one "
            "canvas, so AP differs slightly from the references' batch-1 numbers.")


def _checklist(run: RunDir) -> Section:
    section = Section("checklist", "Debugging checklist")
    rows, raised = an.checklist(run)
    if not run.has_events and run.preflight is None:
        section.add(Text("events.jsonl and preflight.json are missing: every rule shows 'not yet checked'.", "missing"))
    section.add(
        Table(
            ["rule", "stage", "final state", "iteration", "evidence"],
            [[f"{r.title} ({r.rule})", r.stage, r.state, "" if r.iter is None else str(r.iter), r.evidence] for r in rows],
            "Every rule's final state.",
            ["flagged" if r.state == "FLAGGED" else "ok" if r.state == "OK" else "unchecked" for r in rows],
            "checklist",
        )
    )
    section.add(Subheading("Flags raised"))
    if not raised:
        return section.add(Text("No rule flagged anything."))
    for flag in raised[:FLAG_LIMIT]:
        when = "pre-flight" if flag.stage == "preflight" and flag.iter is None else f"iteration {flag.iter}"
        if flag.time is not None:
            when += f", {an.fmt_time(flag.time)}"
        items = [("Rule", f"{flag.title} ({flag.rule})"), ("When", when), ("Severity", flag.severity or "n/a"),
                 ("Evidence", flag.evidence or "n/a"), ("Likely cause", flag.likely_cause or "n/a"), ("Fix", flag.fix or "n/a")]
        histogram = flag.data.get("score_histogram") if flag.data else None
        if histogram:
            items.append(("Score histogram", _histogram_text(histogram)))
        section.add(KeyValues(items, "card"))
    if len(raised) > FLAG_LIMIT:
        section.add(Text(f"... and {len(raised) - FLAG_LIMIT} more flags (see events.jsonl).", "note"))
    return section


def _histogram_text(histogram: Any) -> str:
    if isinstance(histogram, dict):
        return ", ".join(f"{k}: {v}" for k, v in histogram.items())
    if isinstance(histogram, list):
        return ", ".join(str(v) for v in histogram)
    return str(histogram)


def _preflight(run: RunDir) -> Section:
    section = Section("preflight", "Pre-flight dataset check")
    data = run.preflight
    if data is None:
        return section.add(Text("No pre-flight summary: preflight.json is missing (the check was skipped or never ran).", "missing"))
    splits = {k: v for k, v in (data.get("splits") or {}).items() if isinstance(v, dict)}
    if splits:
        rows = [[name, str(s.get("images", "?")), str(s.get("boxes", "?")), str(s.get("images_without_objects", "?"))] for name, s in splits.items()]
        section.add(Table(["split", "images", "boxes", "images without objects"], rows))
        for key, title in (("class_histogram", "Objects per class"), ("box_size_histogram", "Objects per box size")):
            bins: list[str] = []
            for s in splits.values():
                bins += [str(b) for b in (s.get(key) or {}) if str(b) not in bins]
            if bins:
                table_rows = [[b] + [str((s.get(key) or {}).get(b, 0)) for s in splits.values()] for b in bins]
                section.add(Subheading(title), Table([key.split("_histogram")[0].replace("_", " "), *splits], table_rows))
        try:
            png = plots.preflight_plot(data)
        except Exception as error:  # a plot must not take the whole report down
            png = None
            section.add(Text(f"The histogram plot could not be drawn: {error}", "problem"))
        if png:
            section.add(Figure("preflight", png, "Class and box-size histograms per split."))
    else:
        section.add(Text("preflight.json has no split statistics.", "missing"))
    verdicts = [v for v in (data.get("verdicts") or []) if isinstance(v, dict)]
    issues = [v for v in verdicts if v.get("state") == "FLAGGED"]
    section.add(Subheading("Issues found"))
    if not verdicts:
        section.add(Text("preflight.json lists no verdicts.", "missing"))
    elif not issues:
        section.add(Text(f"None: all {len(verdicts)} checks passed or were not applicable."))
    else:
        section.add(
            Table(
                ["check", "split", "severity", "evidence", "fix"],
                [[str(v.get("title") or v.get("rule")), str(v.get("split") or ""), str(v.get("severity") or ""),
                  str(v.get("evidence") or ""), str(v.get("fix") or "")] for v in issues],
                row_styles=["flagged"] * len(issues),
            )
        )
    return section


_CATEGORY_NAMES = {
    "pause": "pauses", "resume": "resumes", "stop": "stops", "lr-schedule": "LR changes by schedule",
    "lr-user": "LR changes by the user", "lr-recovery": "LR changes by recovery", "eval": "evaluations",
    "checkpoint": "checkpoints", "skipped-sample": "skipped samples", "oom-retry": "OOM retries",
    "nan-rewind": "NaN rewinds", "warning": "other warnings", "error": "errors", "flag": "flags",
    "start": "starts/resumes", "finish": "finishes", "command": "refused commands",
}


def _timeline(run: RunDir) -> Section:
    section = Section("timeline", "Event timeline")
    if not run.has_events:
        section.add(Text("events.jsonl is missing: pauses, LR changes, checkpoints and warnings are unknown; only evaluations from metrics.jsonl are listed.", "missing"))
    counts = an.timeline_counts(run)
    if counts:
        summary = ", ".join(f"{counts[k]} {name}" for k, name in _CATEGORY_NAMES.items() if counts.get(k))
        section.add(Text(f"In all: {summary}."))
    rows = an.timeline(run)
    if not rows:
        return section.add(Text("No notable events recorded.", "missing" if not run.has_events else "plain"))
    start = an.start_time(run)
    shown = rows[: an.TIMELINE_LIMIT]

    def elapsed(stamp: float | None) -> str:
        return "" if stamp is None or start is None else "+" + an.fmt_duration(stamp - start)

    table = Table(
        ["time", "elapsed", "iter", "what", "detail"],
        [[an.fmt_time(r.time) if r.time else "", elapsed(r.time), "" if r.iter is None else str(r.iter),
          r.category + (f" x{r.count}" if r.count > 1 else ""), r.text] for r in shown],
        "Consecutive schedule LR changes and repeated warnings are collapsed into one row.",
        [r.category for r in shown],
        "timeline",
    )
    section.add(table)
    if len(rows) > len(shown):
        section.add(Text(f"... {len(rows) - len(shown)} more rows not shown (see events.jsonl).", "note"))
    return section


def _previews(run: RunDir) -> Section:
    section = Section("previews", "Validation previews")
    try:
        images, note = preview_images(run)
    except Exception as error:  # previews are a nicety: never fail the report
        images, note = [], f"drawing failed ({error.__class__.__name__}: {error})"
    if not images:
        return section.add(Text(f"No previews: {note}.", "missing"))
    section.add(Text(f"Ground truth in green, predictions in red; {note}.", "note"))
    for index, image in enumerate(images, start=1):
        section.add(Figure(f"preview-{index}", image.png, f"{image.title} -- {image.caption}"))
    return section


def _environment(run: RunDir) -> Section:
    section = Section("environment", "Environment and resuming")
    env = an.environment(run)
    if env:
        preferred = ["python", "torch", "torchvision", "cuda", "device", "gpu_name"]
        keys = [k for k in preferred if k in env] + [k for k in env if k not in preferred]
        section.add(KeyValues([(k, _short(env[k]) if not isinstance(env[k], str) else env[k]) for k in keys]))
    else:
        section.add(Text("No environment recorded (no run_started event in events.jsonl).", "missing"))
    section.add(Subheading("Resume this run"), Code(an.resume_command(run)))
    if "last" not in run.checkpoints:
        section.add(Text("There is no checkpoints/last.pt yet, so resuming will fail until one is written.", "missing"))
    files = [name for name in (layout.CONFIG, layout.METRICS, layout.EVENTS, layout.ABANDONED, layout.PREFLIGHT, layout.LOG) if (run.path / name).is_file()]
    section.add(Text("Files in the run directory: " + (", ".join(files) or "none of the expected ones") + ".", "note"))
    return section


SECTIONS: tuple[Callable[[RunDir], Section], ...] = (
    _summary, _config, _plots, _evaluation, _checklist, _preflight, _timeline, _previews, _environment,
)


def build_document(run: RunDir) -> Document:
    """The whole report as a :class:`Document`; a section that crashes is replaced by a note."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    document = Document(f"cockpit run report: {run.name}", f"Generated {stamp} from {run.path}")
    for make in SECTIONS:
        try:
            document.sections.append(make(run))
        except Exception as error:  # one bad field must not cost the user the whole report
            name = make.__name__.strip("_")
            document.sections.append(
                Section(name, name.capitalize()).add(Text(f"This section could not be built: {error.__class__.__name__}: {error}", "problem"))
            )
    return document
