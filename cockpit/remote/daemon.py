"""``cockpit run --detach``: the run in a background process that outlives the terminal.

The CLI (after the config and pre-flight checks, so mistakes still show at the prompt)
calls :func:`spawn`. That starts ``python -m cockpit.remote.daemon`` in a new session with
stdin on /dev/null; the child forks once more and its first child exits, so the run's
process is not a session leader (it can never gain a controlling terminal) and is not
the CLI's child (init reaps it; a zombie never looks alive). The run's process builds the
trainer and the :class:`~cockpit.remote.server.ControlServer`, writes ``server.json``,
points its stdout/stderr at ``RUN_DIR/cockpit.log`` and trains headless until the run ends or
a signal stops it. It reports "ready" through a pipe only once training has started, or
one line of error if the run failed before its first iteration, so the CLI never says
"started" about a run that is already dead. The child runs with ``python -P``, so a
``cockpit/`` folder in the working directory cannot shadow the package.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cockpit.runfiles import layout

READY_TIMEOUT = 600.0
"""Importing torch and building the model on a busy machine can take a while."""


class DetachError(Exception):
    """The detached run did not start; ``str()`` is a one-line reason."""


@dataclass(frozen=True)
class DetachRequest:
    """What the detached process needs to rebuild the ``cockpit run`` request."""

    config_path: str
    overrides: list[str] = field(default_factory=list)
    resume: str | None = None
    inject: list[str] = field(default_factory=list)
    preflight: dict | None = None


@dataclass(frozen=True)
class Detached:
    """A started detached run."""

    run_dir: Path
    pid: int
    socket: Path


def spawn(request: DetachRequest, timeout: float = READY_TIMEOUT) -> Detached:
    """Start the run in the background and wait until it serves its socket."""
    fd, request_path = tempfile.mkstemp(prefix="cockpit-detach-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(request), handle)
    early = tempfile.TemporaryFile()
    read_end, write_end = os.pipe()
    try:
        # -P: no working directory at the front of sys.path, so a `cockpit/` folder where the
        # user happens to stand cannot shadow the package the run imports.
        child = subprocess.Popen(
            [sys.executable, "-P", "-m", "cockpit.remote.daemon", str(write_end), request_path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=early,
            pass_fds=(write_end,),
            start_new_session=True,
            close_fds=True,
        )
    except OSError as error:
        os.close(read_end)
        os.unlink(request_path)
        raise DetachError(f"cannot start the background process: {error}") from None
    finally:
        os.close(write_end)
    try:
        child.wait(timeout=60)  # the intermediate exits right after its fork
        report = _read_ready(read_end, timeout)
    except subprocess.TimeoutExpired:
        raise DetachError("the background process did not detach within 60s") from None
    finally:
        os.close(read_end)
    with early:
        if report is None:
            early.seek(0)
            lines = [line for line in early.read().decode("utf-8", "replace").splitlines() if line.strip()]
            tail = f": {lines[-1]}" if lines else ""
            raise DetachError(f"the background run exited before it started{tail}")
    if not report.get("ok"):
        where = f" (run directory {report['run_dir']})" if report.get("run_dir") else ""
        raise DetachError(str(report.get("error") or "the background run did not start") + where)
    return Detached(run_dir=Path(report["run_dir"]), pid=int(report["pid"]), socket=Path(report["socket"]))


def _read_ready(fd: int, timeout: float) -> dict | None:
    buffer = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DetachError(f"the background run did not report ready within {timeout:.0f}s")
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
    line = buffer.split(b"\n", 1)[0]
    try:
        return json.loads(line) if line else None
    except ValueError:
        return None


# -- the detached process ----------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if "\n" not in text else text.replace("\n", "; ")


def _start(request: DetachRequest):
    """Build the trainer and its server; returns (trainer, server). Raises on bad input."""
    from cockpit.config import load_config
    from cockpit.engine.faults import parse_injection
    from cockpit.assembly import make_trainer
    from cockpit.engine.session import RunRequest
    from cockpit.remote.runs import register, write_server_info
    from cockpit.remote.server import ControlServer

    config_path = Path(request.config_path)
    config = load_config(config_path, request.overrides)
    injections = [parse_injection(text) for text in request.inject]
    run_request = RunRequest(
        config=config, config_path=config_path, resume=request.resume, injections=injections, preflight=request.preflight,
    )
    trainer = make_trainer(run_request, headless=True)
    run_dir = trainer.run_dir
    assert run_dir is not None
    server = ControlServer(trainer, run_dir)
    server.start()
    write_server_info(run_dir, server.socket_path, config_dir=config.base_dir)
    register(run_dir)
    return trainer, server


def _serve(trainer, server) -> int:
    """Train to the end (a signal stops at the next boundary with a checkpoint), then close."""
    from cockpit.engine.session import run_headless
    from cockpit.remote.runs import unregister

    def close() -> None:
        server.close()
        unregister(trainer.run_dir)

    # stdout is RUN_DIR/cockpit.log by now: the printer must not append a second copy.
    return run_headless(trainer, log_file=False, on_close=close)


class _StartWatch:
    """A listener that tells the waiting CLI, once, whether training started or the run ended.

    "Ready" is only said once the first iteration is under way: datasets, model and
    checkpoint are built in the trainer's thread, and a run that dies there (bad data under
    --no-check) must be reported as failed, with its reason, not as started.
    """

    def __init__(self, ready, trainer, server):
        self.ready = ready
        self.trainer = trainer
        self.server = server
        self.lock = threading.Lock()

    def __call__(self, event) -> None:
        from cockpit.engine.events import RunFinished, StateChanged

        if isinstance(event, StateChanged) and event.state.value in ("RUNNING", "PAUSED"):
            self.report({"ok": True, "pid": os.getpid(), "socket": str(self.server.socket_path)})
        elif isinstance(event, RunFinished):
            ok = event.outcome != "failed"
            self.report({"ok": ok, "pid": os.getpid(), "socket": str(self.server.socket_path),
                         "error": "" if ok else f"the run failed before training: {event.reason}"})

    def report(self, message: dict) -> None:
        with self.lock:
            if self.ready is None:
                return
            ready, self.ready = self.ready, None
        try:
            ready.write(json.dumps({**message, "run_dir": str(self.trainer.run_dir)}) + "\n")
            ready.close()
        except OSError:
            pass  # the CLI gave up waiting; the run goes on regardless


def main(argv: list[str]) -> int:
    ready_fd, request_path = int(argv[0]), argv[1]
    if os.fork():
        os._exit(0)
    ready = os.fdopen(ready_fd, "w", encoding="utf-8")
    from cockpit.engine.host_memory import keep_freed_memory

    keep_freed_memory()  # before the socket server's and the trainer's threads
    try:
        with open(request_path, encoding="utf-8") as handle:
            request = DetachRequest(**json.load(handle))
        os.unlink(request_path)
        trainer, server = _start(request)
    except Exception as error:  # noqa: BLE001 - any failure is one line for the waiting CLI
        ready.write(json.dumps({"ok": False, "error": _one_line(error)}) + "\n")
        ready.close()
        return 1
    log = open(Path(trainer.run_dir) / layout.LOG, "a", encoding="utf-8")
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    trainer.subscribe(_StartWatch(ready, trainer, server))
    return _serve(trainer, server)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
