"""Keeping CPython's full garbage collection off the cockpit's long-lived objects.

A running cockpit holds ~440k GC-tracked objects that live as long as the run: Textual's
DOM, styles and compiled CSS, torch's modules, the dataset. A full (generation 2)
collection walks every one of them, holding the GIL: 0.19 s, about once every 40 s on
the tiny sample with ``log_every = 1`` (bench/notes.md). For that time the trainer thread
cannot run the Python between its torch ops and the keyboard does not answer.

Once the first step record arrives they have all been built, so the app moves them to the
collector's permanent generation (:func:`gc.freeze`); later collections walk only what
came after. Frozen objects are never collected, so the app releases them *before* it
closes a run (quit, restart): the engine's close collects the DDP wrapper's reference
cycles (cockpit/engine/trainer.py), and the old run's model, tensors included, must be
collectable once it is dropped (on a GPU they hold device memory).
"""

from __future__ import annotations

import gc


class LongLivedObjects:
    """Freezes the objects alive once a run is under way; releases them before it closes.

    One per app. ``arm`` when a run is attached; ``freeze`` (on each step record) then
    freezes once; ``release`` undoes this object's own freeze and disarms, so a late step
    record of the closing run cannot freeze again.
    """

    def __init__(self) -> None:
        self.frozen = False
        """Whether this app's freeze is in effect."""
        self.armed = False
        """A run is attached and not being closed: its first step record freezes."""

    def arm(self) -> None:
        self.armed = True

    def freeze(self) -> None:
        if self.armed and not self.frozen:
            gc.freeze()
            self.frozen = True

    def release(self) -> None:
        self.armed = False
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
