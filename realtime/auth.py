"""Moderator passwords (argon2), session and edit tokens, and origin checks."""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

import nacl.pwhash.argon2id as argon2id
from nacl.exceptions import CryptoError

SESSION_COOKIE = "realtime_session"

# argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane). A guesser is held
# back by the login throttle, not the hash; the hash's cost is what a stolen database costs to
# crack, and what every login costs the server. libsodium (through PyNaCl) computes it with the
# widest vector instructions the processor has, chosen at run time: the same hash in half the
# CPU time of argon2-cffi's portable build (14 against 29 ms on an AVX-512 Xeon).
_PASSES = 2
_MEMORY = 19 * 1024 * 1024
# The PHC string's head for today's parameters; any other head is rehashed at the next login.
_CURRENT = f"$argon2id$v=19$m={_MEMORY // 1024},t={_PASSES},p=1$"


def hash_password(password: str) -> str:
    """An argon2id hash of a password, as a PHC string."""
    return argon2id.str(password.encode(), opslimit=_PASSES, memlimit=_MEMORY).decode()


# Verifying against this when the user does not exist keeps login time the same either way.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; takes as long when there is no account. Any argon2
    hash verifies, whatever its parameters (argon2-cffi's, an older version's)."""
    try:
        matched = argon2id.verify((password_hash or _DUMMY_HASH).encode(), password.encode())
    except (CryptoError, ValueError):
        return False
    return matched and bool(password_hash)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (it is redone at the
    next successful login)."""
    return not password_hash.startswith(_CURRENT)


def new_token() -> str:
    """An unguessable token for a session or an edit right."""
    return secrets.token_urlsafe(32)


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL, or None when it has none (or cannot be parsed: a stray
    `[` reads as a broken IPv6 address)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(origin: str | None, own: str, extra: frozenset[str]) -> bool:
    """Same origin as the server, or one of the configured extra origins."""
    if not origin:
        return False
    found = origin_of(origin)
    return found is not None and (found == own.lower() or found in {o.lower() for o in extra})


def ip_or_none(host: str | None) -> str | None:
    """The client address when it is an IP address (test transports give names); an
    IPv4-mapped IPv6 address (a dual-stack socket's) as the IPv4 address it is."""
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def address_key(ip: str) -> str:
    """The key per-address limits count an address under: itself, or an IPv6 address's /64,
    where one user's addresses usually live."""
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
