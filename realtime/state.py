"""The typed state one running app holds: settings, pool, store, service, hub and bus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from .bus import Bus
from .config import Settings
from .hub import Hub
from .service import Service


@dataclass
class AppState:
    """What the lifespan builds and the routes use."""

    settings: Settings
    service: Service
    hub: Hub
    bus: Bus
    metrics: CollectorRegistry
    pool: Any = None


def state_of(app: Starlette) -> AppState:
    """The state of a started app."""
    found: AppState = app.state.realtime
    return found
