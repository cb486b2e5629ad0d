"""The pure wire format: every frame parses to an op or a clean error; builders emit JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from realtime import protocol

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["subscribe", "unsubscribe", "ping", "pong", "", "SUBSCRIBE"])},
    optional={"channel": st.one_of(st.text(), st.sampled_from(
                  ["moderation", "post:a", "post:", "post:UPPER", "post:" + "a" * 201]),
                  json_values),
              "since": st.one_of(st.integers(), json_values),
              "id": json_values})


@given(st.binary())
def test_any_bytes_parse_or_error(frame: bytes) -> None:
    """Arbitrary bytes never raise: they give an op or a ProtocolError."""
    result = protocol.parse(frame)
    assert isinstance(result, protocol.Subscribe | protocol.Unsubscribe | protocol.Ping
                      | protocol.ProtocolError)


@given(st.text())
def test_any_text_parses_or_errors(frame: str) -> None:
    """Arbitrary text never raises."""
    result = protocol.parse(frame)
    assert isinstance(result, protocol.Subscribe | protocol.Unsubscribe | protocol.Ping
                      | protocol.ProtocolError)


@given(json_values)
def test_any_json_parses_or_errors(value: Any) -> None:
    """Any JSON document never raises, and non-objects are invalid messages."""
    result = protocol.parse(json.dumps(value))
    if not isinstance(value, dict):
        assert isinstance(result, protocol.ProtocolError) and result.code == "invalid_message"


@given(ops)
def test_op_shaped_frames_are_validated(message: dict[str, Any]) -> None:
    """Op-shaped frames give ops only when every field is valid."""
    result = protocol.parse(json.dumps(message))
    if isinstance(result, protocol.Subscribe):
        assert message["op"] == "subscribe"
        assert result.channel == "moderation" or protocol.channel_slug(result.channel)
        assert result.since is None or (isinstance(result.since, int) and result.since >= 0)
    elif isinstance(result, protocol.Unsubscribe):
        assert message["op"] == "unsubscribe"
    elif isinstance(result, protocol.Ping):
        assert message["op"] == "ping"
    else:
        assert result.code in {"invalid_message", "unknown_op", "unknown_channel"}
        error = json.loads(protocol.error(result.code, result.message, result.channel))
        assert error["type"] == "error"


def test_valid_ops() -> None:
    """The documented ops parse to their records."""
    assert protocol.parse('{"op":"subscribe","channel":"post:a-b.c_d","since":42}') == \
        protocol.Subscribe("post:a-b.c_d", 42)
    assert protocol.parse('{"op":"subscribe","channel":"moderation"}') == \
        protocol.Subscribe("moderation", None)
    assert protocol.parse('{"op":"unsubscribe","channel":"post:x"}') == \
        protocol.Unsubscribe("post:x")
    assert protocol.parse('{"op":"ping","id":5}') == protocol.Ping(5)
    assert protocol.parse('{"op":"ping"}') == protocol.Ping(None)


def test_invalid_ops() -> None:
    """Bad since values, channels and ops give the documented error codes."""
    cases = {'{"op":"subscribe","channel":"post:a","since":-1}': "invalid_message",
             '{"op":"subscribe","channel":"post:a","since":true}': "invalid_message",
             '{"op":"subscribe","channel":"post:a","since":"3"}': "invalid_message",
             '{"op":"subscribe","channel":"room:a"}': "unknown_channel",
             '{"op":"subscribe"}': "invalid_message",
             '{"op":"jump"}': "unknown_op",
             '{"op":"ping","id":{"a":1}}': "invalid_message",
             "{": "invalid_json"}
    for frame, code in cases.items():
        result = protocol.parse(frame)
        assert isinstance(result, protocol.ProtocolError) and result.code == code, frame


@given(st.lists(st.dictionaries(st.text(), st.integers(), max_size=3), min_size=1, max_size=5))
def test_batch_is_the_frames_in_order(messages: list[dict[str, int]]) -> None:
    """A batch of one is the frame itself; of several, a JSON array of them in order."""
    frames = [json.dumps(m).encode() for m in messages]
    decoded = json.loads(protocol.batch(frames))
    assert decoded == (messages[0] if len(messages) == 1 else messages)


@given(st.text(max_size=200).map(str.encode), st.sampled_from([0, 125, 126, 65535, 65536]))
def test_text_frame_is_what_a_client_parses(text: bytes, pad: int) -> None:
    """Each length form of the header reads back, through `websockets`' client, as the payload."""
    payload = text + b"x" * pad
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), state=State.OPEN, max_size=None)
    client.receive_data(protocol.text_frame(payload))
    [frame] = client.events_received()
    assert isinstance(frame, Frame) and frame.opcode is Opcode.TEXT and frame.fin
    assert frame.data == payload


def test_server_messages() -> None:
    """Builders produce the documented shapes."""
    assert json.loads(protocol.subscribed("post:a", 4, 2, 9)) == {
        "type": "subscribed", "channel": "post:a", "seq": 4, "replayed": 2, "watching": 9}
    assert json.loads(protocol.event("post:a", 5, "comment.created", b'{"id":1}')) == {
        "type": "event", "channel": "post:a", "seq": 5, "event": "comment.created",
        "data": {"id": 1}}
    assert "seq" not in json.loads(protocol.event("moderation", None, "comment.updated", b"{}"))
    assert json.loads(protocol.reset("post:a", "too_far_behind")) == {
        "type": "reset", "channel": "post:a", "reason": "too_far_behind"}
    assert json.loads(protocol.presence("post:a", 3)) == {
        "type": "presence", "channel": "post:a", "watching": 3}
    assert json.loads(protocol.pong("x")) == {"type": "pong", "id": "x"}
