"""Prometheus metrics of one process, read from the live state at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .bus import Bus
from .hub import Hub


class LiveCollector(Collector):
    """Connections, subscriptions, deliveries and the listener's health."""

    def __init__(self, hub: Hub, bus: Bus) -> None:
        self.hub = hub
        self.bus = bus

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("realtime_ws_connections", "open WebSocket connections",
                                value=len(self.hub.connections))
        yield GaugeMetricFamily("realtime_ws_subscriptions", "channel subscriptions",
                                value=sum(len(s) for s in self.hub.channels.values()))
        yield CounterMetricFamily("realtime_deliveries", "events handed to subscribers",
                                  value=self.hub.delivered)
        yield GaugeMetricFamily("realtime_listener_up", "1 while the LISTEN connection is up",
                                value=1 if self.bus.up.is_set() else 0)
        yield CounterMetricFamily("realtime_listener_reconnects",
                                  "times the LISTEN connection was re-established",
                                  value=self.bus.reconnects)


def registry_for(hub: Hub, bus: Bus) -> CollectorRegistry:
    """A registry of this app's own metrics (no global state, so many apps may coexist)."""
    registry = CollectorRegistry()
    registry.register(LiveCollector(hub, bus))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition."""
    return generate_latest(registry)
