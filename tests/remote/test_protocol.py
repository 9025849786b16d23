"""The wire format: round trips, versions, malformed and over-long messages."""

from __future__ import annotations

import io
import math

import pytest

from cockpit.engine import commands
from cockpit.engine.events import StepMetrics
from cockpit.remote import protocol


def decode_client(line: bytes) -> dict:
    return protocol.decode(line.rstrip(b"\n"), allowed=protocol.CLIENT_TYPES, max_bytes=protocol.MAX_COMMAND_BYTES)


@pytest.mark.parametrize(
    "command",
    [
        commands.Pause(), commands.Resume(), commands.Stop(save=False, reason="x"), commands.SetLR(0.5),
        commands.ScaleLR(2.0), commands.SaveCheckpoint(), commands.EvaluateNow(),
        commands.ApplyPatch({"optim.lr": 0.01}), commands.RequestPreview(3, predict=False),
        commands.RewindSkip(lr_factor=0.1, grad_clip=1.0),
    ],
)
def test_every_command_round_trips(command):
    line = protocol.encode_command("c1", command)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    msg_id, decoded = protocol.decode_command(decode_client(line))
    assert msg_id == "c1" and decoded == command


def test_events_keep_nan_and_inf_across_the_wire():
    event = StepMetrics(iter=3, epoch=0, lr=0.1, losses={"loss_classifier": float("nan")}, loss=float("inf"))
    data = protocol.decode(protocol.encode_event(7, event).rstrip(), allowed=protocol.SERVER_TYPES,
                           max_bytes=protocol.MAX_EVENT_BYTES)
    assert data["seq"] == 7
    decoded = protocol.decode_event(data)
    assert math.isnan(decoded.losses["loss_classifier"]) and decoded.loss == float("inf")
    assert decoded.iter == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "command"}', "unsupported protocol version None"),
        (b'{"v": 99, "type": "command"}', "unsupported protocol version 99"),
        (b'{"v": 1, "type": "hello"}', "unknown message type 'hello'"),
        (b"\xff\xfe", "not a JSON object"),
        (b"[" * 50_000, "nested deeper than 64 levels"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(line, reason):
    with pytest.raises(protocol.ProtocolError, match=reason.replace("(", r"\(")):
        decode_client(line)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"command": "explode"}, "unknown command 'explode'"),
        ({"command": "set_lr", "rate": 1}, "bad fields for 'set_lr'"),
        ("pause", "needs a 'command' object"),
    ],
)
def test_bad_commands_are_refused_with_their_id(body, reason):
    with pytest.raises(protocol.ProtocolError, match=reason) as error:
        protocol.decode_command({"v": 1, "type": "command", "id": "c9", "command": body})
    assert error.value.msg_id == "c9"


def test_size_is_bounded():
    with pytest.raises(protocol.ProtocolError, match="message too long"):
        protocol.decode(b"x" * 100, allowed=protocol.CLIENT_TYPES, max_bytes=10)


def test_line_reader_skips_an_overlong_line_and_goes_on():
    stream = io.BytesIO(b"short\n" + b"y" * 5000 + b"\nafter\n")
    lines = list(protocol.LineReader(stream.read, max_bytes=100, chunk=64))
    assert lines[0] == protocol.Line(b"short")
    assert lines[1].overflow == 5000 and lines[1].data == b""
    assert lines[2] == protocol.Line(b"after")


def test_the_remote_package_imports_without_textual_rich_or_torch():
    import subprocess
    import sys

    code = (
        "import sys, cockpit.remote.protocol, cockpit.remote.server, cockpit.remote.client, "
        "cockpit.remote.runs, cockpit.remote.daemon, cockpit.runfiles, cockpit.report.rundir; "
        "print(sorted(m for m in ('textual', 'rich', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
