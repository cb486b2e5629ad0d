"""Settings: one table (name, default, help) behind `REALTIME_*` variables, flags and README.

`Settings.from_env()` reads the environment once, at start-up; nothing reads configuration at
import time. Every entry of `SETTINGS` becomes an environment variable `REALTIME_<NAME>` and is
listed in the README by `realtime settings --markdown`; a test keeps the README in step.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Moderation = Literal["post", "pre"]


@dataclass(frozen=True)
class Setting:
    """One configurable value: its name, type, default and a line of help."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "REALTIME_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", str, "", "PostgreSQL URL; empty starts the embedded database"),
    Setting("data_dir", Path, Path(".realtime"), "where the embedded database keeps its files"),
    Setting("host", str, "127.0.0.1", "address to listen on"),
    Setting("port", int, 8000, "port to listen on"),
    Setting("workers", int, 1, "server processes sharing the port"),
    Setting("public_url", str, "", "base URL printed for users; default http://HOST:PORT"),
    Setting("allowed_origins", str, "", "comma-separated extra origins allowed to embed and write"),
    Setting("forwarded_allow_ips", str, "",
            "proxies (addresses, CIDR networks, or *) whose X-Forwarded-For/-Proto are believed"),
    Setting("default_moderation", str, "post", "moderation of new posts: post or pre"),
    Setting("max_depth", int, 6, "deepest reply nesting; deeper replies attach higher"),
    Setting("edit_window_s", int, 900, "seconds an author may edit or delete with the edit token"),
    Setting("max_links", int, 2, "links a comment may hold before it waits for a moderator"),
    Setting("hold_words", str, "", "comma-separated words that send a comment to the queue"),
    Setting("block_words", str, "", "comma-separated words that mark a comment as spam"),
    Setting("trusted_authors", bool, True,
            "an e-mail with an approved comment skips pre-moderation"),
    Setting("flood_min_interval_s", int, 0, "seconds between comments per IP and e-mail (0: off)"),
    Setting("flood_max_per_10_min", int, 0, "comments per 10 minutes per IP and e-mail (0: off)"),
    Setting("retention_days", int, 7, "days events are kept for resuming clients"),
    Setting("ip_retention_days", int, 30,
            "days commenters' IP addresses and user agents are kept, then dropped"),
    Setting("replay_limit", int, 1000, "most missed events replayed before a reset"),
    Setting("max_subscriptions", int, 50, "subscriptions one WebSocket connection may hold"),
    Setting("max_connections_per_ip", int, 256,
            "live connections one client IP may hold on all nodes together"),
    Setting("queue_size", int, 256, "live messages waiting for one slow subscriber before 4008"),
    Setting("ws_ping_interval", float, 20.0, "seconds between protocol pings to each client"),
    Setting("session_days", int, 14, "days a moderator session lasts"),
    Setting("pool_size", int, 10, "database connections per process"),
    Setting("db_timeout_s", float, 4.0,
            "seconds to connect, to wait for a pooled connection and per statement"),
    Setting("log_level", str, "info", "debug, info, warning or error"),
    Setting("auto_create", bool, True,
            "a page of an allowed origin creates its thread on first view (10 per IP per hour)"),
    Setting("login_max_failures", int, 10,
            "failed logins per username and address in 15 minutes before 429"),
    Setting("login_max_failures_per_ip", int, 50,
            "failed logins per address (IPv6: per /64) in 15 minutes before 429"),
    Setting("metrics_token", str, "",
            "bearer token for /metrics; empty: /metrics answers this machine only"),
    Setting("render_workers", int, 2,
            "processes per server that render costly comments (long or markup-heavy) off the"
            " event loop"),
    Setting("render_cpu_limit_s", float, 0.5,
            "processor seconds one comment may take to render before it is refused"),
    Setting("direct_database_url", str, "",
            "PostgreSQL URL for LISTEN and migrations, bypassing a transaction-mode pooler;"
            " empty: REALTIME_DATABASE_URL"),
)


def _parse(setting: Setting, raw: str) -> Any:
    if setting.type is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if setting.type is Path:
        return Path(raw)
    return setting.type(raw)


@dataclass(frozen=True)
class Settings:
    """Every setting of one server, frozen after start-up."""

    database_url: str = ""
    data_dir: Path = Path(".realtime")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_url: str = ""
    allowed_origins: str = ""
    forwarded_allow_ips: str = ""
    default_moderation: str = "post"
    max_depth: int = 6
    edit_window_s: int = 900
    max_links: int = 2
    hold_words: str = ""
    block_words: str = ""
    trusted_authors: bool = True
    flood_min_interval_s: int = 0
    flood_max_per_10_min: int = 0
    retention_days: int = 7
    ip_retention_days: int = 30
    replay_limit: int = 1000
    max_subscriptions: int = 50
    max_connections_per_ip: int = 256
    queue_size: int = 256
    ws_ping_interval: float = 20.0
    session_days: int = 14
    pool_size: int = 10
    db_timeout_s: float = 4.0
    log_level: str = "info"
    auto_create: bool = True
    login_max_failures: int = 10
    login_max_failures_per_ip: int = 50
    metrics_token: str = ""
    render_workers: int = 2
    render_cpu_limit_s: float = 0.5
    direct_database_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `REALTIME_*` variables; explicit overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.env in env:
                try:
                    values[setting.name] = _parse(setting, env[setting.env])
                except ValueError:
                    raise ValueError(f"{setting.env}={env[setting.env]!r} is not a valid"
                                     f" {setting.type.__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if self.default_moderation not in ("post", "pre"):
            raise ValueError("REALTIME_DEFAULT_MODERATION must be post or pre")
        for entry in self.forwarded_allow_ips.split(","):
            if entry.strip() not in ("", "*"):
                try:
                    ipaddress.ip_network(entry.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"REALTIME_FORWARDED_ALLOW_IPS: {entry.strip()!r} is no"
                                     " address or network") from None
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ValueError("REALTIME_LOG_LEVEL must be debug, info, warning or error")
        if min(self.workers, self.max_depth, self.queue_size, self.render_workers) < 1:
            raise ValueError("REALTIME_WORKERS, REALTIME_MAX_DEPTH, REALTIME_QUEUE_SIZE and"
                             " REALTIME_RENDER_WORKERS must be at least 1")
        if min(self.login_max_failures, self.login_max_failures_per_ip) < 1:
            raise ValueError("REALTIME_LOGIN_MAX_FAILURES and REALTIME_LOGIN_MAX_FAILURES_PER_IP"
                             " must be at least 1")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def direct_url(self) -> str:
        """Where LISTEN and the migrations connect: they need a session of their own, which a
        pooler in transaction mode (PgBouncer) does not give."""
        return self.direct_database_url or self.database_url

    @property
    def extra_origins(self) -> frozenset[str]:
        origins = (o.strip().rstrip("/") for o in self.allowed_origins.split(","))
        return frozenset(o for o in origins if o)


def settings_markdown() -> str:
    """The settings table for the README."""
    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for s in SETTINGS:
        default = "" if s.default == "" else str(s.default)
        rows.append(f"| `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(rows)
