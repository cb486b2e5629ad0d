"""The hub's bookkeeping without sockets: ordering per subscription, overflow, presence.

Delivery over real sockets, replay from the real database and repair are covered end to end
in test_ws.py, test_replay.py and test_cluster.py; these pin the rules those rely on.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from realtime import events, presence, protocol
from realtime.connection import LIVE, OPENING, REPLAYING, Connection, Subscription
from realtime.hub import Hub
from realtime.models import Event, EventPage

from conftest import wait_for


async def _no_page(slug: str, since: int | None, limit: int) -> EventPage | None:
    raise AssertionError("no read expected")


async def _no_changes(keys: list[tuple[int, int]]) -> list[tuple[str, bytes]]:
    raise AssertionError("no moderation read expected")


def make_hub(queue_size: int = 8, ip_limit: int = 256) -> Hub:
    return Hub(node_id="here", queue_size=queue_size, replay_limit=1000, ip_limit=ip_limit,
               fetch_page=_no_page, fetch_moderation=_no_changes)


def test_subscription_leaves_live_events_to_the_replay() -> None:
    """While a subscription opens or replays, live events are not queued for it."""
    for state in (OPENING, REPLAYING):
        sub = Subscription(Connection(None, None, 8), "post:a", state)
        assert sub.offer(1, b"e1") and sub.offer(5, b"e5")
        assert sub.conn.queue == [] and sub.last == 0


def test_subscription_drops_repeats_and_reports_gaps() -> None:
    """A seq already given is ignored; a seq past the next one reports a gap, unsent."""
    sub = Subscription(Connection(None, None, 8), "post:a", LIVE)
    assert sub.offer(1, b"e1") and sub.offer(1, b"e1 again")
    assert not sub.offer(3, b"e3")
    assert sub.conn.queue == [b"e1"] and sub.last == 1


def test_overflow_closes_only_that_connection() -> None:
    """Past its limit a connection drops its queue and is marked to close with 4008."""
    conn = Connection(None, None, 3)
    for i in range(3):
        conn.push(f"f{i}".encode())
    assert conn.closing is None
    conn.push(b"one too many")
    assert conn.closing == (protocol.Close.SLOW_CONSUMER, "slow consumer") and not conn.queue
    conn.push(b"after")
    assert not conn.queue


def test_replayed_messages_do_not_count_as_slow() -> None:
    """Replayed messages have a budget of their own: live ones may still fill the limit."""
    conn = Connection(None, None, 3)
    for i in range(50):
        conn.push_replayed(f"r{i}".encode())
    for i in range(3):
        conn.push(f"f{i}".encode())
    assert conn.closing is None and len(conn.queue) == 53
    conn.push(b"one too many")
    assert conn.closing is not None


def test_deliver_reaches_every_live_subscriber_in_order() -> None:
    """A post event goes to each live subscriber of its channel once; others get nothing."""
    hub = make_hub()
    a, b, other = (hub.connect("127.0.0.1") for _ in range(3))
    for conn in (a, b):
        hub.subscribe(conn, "post:x", LIVE)
    hub.subscribe(other, "post:y", LIVE)
    for seq in (1, 2, 2):
        hub.deliver("post:x", seq, f"x{seq}".encode())
    assert a.queue == [b"x1", b"x2"] and b.queue == [b"x1", b"x2"]
    assert not other.queue and hub.delivered == 6 and hub.head("post:x") == 2


def test_notify_encodes_the_event_frame() -> None:
    """An inline NOTIFY becomes the documented event frame on the post's channel."""
    hub = make_hub()
    conn = hub.connect(None)
    hub.subscribe(conn, "post:x", LIVE)
    hub.notify(events.notify_payload("x", 1, "comment.created", b'{"id":7}', (7, 1)))
    hub.notify("not json")
    assert [json.loads(f) for f in conn.queue] == [
        {"type": "event", "channel": "post:x", "seq": 1, "event": "comment.created",
         "data": {"id": 7}}]


def test_a_live_post_reset_ends_the_subscriptions() -> None:
    """A post.reset heard live sends `reset` with its reason and ends every subscription."""
    hub = make_hub()
    a, b = hub.connect(None), hub.connect(None)
    for conn in (a, b):
        hub.subscribe(conn, "post:x", LIVE)
    hub.notify(events.notify_payload("x", 1, events.POST_RESET, events.reset_data("imported"),
                                     None))
    for conn in (a, b):
        assert [json.loads(f) for f in conn.queue] == [
            {"type": "reset", "channel": "post:x", "reason": "imported"}]
        assert conn.subscriptions == {}
    assert "post:x" not in hub.channels


def test_moderation_changes_are_not_read_without_a_moderator() -> None:
    """A moderation key heard on a node with no moderator subscribed costs no read."""
    hub = make_hub()
    hub.notify(events.notify_payload("x", None, "", None, (3, 1)))
    assert hub.moderation_keys == [] and not hub.tasks


def test_notify_payload_keeps_private_data_out() -> None:
    """A NOTIFY carries the public event inline when it fits and never the moderator view."""
    small = events.notify_payload("x", 4, "comment.created", b'{"id":1}', (1, 1))
    assert orjson.loads(small) == {"post": "x", "seq": 4, "event": "comment.created",
                                   "mod": [1, 1], "data": {"id": 1}}
    big = events.notify_payload("x", 5, "comment.created", b'"' + b"y" * 9000 + b'"', (1, 2))
    assert orjson.loads(big) == {"post": "x", "seq": 5, "event": "comment.created",
                                 "mod": [1, 2], "key": True}
    note = events.parse_note(big)
    assert note is not None and note.data is None and note.mod == (1, 2)
    assert events.parse_note('{"post": 1}') is None


def heard(hub: Hub, node: str, counts: dict[str, Any]) -> None:
    hub.presence.heard(orjson.dumps({"node": node, "counts": counts}).decode())


def test_presence_adds_other_nodes_and_forgets_a_zero() -> None:
    """`watching` adds other nodes' counts (not our own echo); a node's zero removes it."""
    hub = make_hub()
    conn = hub.connect(None)
    hub.subscribe(conn, "post:x", LIVE)
    heard(hub, "there", {"post:x": 4})
    heard(hub, "here", {"post:x": 99})
    assert hub.watching("post:x") == 5
    hub.push_presence()
    assert json.loads(conn.queue[-1]) == {"type": "presence", "channel": "post:x",
                                          "watching": 5}
    heard(hub, "there", {"post:x": 0})
    hub.push_presence()
    assert hub.watching("post:x") == 1 and hub.presence.remote == {}
    assert json.loads(conn.queue[-1])["watching"] == 1


def test_presence_forgets_a_silent_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node that stops announcing stops counting once its last count is TTL old."""
    hub = make_hub()
    conn = hub.connect(None)
    hub.subscribe(conn, "post:x", LIVE)
    now = [1000.0]
    monkeypatch.setattr(presence.time, "monotonic", lambda: now[0])
    heard(hub, "quiet", {"post:x": 3})
    heard(hub, "chatty", {"post:x": 2})
    now[0] += presence.TTL - 1
    heard(hub, "chatty", {"post:x": 2})
    assert hub.watching("post:x") == 6
    now[0] += 2
    assert hub.watching("post:x") == 3
    hub.push_presence()
    assert set(hub.presence.remote["post:x"]) == {"chatty"}


def test_presence_forgets_a_dead_node_at_once() -> None:
    """A node whose listener is gone from the database stops counting at once."""
    hub = make_hub()
    heard(hub, "alive", {"post:x": 1})
    heard(hub, "dead", {"post:x": 5, "post:y": 2})
    assert hub.presence.nodes() == {"alive", "dead"}
    hub.presence.keep_nodes({"alive", "here"})
    assert hub.watching("post:x") == 1 and hub.watching("post:y") == 0


def test_presence_changes_announce_new_and_gone_channels() -> None:
    """A node announces counts that changed, and zero for channels it no longer has."""
    hub = make_hub()
    conn = hub.connect(None)
    hub.subscribe(conn, "post:x")
    assert hub.presence_changes() == {"post:x": 1}
    assert hub.presence_changes() == {}
    hub.disconnect(conn)
    assert hub.presence_changes() == {"post:x": 0}
    assert hub.per_ip == {} and not hub.connections


def test_connection_limit_counts_other_nodes() -> None:
    """An address's connections on other nodes count against its limit here."""
    hub = make_hub(ip_limit=4)
    hub.connect("10.0.0.1")
    assert hub.local_counts() == {"ip:10.0.0.1": 1}
    heard(hub, "there", {"ip:10.0.0.1": 2})
    assert hub.admits("10.0.0.1")
    hub.connect("10.0.0.1")
    assert not hub.admits("10.0.0.1") and hub.admits("10.0.0.2")


def test_frames_split_large_batches() -> None:
    """Large batches go out as several array frames, each under the frame budget."""
    messages = tuple(orjson.dumps({"n": i, "pad": "z" * 100}) for i in range(10))
    data = protocol.frames(messages, limit=400)
    decoded: list[Any] = []
    frames = 0
    while data:
        assert data[0] == 0x81 and data[1] <= 126
        size, head = (data[1], 2) if data[1] < 126 else (int.from_bytes(data[2:4], "big"), 4)
        payload = json.loads(data[head:head + size])
        decoded += payload if isinstance(payload, list) else [payload]
        assert size <= 400 + 120
        data = data[head + size:]
        frames += 1
    assert [m["n"] for m in decoded] == list(range(10)) and frames == 4


def test_event_seq_reads_only_event_messages() -> None:
    """The seq of an event message is found without parsing; other messages have none."""
    assert protocol.event_seq(protocol.event("post:a", 12, "comment.created",
                                             b'{"seq": 5}')) == 12
    assert protocol.event_seq(protocol.event("moderation", None, "comment.created",
                                             b'{"seq":5}')) is None
    assert protocol.event_seq(protocol.reset("post:a", "imported")) is None


class Recording:
    """The transport side of a connection, in memory: records what the hub writes."""

    on_resume = None
    paused = False

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write_frame(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def close_now(self, code: int, reason: str) -> None:
        raise AssertionError("no close expected")


async def test_a_subscribe_read_across_a_listener_reconnect_is_read_again() -> None:
    """A subscribe whose first read was in flight when the listener reconnected does not go
    live on that read: the replay reads again, and finds what the listener missed."""
    reads: list[int | None] = []
    first_read = asyncio.Event()
    release = asyncio.Event()
    event = Event("x", 1, "comment.created", b'{"id":1}')

    async def fetch(slug: str, since: int | None, limit: int) -> EventPage:
        reads.append(since)
        if len(reads) == 1:
            first_read.set()
            await release.wait()
            return EventPage(0, 0, [])
        return EventPage(0, 1, [event])

    hub = Hub(node_id="here", queue_size=8, replay_limit=1000, ip_limit=256,
              fetch_page=fetch, fetch_moderation=_no_changes)
    conn = hub.connect(None)
    conn.attach(Recording())
    opening = asyncio.create_task(hub.open(conn, "post:x", 0))
    await first_read.wait()
    hub.resync()
    release.set()
    await opening
    sub = conn.subscriptions["post:x"]
    await wait_for(lambda: sub.state == LIVE, what="the subscription to go live")
    assert reads == [0, 0] and sub.last == 1
