"""A flood of connections and hostile lines never slow or stall the run (#14.5)."""

from __future__ import annotations

import signal
import socket
import threading

from cockpit.engine.commands import Pause
from cockpit.remote import protocol
from cockpit.remote.runs import write_server_info
from cockpit.remote.server import ControlServer
from remote_support import RawClient, step, wait_for

FLOOD = 3000


def serve(engine, run_dir, **options) -> ControlServer:
    server = ControlServer(engine, run_dir, **options)
    server.start()
    write_server_info(run_dir, server.socket_path)
    return server


def test_thousands_of_idle_connections_are_capped_without_threads(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir, max_clients=32)
    threads_before = threading.active_count()
    held: list[socket.socket] = []
    try:
        admitted, refused = [], []
        for _ in range(FLOOD):  # bounded; every socket is held open until the end
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(30)
            sock.connect(str(server.socket_path))
            held.append(sock)
            first = sock.makefile("rb").readline()
            reply = protocol.decode(first, allowed=protocol.SERVER_TYPES, max_bytes=protocol.MAX_EVENT_BYTES)
            (admitted if reply["type"] == "hello" else refused).append(reply)
        assert len(admitted) == 32 and len(refused) == FLOOD - 32
        assert all(r["type"] == "error" and "too many connections" in r["message"] for r in refused)
        assert server.clients == 32 and server.refused == FLOOD - 32
        # Two threads per admitted client, none for the refused ones.
        assert threading.active_count() - threads_before <= 2 * 32
        # The engine still publishes and an admitted client still steers it.
        engine.publish(step(1))
        steer = RawClient(server.socket_path)
        assert steer.read()["type"] == "error"  # still full: this one is refused too
        steer.close()
        for sock in held[:10]:
            sock.close()
        wait_for(lambda: server.clients == 22)
        steer = RawClient(server.socket_path)
        assert steer.read()["type"] == "hello"
        steer.send(protocol.encode_command("p1", Pause()))
        steer.read_until(lambda m: m["type"] == "ok" and m["id"] == "p1")
        assert isinstance(engine.sent[-1], Pause)
        steer.close()
    finally:
        for sock in held:
            sock.close()
        server.close()


def test_a_deeply_nested_line_gets_an_error_reply_and_the_connection_goes_on(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir)
    try:
        client = RawClient(server.socket_path)
        assert client.read()["type"] == "hello"
        client.send(b"[" * 50_000 + b"\n")
        reply = client.read_until(lambda m: m["type"] == "error")
        assert "nested deeper than 64 levels" in reply["message"]
        client.send(protocol.encode_command("p2", Pause()))
        client.read_until(lambda m: m["type"] == "ok" and m["id"] == "p2")
        client.close()
    finally:
        server.close()


def test_sigterm_stops_a_detached_run_within_an_iteration_while_connections_flood_it(detach):
    import json
    import os

    import torch

    from cockpit.remote.runs import pid_alive

    detached = detach("run.max_iters=100000", "run.epochs=1000")
    metrics = detached.run_dir / "metrics.jsonl"
    wait_for(lambda: metrics.is_file() and metrics.read_text().count("\n") >= 2)
    held = []
    try:
        for _ in range(1000):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(detached.socket))  # blocking: waits for the accept loop, never EAGAIN
            held.append(sock)
        lines_before = metrics.read_text().count("\n")
        wait_for(lambda: metrics.read_text().count("\n") >= lines_before + 2)  # training goes on
        os.kill(detached.pid, signal.SIGTERM)
        last_logged = json.loads(metrics.read_text().strip().splitlines()[-1])["iter"]
        wait_for(lambda: not pid_alive(detached.pid), timeout=300)
    finally:
        for sock in held:
            sock.close()
    state = torch.load(detached.run_dir / "checkpoints" / "last.pt", weights_only=True)
    # Stopped at the next boundary: at most the iteration in flight when the signal came.
    assert last_logged <= state["iteration"] <= last_logged + 1
    assert "SIGTERM received" in (detached.run_dir / "cockpit.log").read_text()
