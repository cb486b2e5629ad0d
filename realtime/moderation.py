"""Pure moderation rules: from a new comment, the shared policy and what the database knows
about its author, to the status it is stored with (or the refusal)."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .config import Settings
from .errors import Banned, RateLimited
from .models import REMOVED, Draft, MatchKeys, Verdict

ACTIONS = {"approve": "approved", "reject": "rejected", "spam": "spam", "delete": "deleted",
           "restore": "approved"}
FLOOD_WINDOW_S = 600
# Unicode's default-ignorable characters that are not format characters (Cf): combining grapheme
# joiner, Hangul fillers, Khmer inherent vowels, variation selectors. Like the format characters
# (zero-width spaces and joiners, bidi controls, soft hyphen) they show as nothing.
_IGNORABLE = [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0,
              *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]


def _invisible() -> dict[int, None]:
    # Format characters live in planes 0, 1 and 14 (tags).
    planes = (range(0x20000), range(0xE0000, 0xE1000))
    found: dict[int, None] = {cp: None for plane in planes for cp in plane
                              if unicodedata.category(chr(cp)) == "Cf"}
    found.update(dict.fromkeys(_IGNORABLE))
    return found


# Built at import (some 20 ms), not by the first comment on the event loop.
INVISIBLE = _invisible()


def canonical(text: str) -> str:
    """Text as rules compare it: compatibility forms folded (NFKC: fullwidth letters,
    ligatures) and invisible characters removed, so `al\u200bice` is `alice`."""
    return unicodedata.normalize("NFKC", text).translate(INVISIBLE)


def folded(text: str) -> str:
    """`canonical` text, case folded: how names, e-mails and words are matched."""
    return canonical(text).casefold()


def match_keys(draft: Draft) -> MatchKeys:
    """The forms a new comment is matched in, for duplicates and bans."""
    return MatchKeys(body=hashlib.sha256(canonical(draft.body).encode()).digest(),
                     name=folded(draft.author_name).strip(),
                     email=folded(draft.author_email) if draft.author_email else None)


def ban_value(kind: str, value: str) -> str:
    """A ban's value as stored and matched: a network for `ip` (an address alone is itself,
    an IPv6 address its /64, where one user's addresses usually live), else folded text.
    ValueError when an `ip` value is no address or network."""
    if kind != "ip":
        return folded(value).strip()
    network = ipaddress.ip_network(value.strip(), strict=False)
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        elif "/" not in value:
            network = network.supernet(new_prefix=64)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


@dataclass(frozen=True)
class Flood:
    """Per client IP and per e-mail; 0 turns a limit off."""

    min_interval_s: int = 0
    max_per_10_min: int = 0


@dataclass(frozen=True)
class Policy:
    """The moderation settings all nodes share, applied to the next comment."""

    default_moderation: str
    hold_words: tuple[str, ...]
    block_words: tuple[str, ...]
    max_links: int
    trusted_authors: bool
    edit_window_s: int
    flood: Flood

    @classmethod
    def defaults(cls, settings: Settings) -> Policy:
        """The policy of a fresh database, from the REALTIME_* settings."""
        return cls(default_moderation=settings.default_moderation,
                   hold_words=_words(settings.hold_words), block_words=_words(settings.block_words),
                   max_links=settings.max_links, trusted_authors=settings.trusted_authors,
                   edit_window_s=settings.edit_window_s,
                   flood=Flood(settings.flood_min_interval_s, settings.flood_max_per_10_min))

    def merged(self, changes: dict[str, Any]) -> Policy:
        """This policy with the fields of a (validated) stored or sent object replacing its own."""
        # Unknown names (a policy saved by a newer version) are ignored, not fatal.
        known = {f.name for f in fields(self)} - {"flood"}
        values: dict[str, Any] = {k: v for k, v in changes.items() if k in known}
        for name in ("hold_words", "block_words"):
            if name in values:
                values[name] = _words(values[name])
        flood_known = {f.name for f in fields(Flood)}
        flood = replace(self.flood, **{k: v for k, v in changes.get("flood", {}).items()
                                       if k in flood_known})
        return replace(self, **values, flood=flood)

    def public(self) -> dict[str, Any]:
        """The policy as the API shows it."""
        data = asdict(self)
        data["hold_words"] = list(self.hold_words)
        data["block_words"] = list(self.block_words)
        return data


@dataclass(frozen=True)
class Author:
    """What the database knows about a comment's author when it arrives."""

    trusted: bool = False
    ban: str | None = None
    last_age_s: float | None = None
    recent: int = 0
    oldest_recent_age_s: float | None = None


def _words(words: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A word list (comma-separated text or a list) in the form bodies are matched in."""
    found = words.split(",") if isinstance(words, str) else words
    return tuple(dict.fromkeys(f for f in (folded(w).strip() for w in found) if f))


def _mentioned(body: str, words: tuple[str, ...]) -> list[str]:
    """The words of the list that the body holds as whole words, in any case and whatever
    invisible or compatibility characters it hides them behind."""
    text = folded(body)
    return [word for word in words if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text)]


def check_author(policy: Policy, author: Author) -> None:
    """Refuse a banned author (403) or one posting too fast (429 with Retry-After)."""
    if author.ban == "ban":
        raise Banned("you may not comment here")
    flood = policy.flood
    if flood.min_interval_s > 0 and author.last_age_s is not None \
            and author.last_age_s < flood.min_interval_s:
        wait = math.ceil(flood.min_interval_s - author.last_age_s)
        raise RateLimited(f"wait {wait} s before commenting again", retry_after=wait)
    if flood.max_per_10_min > 0 and author.recent >= flood.max_per_10_min:
        oldest = author.oldest_recent_age_s or 0.0
        wait = max(1, math.ceil(FLOOD_WINDOW_S - oldest))
        raise RateLimited(f"at most {flood.max_per_10_min} comments in 10 minutes",
                          retry_after=wait)


def verdict(body: str, links: int, thread_moderation: str, policy: Policy,
            author: Author) -> Verdict:
    """The status a new comment is stored with (approved, pending or spam) and every rule
    that decided it."""
    reasons: list[dict[str, Any]] = []
    if author.ban == "shadow":
        reasons.append({"rule": "shadow_ban"})
    reasons += [{"rule": "block_word", "word": w} for w in _mentioned(body, policy.block_words)]
    spam = bool(reasons)
    reasons += [{"rule": "hold_word", "word": w} for w in _mentioned(body, policy.hold_words)]
    if policy.max_links >= 0 and links > policy.max_links:
        reasons.append({"rule": "links", "count": links, "limit": policy.max_links})
    if thread_moderation == "pre" and not (policy.trusted_authors and author.trusted):
        reasons.append({"rule": "pre_moderation"})
    status = "spam" if spam else "pending" if reasons else "approved"
    return Verdict(status, tuple(reasons), shadow=author.ban == "shadow",
                   edit_window_s=policy.edit_window_s)


STRICTNESS = {"approved": 0, "pending": 1, "spam": 2}


def edited_status(current: str, judged: str) -> str:
    """The status after an author's edit judged `judged`: the stricter of the two, so an edit
    can send a comment to the queue or to spam but never out of them; rejected and deleted
    comments (a moderator's or the author's decision) stay as they are."""
    if current not in STRICTNESS:
        return current
    return max(current, judged, key=STRICTNESS.__getitem__)


def action_status(action: str, current: str) -> str:
    """The status a moderator action leaves; `restore` only undoes a removal."""
    if action == "restore" and current not in REMOVED:
        return current
    return ACTIONS[action]
