"""Moderator logins and sessions: passwords checked off the event loop, failed logins
throttled in PostgreSQL.

An argon2 check costs tens of milliseconds of CPU. On the event loop it would stall
every live socket of the process for that long, so it runs on a small pool of threads at the
lowest CPU priority (SCHED_IDLE on Linux; argon2 releases the GIL): the loop takes the CPU
whenever it needs it, and logins get what is left. At most `MAX_WAITING` checks wait at once;
more answer 503 at once rather than queueing without bound.

Failed logins are counted per address and per account at that address (never per account
alone: that would let anyone lock a moderator out from anywhere), in the database, so the limit
holds however many nodes answer. Each attempt is counted as failed before its password is
checked and forgotten when it turns out right, so attempts sent at once cannot slip under the
limit together. An unknown username costs the same hash and the same queries as a wrong
password, and gets the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from . import auth
from .config import Settings
from .errors import RateLimited, Unauthorized, Unavailable, ValidationFailed
from .models import Moderator
from .store import Store

WINDOW = timedelta(minutes=15)
MAX_WAITING = 8
# One check at a time: argon2 is memory-hard (19 MiB per check), and two at once would
# double what it takes from the caches the event loop shares.
WORKERS = 1
T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lowest_priority() -> None:
    """This thread runs only on CPU time no one else wants. On Linux a thread has its own
    policy: SCHED_IDLE, whose work any waking thread preempts at once and whose CPU counts as
    free when the kernel places a waking thread; else the lowest nice value."""
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
    except (AttributeError, OSError):
        pass


def _hash_pool() -> ThreadPoolExecutor:
    """One pool per process for every app in it (tests start many)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="argon2",
                                       initializer=_lowest_priority)
        return _pool


def address_key(ip: str | None) -> str:
    """What failed logins are counted by: the IPv4 address, or the /64 of an IPv6 one (one
    home or server is given a whole /64); "" when the transport gave no address."""
    if ip is None:
        return ""
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def account_key(username: str) -> bytes:
    """A hash of the username tried: a password typed into the username field is not kept."""
    return hashlib.sha256(username.casefold().encode()).digest()


class Hashing:
    """argon2 work on the low-priority pool, at most `MAX_WAITING` at once."""

    def __init__(self) -> None:
        self.waiting = 0
        self.checked = 0

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on the pool, or 503 when too many already wait."""
        if self.waiting >= MAX_WAITING:
            raise Unavailable("too many logins at once", retry_after=1)
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(_hash_pool(), work, *args)
        finally:
            self.waiting -= 1

    async def check(self, password_hash: str | None, password: str) -> bool:
        """Whether the password matches the hash (a dummy hash when there is no account)."""
        self.checked += 1
        return await self.run(auth.check_password, password_hash, password)


class Logins:
    """The login and session use cases of the service."""

    store: Store
    settings: Settings
    hashing: Hashing

    async def login(self, username: str, password: str, *, ip: str | None = None,
                    user_agent: str | None = None) -> tuple[Moderator, str]:
        """Check a moderator's password and open a session; returns the session token.

        429 `rate_limited` with Retry-After once the address, or the account at this address,
        has too many failed logins in the last 15 minutes.
        """
        address, account = address_key(ip), account_key(username)
        start = await self.store.begin_login(
            address, account, username, WINDOW, self.settings.login_max_failures,
            self.settings.login_max_failures_per_ip)
        if start.attempt is None:
            raise RateLimited(f"too many failed logins; try again in {start.wait} s",
                              retry_after=start.wait)
        found = start.account
        if not await self.hashing.check(found[1] if found else None, password) or found is None:
            raise Unauthorized("wrong username or password")
        moderator, password_hash = found
        if auth.needs_rehash(password_hash):
            await self.store.set_password_hash(
                moderator, await self.hashing.run(auth.hash_password, password))
        token = auth.new_token()
        expires = datetime.now(UTC) + timedelta(days=self.settings.session_days)
        await self.store.create_session(moderator, token, expires, ip=ip, user_agent=user_agent,
                                        login=(start.attempt, address, account))
        return moderator, token

    async def session_moderator(self, token: str) -> Moderator | None:
        """The moderator a live session token belongs to."""
        return await self.store.session_moderator(token)

    async def logout(self, token: str) -> None:
        """End a session."""
        await self.store.delete_session(token)

    async def sessions(self, moderator: Moderator, token: str) -> list[dict[str, Any]]:
        """The moderator's live sessions, the one of `token` marked `current`."""
        return await self.store.sessions(moderator, token)

    async def end_session(self, moderator: Moderator, session_id: int) -> None:
        """End one of the moderator's sessions (its sockets close on every node)."""
        await self.store.end_session(moderator, session_id)

    async def end_all_sessions(self, moderator: Moderator) -> None:
        """Log the moderator out everywhere (their sockets close on every node)."""
        await self.store.end_all_sessions(moderator)

    async def create_moderator(self, username: str, password: str) -> Moderator:
        """Add a moderator (or reset the password of one)."""
        if not username.strip() or len(username) > 100:
            raise ValidationFailed.field("username", "must be 1..100 characters")
        if len(password) < 8:
            raise ValidationFailed.field("password", "must be at least 8 characters")
        password_hash = await self.hashing.run(auth.hash_password, password)
        return await self.store.create_moderator(username.strip(), password_hash)
