"""Pre-flight policy for data that is partly bad: what blocks a run and what only warns.

One call, :func:`apply_policy`, takes a split's verdicts from the pre-flight scan and
returns them adjusted, plus the verdicts of the checks below. Kept apart from the scan
itself so the policy (how many bad files are "a few") lives in one place.

- **Unreadable images**: a few missing or undecodable files are a *warning*; those images
  are excluded from training (their dataset indices go in the verdict's ``excluded``, which
  ``preflight.json`` in the run directory lists). Only when more than
  :data:`UNREADABLE_MAJORITY` of a split cannot be read -- clearly a wrong folder -- is it
  an error. A decode failure of a file already known to be unreadable no longer makes the
  image-range check an error either.
- **Constant images** (``constant_images``): sampled images whose decoded pixels all have
  one value (a 16-bit image clipped to white, an all-black export) teach nothing.
- **Orphan annotations** (``orphan_annotations``): COCO annotations whose ``image_id``
  names no image are dropped by every loader; a wrong or stale annotation file, so named.
- **Repaired empty targets** (``empty_target_shape``): an image without objects whose
  boxes are shaped ``(0,)`` instead of ``(0, 4)``; cockpit reshapes them, torchvision
  itself would raise, so it is named as a warning rather than as an error.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cockpit.diagnostics.flags import CheckState, Flag, Verdict
from cockpit.diagnostics.preflight.arrays import FILE_MISSING, FILE_UNREADABLE
from cockpit.diagnostics.preflight.checks_images import check_image_range
from cockpit.diagnostics.verdicts import flagged, not_checked, ok
from cockpit.engine.events import Severity

UNREADABLE_MAJORITY = 0.5
"""More than this share of a split unreadable is an error; up to it, a warning."""


def _names(items: Sequence[str], limit: int = 3) -> str:
    text = ", ".join(items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def unreadable_rows(arrays: Any, samples: Sequence[Any] = ()) -> list[int]:
    """Image rows whose file is missing or unreadable (header read) or failed to decode."""

    rows: set[int] = set()
    if arrays.file_status is not None:
        rows.update(int(r) for r in np.flatnonzero((arrays.file_status == FILE_MISSING) | (arrays.file_status == FILE_UNREADABLE)))
    by_index = {int(index): row for row, index in enumerate(arrays.indices)}
    rows.update(by_index[s.index] for s in samples if s.error and s.index in by_index)
    return sorted(rows)


def unreadable_verdict(arrays: Any, samples: Sequence[Any], original: Verdict) -> Verdict:
    """The ``unreadable_images`` verdict under the policy: warning for a few, error for most."""
    rows = unreadable_rows(arrays, samples)
    if not rows:
        return original
    total = max(arrays.num_images, 1)
    excluded = [int(arrays.indices[r]) for r in rows]
    paths = [arrays.paths[r] for r in rows]
    undecoded = [s for s in samples if s.error and s.index in excluded]
    parts = [original.evidence] if original.flag is not None else []
    if undecoded:
        parts.append(f"failed to decode: {_names([s.name for s in undecoded])} ({undecoded[0].error})")
    evidence = f"{len(rows)} of {arrays.num_images} images cannot be read; " + "; ".join(parts)
    if len(rows) > UNREADABLE_MAJORITY * total:
        return _replace(original, Severity.ERROR, evidence + " -- most of the split",
                        "wrong image folder (data.train_images / data.val_images), or files not copied",
                        "point data.*_images at the folder holding the files named in the annotations",
                        excluded=excluded, paths=paths)
    return _replace(original, Severity.WARNING, evidence + "; they are left out of training",
                    "deleted, truncated or corrupt files",
                    "replace or remove them; preflight.json in the run directory lists them",
                    excluded=excluded, paths=paths)


def _replace(original: Verdict, severity: Severity, evidence: str, cause: str, fix: str, **data: Any) -> Verdict:
    rule = original.rule
    return Verdict.flagged(Flag(rule, original.title, severity, evidence, cause, fix, data))


def check_constant_images(samples: Sequence[Any]) -> Verdict:
    """Decoded samples whose pixels are all one value: an error when every one is, else a warning."""
    rule = "constant_images"
    decoded = [s for s in samples if not s.error and s.kind in ("tensor", "ndarray") and np.isfinite(s.min)]
    if not decoded:
        return not_checked(rule, "no sample decoded")
    constant = [s for s in decoded if s.min == s.max]
    if not constant:
        return ok(rule, f"{len(decoded)} decoded samples vary")
    evidence = (f"{len(constant)} of {len(decoded)} decoded samples have every pixel = {constant[0].max:g}: "
                + _names([s.name for s in constant]))
    return flagged(
        rule,
        Severity.ERROR if len(constant) == len(decoded) else Severity.WARNING,
        evidence,
        "blank images, or a high-bit-depth format decoded wrongly (16-bit clipped to white)",
        "open the named files; save them as 8- or 16-bit PNG/JPEG (cockpit scales 16-bit to [0, 1])",
        samples=[s.index for s in constant],
    )


def check_orphan_annotations(dataset: Any) -> Verdict | None:
    """COCO annotations naming an image id that is not in ``images`` (None: not a COCO dataset)."""
    rule = "orphan_annotations"
    data = getattr(getattr(dataset, "coco", None), "dataset", None)
    if not isinstance(data, dict):
        return None
    ids = {im.get("id") for im in data.get("images") or [] if isinstance(im, dict)}
    anns = [a for a in data.get("annotations") or [] if isinstance(a, dict)]
    orphans = [a for a in anns if a.get("image_id") not in ids]
    if not orphans:
        return ok(rule, f"all {len(anns)} annotations name a listed image")
    missing = sorted({str(a.get("image_id")) for a in orphans})
    return flagged(
        rule,
        Severity.WARNING,
        f"{len(orphans)} of {len(anns)} annotations name image ids not in 'images' ({_names(missing)}); "
        "they are ignored",
        "a stale or hand-edited annotation file, or images removed without their annotations",
        "remove those annotations or add the images to 'images'",
        image_ids=missing[:50],
    )


def check_repaired_empty_targets(dataset: Any) -> Verdict | None:
    """Empty targets a module dataset returned shaped (0,) (None: nothing to say)."""
    rule = "empty_target_shape"
    repaired = sorted(getattr(dataset, "repaired_empty_targets", ()) or ())
    if not repaired:
        return None
    return flagged(
        rule,
        Severity.WARNING,
        f"{len(repaired)} target(s) have boxes shaped (0,): #" + _names([str(i) for i in repaired]).replace(", ", ", #"),
        "an empty box list turned into a tensor without its shape",
        "return torch.zeros((0, 4), dtype=torch.float32) for an image without objects: cockpit reshapes it, "
        "torchvision's own training code raises on it",
        samples=repaired[:50],
    )


def _only_empty_shape(verdict: Verdict) -> bool:
    flag = verdict.flag
    return flag is not None and list(flag.data.get("kinds") or []) == ["empty_shape"]


def apply_policy(verdicts: list[Verdict], *, dataset: Any, arrays: Any, samples: Sequence[Any]) -> list[Verdict]:
    """A split's verdicts under this module's policy, with its extra checks appended."""

    bad_indices = {int(arrays.indices[r]) for r in unreadable_rows(arrays, samples)}
    out = []
    for verdict in verdicts:
        if verdict.rule == "unreadable_images" and verdict.state != CheckState.NOT_CHECKED:
            verdict = unreadable_verdict(arrays, samples, verdict)
        elif verdict.rule == "image_range" and bad_indices and verdict.flag is not None:
            # The files that failed are already named (and excluded) above.
            verdict = check_image_range([s for s in samples if s.index not in bad_indices])
        elif verdict.rule == "target_dtype" and _only_empty_shape(verdict):
            flag = verdict.flag
            verdict = Verdict.flagged(Flag(flag.rule, flag.title, Severity.WARNING, flag.evidence,
                                           flag.likely_cause, flag.fix, flag.data))
        out.append(verdict)
    out.append(check_constant_images([s for s in samples if s.index not in bad_indices]))
    for extra in (check_orphan_annotations(dataset), check_repaired_empty_targets(dataset)):
        if extra is not None:
            out.append(extra)
    return out
