"""An author's data on request: everything stored under their e-mail, and its erasure.

Erasing turns each of the author's comments into a tombstone through the normal change
path: its text, name, e-mail, website, address, user agent and edit token are cleared and
it is marked deleted, so open pages drop it (or keep a blank tombstone for its replies) live,
like any deletion; the copies kept in the event log for resuming readers are blanked too.
Bans naming the author stay: they are the moderators' record, and lifting them is theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import moderation
from .models import Comment
from .service import Service

ERASED = {"status": "deleted", "body": "", "html": "", "author_name": "",
          "author_email": None, "author_url": None, "avatar": "", "ip": None,
          "user_agent": None, "client_id": None, "edit_token_hash": None}


async def export_author(service: Service, email: str) -> dict[str, Any]:
    """Everything stored under an e-mail: every comment in the moderator view (with its
    post, address and user agent while they are kept) and the bans that name the author."""
    address = email.strip().lower()
    comments = await service.store.author_comments(address)
    names = sorted({moderation.folded(c.author_name).strip() for c in comments})
    return {"email": address, "exported_at": datetime.now(UTC).isoformat(),
            "comments": [c.private() for c in comments],
            "bans": await service.store.author_bans(moderation.folded(address), names)}


async def erase_author(service: Service, email: str) -> list[Comment]:
    """Erase every comment stored under an e-mail; returns them as they are now."""
    erased = []
    for comment in await service.store.author_comments(email.strip().lower()):
        written = await service.store.change_comment(comment.id, lambda current: dict(ERASED))
        erased.append(written.comment)
    if erased:
        await service.store.blank_events(erased)
    return erased
