"""Pure moderation rules: from a new comment, the shared policy and what the database knows
about its author, to the status it is stored with (or the refusal)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .config import Settings
from .errors import Banned, RateLimited
from .models import REMOVED, Verdict

ACTIONS = {"approve": "approved", "reject": "rejected", "spam": "spam", "delete": "deleted",
           "restore": "approved"}
FLOOD_WINDOW_S = 600


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
                values[name] = tuple(w.strip().lower() for w in values[name] if w.strip())
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


def _words(raw: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in raw.split(",") if w.strip())


def _mentioned(body: str, words: tuple[str, ...]) -> list[str]:
    """The words of the list that the body holds as whole words, in any case."""
    text = body.lower()
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


def action_status(action: str, current: str) -> str:
    """The status a moderator action leaves; `restore` only undoes a removal."""
    if action == "restore" and current not in REMOVED:
        return current
    return ACTIONS[action]
