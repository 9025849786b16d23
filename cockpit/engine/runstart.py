"""Taking a run directory: lock it, validate the resume, and only then write to it.

``cockpit run --resume`` may be refused for many reasons: another live process owns the
folder, the checkpoint is unreadable, or it was trained with another architecture or
class list. Each refusal must leave the folder exactly as it was, so the order is: lock
(no write), load and check the checkpoint (no write), and only then commit (config,
records cut back to the checkpoint, temp files of dead writers removed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cockpit.config import Config, dump_config
from cockpit.engine import checkpoint as ckpt
from cockpit.runfiles import RunFolder


def check_fits(state: dict[str, Any], config: Config, path: Path) -> None:
    """Refuse (``CheckpointError``, one line) a checkpoint made for another model or class list.

    Compared from the checkpoint's own record of its config, before any weights are
    loaded: a shape error from ``load_state_dict`` would come much later, after the run
    folder had been written to.
    """
    args = state.get("args")
    model = args.get("model") if isinstance(args, dict) else None
    arch = model.get("arch") if isinstance(model, dict) else None
    if isinstance(arch, str) and arch != config.model.arch:
        raise ckpt.CheckpointError(
            f"{path} was trained with model.arch = {arch!r}, but this config says {config.model.arch!r}"
        )
    classes = state.get("classes")
    if isinstance(classes, (list, tuple)) and list(classes) != list(config.data.classes):
        raise ckpt.CheckpointError(
            f"{path} was trained on classes {list(classes)}, but data.classes is {list(config.data.classes)}"
        )


def preload(path: Path, config: Config) -> dict[str, Any]:
    """The checkpoint's state on the CPU, checked against ``config`` (see :func:`check_fits`)."""
    state = ckpt.load(path, map_location="cpu")
    check_fits(state, config, path)
    return state


def claim_run_dir(
    config: Config, resume_dir: Path | None, checkpoint: Path | None, preflight: dict | None
) -> tuple[RunFolder, dict[str, Any] | None]:
    """The locked, committed run folder and the preloaded checkpoint state (or None).

    ``resume_dir`` None: a new folder (also when resuming from a checkpoint file that
    lives outside any run folder). Raises ``RunBusyError``/``CheckpointError`` with the
    folder untouched.
    """
    folder = RunFolder.claim(resume_dir) if resume_dir is not None else None
    try:
        state = preload(checkpoint, config) if checkpoint is not None else None
        if folder is None:
            folder = RunFolder.create(config.resolve_path(config.run.output_dir), config.run.name)
        resumed_at = int(state.get("iteration", 0)) if state is not None and not folder.fresh else None
        folder.commit(config_text=dump_config(config), preflight=preflight, resume_iteration=resumed_at)
    except BaseException:
        if folder is not None:
            folder.release(abandon=True)
        raise
    return folder, state
