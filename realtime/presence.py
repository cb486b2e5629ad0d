"""What the other nodes hold: subscriptions per channel and connections per busy address.

Every node announces its local counts through the database (`Bus.announce`): what changed, at
most once a second, and everything every few seconds. Each node adds up what the others said
to answer "N watching" and to apply the per-address connection limit across the cluster.

A node that stops announcing is forgotten after `TTL` seconds; one that died is forgotten as
soon as its database listener is gone (`keep_nodes`, fed from `Bus.live_nodes`), because a
killed process's connections close at once and PostgreSQL drops its backend with them.
"""

from __future__ import annotations

import time

import orjson

TTL = 15.0
# Connection counts of an address travel as a pseudo-channel; no real channel has this prefix.
IP_PREFIX = "ip:"


class Presence:
    """The other nodes' last announced counts."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        # key (channel or ip:ADDRESS) -> node -> (count, when heard)
        self.remote: dict[str, dict[str, tuple[int, float]]] = {}
        self.announced: dict[str, int] = {}

    def heard(self, payload: str) -> None:
        """Another node's counts, from the bus; our own echo and malformed ones are ignored."""
        try:
            note = orjson.loads(payload)
            node, counts = note["node"], note["counts"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if node == self.node_id or not isinstance(node, str) or not isinstance(counts, dict):
            return
        now = time.monotonic()
        for key, count in counts.items():
            if isinstance(count, int) and not isinstance(count, bool):
                self.remote.setdefault(key, {})[node] = (count, now)

    def elsewhere(self, key: str) -> int:
        """The count of `key` on every other node."""
        now = time.monotonic()
        return sum(count for count, seen in self.remote.get(key, {}).values()
                   if now - seen < TTL)

    def nodes(self) -> set[str]:
        """The other nodes that have announced something still counted."""
        return {node for per_node in self.remote.values() for node in per_node}

    def keep_nodes(self, alive: set[str]) -> None:
        """Forget every node not in `alive` (its listener is gone: it died)."""
        for key in list(self.remote):
            per_node = {n: e for n, e in self.remote[key].items() if n in alive}
            if per_node:
                self.remote[key] = per_node
            else:
                del self.remote[key]

    def expire(self) -> None:
        """Forget counts that are zero or too old."""
        now = time.monotonic()
        for key in list(self.remote):
            per_node = {n: e for n, e in self.remote[key].items()
                        if now - e[1] < TTL and e[0] > 0}
            if per_node:
                self.remote[key] = per_node
            else:
                del self.remote[key]

    def changes(self, counts: dict[str, int]) -> dict[str, int]:
        """Of this node's `counts`, those that changed since last announced, and zero for keys
        gone since."""
        changed = {key: n for key, n in counts.items() if self.announced.get(key) != n}
        changed.update({key: 0 for key in self.announced if key not in counts})
        self.announced = counts
        return changed
