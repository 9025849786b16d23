"""The control server against a scripted engine: permissions, fan-out, commands, errors, slow clients."""

from __future__ import annotations

import os
import stat
import threading

from cockpit.engine.commands import Pause, Resume, SetLR, Stop
from cockpit.engine.events import CommandAck, RunFinished, RunState, RunWarning, StateChanged, StepMetrics
from cockpit.remote import protocol
from cockpit.remote.client import RemoteLink
from cockpit.remote.runs import write_server_info
from cockpit.remote.server import ControlServer
from remote_support import RawClient, step, wait_for


def serve(engine, run_dir, **options) -> ControlServer:
    server = ControlServer(engine, run_dir, **options)
    server.start()
    write_server_info(run_dir, server.socket_path)
    return server


def test_socket_is_owner_only(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir)
    try:
        mode = os.stat(server.socket_path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(os.stat(server.socket_path.parent).st_mode) == 0o700
    finally:
        server.close()
    assert not server.socket_path.exists()


def test_a_different_uid_is_refused(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir, allowed_uid=os.getuid() + 1)
    try:
        client = RawClient(server.socket_path)
        reply = client.read()
        assert reply["type"] == "error" and "permission denied" in reply["message"]
        assert client.read() is None  # and the connection is closed
        client.close()
        assert server.clients == 0
    finally:
        server.close()


def test_hello_numbers_events_after_the_history(fake_run):
    engine, run_dir = fake_run
    for i in range(3):
        engine.publish(step(i))
    server = serve(engine, run_dir)
    try:
        client = RawClient(server.socket_path)
        hello = client.read()
        assert hello["type"] == "hello" and hello["seq"] == 3 and hello["v"] == protocol.VERSION
        engine.publish(step(3))
        message = client.read()
        assert message["type"] == "event" and message["seq"] == 3 and message["event"]["iter"] == 3
        client.close()
    finally:
        server.close()


def test_malformed_messages_get_an_error_reply_and_the_connection_goes_on(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir)
    try:
        client = RawClient(server.socket_path)
        assert client.read()["type"] == "hello"
        client.send(b"{broken\n")
        assert "not a JSON object" in client.read_until(lambda m: m["type"] == "error")["message"]
        client.send(b'{"v": 1, "type": "command", "id": "a", "command": {"command": "explode"}}\n')
        reply = client.read_until(lambda m: m["type"] == "error")
        assert reply["id"] == "a" and "unknown command" in reply["message"]
        client.send(b'{"v": 2, "type": "command"}\n')
        assert "version" in client.read_until(lambda m: m["type"] == "error")["message"]
        client.send(b"z" * (protocol.MAX_COMMAND_BYTES + 10) + b"\n")
        assert "too long" in client.read_until(lambda m: m["type"] == "error")["message"]
        client.send(protocol.encode_command("b", Pause()))
        assert client.read_until(lambda m: m["type"] == "ok")["id"] == "b"
        assert engine.sent == [Pause()]  # nothing malformed reached the engine
        client.close()
    finally:
        server.close()


def test_two_clients_see_every_event_and_both_acks_in_order(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir)
    try:
        a, b = RawClient(server.socket_path), RawClient(server.socket_path)
        assert a.read()["type"] == b.read()["type"] == "hello"
        a.send(protocol.encode_command("a1", Pause()))
        a.read_until(lambda m: m["type"] == "ok")
        b.send(protocol.encode_command("b1", SetLR(0.5)))
        b.read_until(lambda m: m["type"] == "ok")
        a.send(protocol.encode_command("a2", Resume()))
        a.read_until(lambda m: m["type"] == "ok")
        assert engine.sent == [Pause(), SetLR(0.5), Resume()]
        for client in (a, b):

            def acks(client=client):
                return [m["event"]["command"] for m in client.seen if m["type"] == "event" and m["event"]["kind"] == "ack"]

            while len(acks()) < 3:
                client.read()
            assert acks() == ["pause", "set_lr", "resume"]
            client.close()
    finally:
        server.close()


def test_a_stalled_client_never_blocks_the_engine_and_is_told_what_it_missed(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir, max_backlog=100)
    try:
        stalled = RawClient(server.socket_path)  # connects, then reads nothing for a while
        wait_for(lambda: server.clients == 1, timeout=10)
        publisher = threading.Thread(target=lambda: [engine.publish(step(i)) for i in range(20000)])
        publisher.start()
        publisher.join(120)
        assert not publisher.is_alive(), "publishing blocked on a client that does not read"
        engine.publish(StateChanged(state=RunState.PAUSED, previous=RunState.RUNNING))
        missed = stalled.read_until(lambda m: m["type"] == "missed")
        assert missed["count"] > 0
        # Step records are shed first: the state change is still delivered.
        state = stalled.read_until(lambda m: m["type"] == "event" and m["event"]["kind"] == "state")
        assert state["event"]["state"] == "PAUSED"
        stalled.close()
    finally:
        server.close()


def test_a_client_that_vanishes_is_forgotten(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir)
    try:
        client = RawClient(server.socket_path)
        client.read()
        wait_for(lambda: server.clients == 1, timeout=10)
        client.close()
        for i in range(50):
            engine.publish(step(i))
        wait_for(lambda: server.clients == 0, timeout=10)
    finally:
        server.close()


def test_remote_link_replays_then_follows_without_gaps_or_repeats(fake_run):
    engine, run_dir = fake_run
    for i in range(5):
        engine.publish(step(i))
    server = serve(engine, run_dir)
    try:
        link = RemoteLink(run_dir)
        seen = []
        link.subscribe(seen.append)
        feeder = threading.Thread(target=lambda: [engine.publish(step(i)) for i in range(5, 200)])
        feeder.start()  # events keep coming while the link replays the file
        link.start()
        feeder.join()
        wait_for(lambda: sum(isinstance(e, StepMetrics) for e in seen) >= 200, timeout=30)
        assert [e.iter for e in seen if isinstance(e, StepMetrics)] == list(range(200))
        link.send(Pause())
        wait_for(lambda: any(isinstance(e, CommandAck) and e.command == "pause" for e in seen), timeout=10)
        link.close(timeout=5)
        assert not any(isinstance(c, Stop) for c in engine.sent), "closing an attached link must not stop the run"
        assert engine.state is RunState.RUNNING
    finally:
        server.close()


def test_the_link_says_when_the_connection_is_lost(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir)
    link = RemoteLink(run_dir)
    seen = []
    link.subscribe(seen.append)
    link.start()
    for client in list(server._clients):
        client.close()  # the server side drops the connection without a bye
    wait_for(lambda: any(isinstance(e, RunWarning) and e.category == "connection" for e in seen), timeout=10)
    link.send(Resume())
    wait_for(lambda: any(isinstance(e, CommandAck) and not e.ok for e in seen), timeout=10)
    link.close(timeout=5)
    server.close()


def test_commands_after_the_end_are_refused(fake_run):
    engine, run_dir = fake_run
    server = serve(engine, run_dir)
    try:
        client = RawClient(server.socket_path)
        client.read()
        engine.publish(RunFinished(state=RunState.FINISHED, iter=5, epoch=1))
        client.read_until(lambda m: m["type"] == "event" and m["event"]["kind"] == "finished")
        client.send(protocol.encode_command("late", Pause()))
        reply = client.read_until(lambda m: m["type"] == "error")
        assert reply["id"] == "late" and "has ended" in reply["message"]
        assert engine.sent == []
        client.close()
    finally:
        server.close()
