"""Pure moderation rules: from a draft and the thread's settings to the status it is stored with."""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = {"approve": "approved", "reject": "rejected", "spam": "spam", "delete": "deleted",
           "restore": "approved"}


@dataclass(frozen=True)
class Rules:
    """The moderation settings one comment is judged by."""

    thread_moderation: str
    max_links: int


def verdict(links: int, rules: Rules) -> str:
    """`approved` or `pending` for a new comment."""
    if rules.thread_moderation == "pre":
        return "pending"
    if rules.max_links >= 0 and links > rules.max_links:
        return "pending"
    return "approved"


def action_status(action: str, current: str) -> str:
    """The status a moderator action leaves; `restore` only undoes a removal."""
    if action == "restore" and current not in {"deleted", "rejected", "spam"}:
        return current
    return ACTIONS[action]
