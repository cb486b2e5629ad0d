"""The hub's bookkeeping without sockets: ordering per subscription, overflow, presence.

Delivery over real sockets, replay from the real database and repair are covered end to end
in test_ws.py and test_cluster.py; these pin the rules those rely on.
"""

from __future__ import annotations

import json

import orjson

from realtime.hub import Connection, Hub, Subscription
from realtime.models import Event


async def _no_events(slug: str, since: int, limit: int) -> list[Event] | None:
    raise AssertionError("no repair expected")


async def _no_comment(comment_id: int) -> None:
    raise AssertionError("no keyed moderation event expected")


def make_hub(queue_size: int = 8) -> Hub:
    return Hub(node_id="here", queue_size=queue_size, replay_limit=1000,
               fetch_events=_no_events, fetch_private=_no_comment)


def test_subscription_holds_live_frames_until_the_replay_ends() -> None:
    """Frames that arrive during the replay wait; those the replay covered are dropped."""
    sub = Subscription(Connection(None, None, 8), "post:a")
    assert sub.offer(4, "e4") and sub.offer(5, "e5") and sub.offer(6, "e6")
    assert list(sub.conn.queue) == []
    assert sub.go_live(5)
    assert list(sub.conn.queue) == ["e6"] and sub.last == 6


def test_subscription_drops_repeats_and_reports_gaps() -> None:
    """A seq already given is ignored; a seq past the next one reports a gap, unsent."""
    sub = Subscription(Connection(None, None, 8), "post:a")
    sub.go_live(0)
    assert sub.offer(1, "e1") and sub.offer(1, "e1 again")
    assert not sub.offer(3, "e3")
    assert list(sub.conn.queue) == ["e1"] and sub.last == 1


def test_overflow_closes_only_that_connection() -> None:
    """Past its limit a connection drops its queue and is marked to close with 4008."""
    conn = Connection(None, None, 3)
    for i in range(3):
        conn.push(f"f{i}")
    assert conn.closing is None
    conn.push("one too many")
    assert conn.closing == (4008, "slow consumer") and not conn.queue
    conn.push("after")
    assert not conn.queue


def test_deliver_reaches_every_live_subscriber_in_order() -> None:
    """A post event goes to each live subscriber of its channel once; others get nothing."""
    hub = make_hub()
    a, b, other = (hub.connect("127.0.0.1", None) for _ in range(3))
    for conn in (a, b):
        hub.subscribe(conn, "post:x").go_live(0)
    hub.subscribe(other, "post:y").go_live(0)
    for seq in (1, 2, 2):
        hub.deliver("post:x", seq, f"x{seq}".encode())
    assert list(a.queue) == [b"x1", b"x2"] and list(b.queue) == [b"x1", b"x2"]
    assert not other.queue and hub.delivered == 6


def test_notify_encodes_the_event_frame() -> None:
    """An inline NOTIFY becomes the documented event frame on the post's channel."""
    hub = make_hub()
    conn = hub.connect(None, None)
    hub.subscribe(conn, "post:x").go_live(0)
    hub.notify(orjson.dumps({"post": "x", "seq": 1, "event": "comment.created",
                             "data": {"id": 7}}).decode())
    hub.notify("not json")
    assert [json.loads(f) for f in conn.queue] == [
        {"type": "event", "channel": "post:x", "seq": 1, "event": "comment.created",
         "data": {"id": 7}}]


def test_presence_adds_other_nodes_and_forgets_them() -> None:
    """`watching` adds other nodes' counts; a node's zero or its silence removes them."""
    hub = make_hub()
    conn = hub.connect(None, None)
    hub.subscribe(conn, "post:x").go_live(0)
    hub.remote_presence(orjson.dumps({"node": "there", "counts": {"post:x": 4}}).decode())
    hub.remote_presence(orjson.dumps({"node": "here", "counts": {"post:x": 99}}).decode())
    assert hub.watching("post:x") == 5
    hub.push_presence()
    assert json.loads(conn.queue[-1]) == {"type": "presence", "channel": "post:x",
                                          "watching": 5}
    hub.remote_presence(orjson.dumps({"node": "there", "counts": {"post:x": 0}}).decode())
    hub.push_presence()
    assert hub.watching("post:x") == 1 and hub.remote == {}
    assert json.loads(conn.queue[-1])["watching"] == 1


def test_presence_changes_announce_new_and_gone_channels() -> None:
    """A node announces counts that changed, and zero for channels it no longer has."""
    hub = make_hub()
    conn = hub.connect(None, None)
    hub.subscribe(conn, "post:x")
    assert hub.presence_changes() == {"post:x": 1}
    assert hub.presence_changes() == {}
    hub.disconnect(conn)
    assert hub.presence_changes() == {"post:x": 0}
    assert hub.per_ip == {} and not hub.connections
