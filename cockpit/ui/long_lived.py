"""Keeping CPython's full garbage collection off the cockpit's long-lived objects.

A running cockpit holds ~440k GC-tracked objects that live as long as the run: Textual's
DOM, styles and compiled CSS, torch's modules, the dataset. A full (generation 2)
collection walks every one of them, holding the GIL: 0.19 s, about once every 40 s on
the tiny sample with ``log_every = 1`` (bench/notes.md). For that time the trainer thread
cannot run the Python between its torch ops and the keyboard does not answer.

Once the first step record arrives they have all been built, so the app moves them to the
collector's permanent generation (:func:`gc.freeze`); later collections walk only what
came after. Frozen objects are never collected, so the app thaws them when it drops a
run (a restart) or exits: the old run's model and its reference cycles become garbage
then, and must be collectable (on a GPU, its tensors hold device memory).
"""

from __future__ import annotations

import gc


class LongLivedObjects:
    """Freezes the objects alive once a run is under way; thaws them when the run is dropped.

    One per app. ``freeze`` is idempotent (it runs on the first step record of each run);
    ``thaw`` only undoes this object's own freeze.
    """

    def __init__(self) -> None:
        self.frozen = False
        """Whether this app's freeze is in effect."""

    def freeze(self) -> None:
        if not self.frozen:
            gc.freeze()
            self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
