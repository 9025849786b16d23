"""Writing a checkpoint on a thread of its own while training goes on.

The end-of-epoch checkpoint used to stop training while ``torch.save`` pickled the state
and the file was written and fsynced: ~16 ms every 30 iterations of the `tiny` sample
(~0.7% of its run, bench/notes.md), and for a ResNet-50 model with SGD momentum (~330 MB)
a second or more of a GPU idling every epoch. The trainer now copies the state to host
memory (a copy, because the weights keep changing) and hands the copy to a
:class:`BackgroundWrite`; it learns the outcome at a later iteration boundary.

One write is in flight at a time: the next save waits for the previous one, so a slow
disk can delay training but never piles up copies of the model.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from cockpit.engine.checkpoint import CheckpointError


class BackgroundWrite:
    """``write(state, path)`` run on a daemon thread; :attr:`error` says how it failed.

    ``on_done`` is called on that thread once the write has ended, either way.
    """

    def __init__(self, write: Callable[[Any, Path], Path], state: Any, path: Path,
                 on_done: Callable[[], None] | None = None):
        self.path = path
        # Failed until the write returns: even an exception no handler below expects
        # (a KeyboardInterrupt) must not read as a checkpoint written.
        self.error: CheckpointError | None = CheckpointError(f"cannot write {path}: the write was interrupted")
        self._write = write
        self._state = state
        self._on_done = on_done
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cockpit-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.path = self._write(self._state, self.path)
            self.error = None
        except CheckpointError as error:
            self.error = error
        except Exception as error:  # noqa: BLE001 - whatever it is, the trainer must hear of it
            self.error = CheckpointError(f"cannot write {self.path}: {type(error).__name__}: {error}")
        finally:
            # Set before on_done: whoever it wakes finds the write done, not still winding down.
            self._ended.set()
            if self._on_done is not None:
                self._on_done()

    def done(self) -> bool:
        return self._ended.is_set()

    def wait(self) -> None:
        self._thread.join()
