"""The use cases, written once for HTTP and WebSocket: post, edit, delete, moderate, read."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from . import auth, moderation, render
from .config import Settings
from .errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from .models import Comment, Draft, Event, Moderator, Post, Verdict, iso
from .store import Store, ThreadPage

DUPLICATE_WINDOW = timedelta(minutes=10)
THREADS_PER_IP_HOUR = 10
# Previews render off the event loop, a few at a time: each may cost a full render.
PREVIEWS_AT_ONCE = 2


@dataclass(frozen=True)
class Created:
    """A posted comment: `created` is False for an idempotent retry."""

    comment: Comment
    seq: int | None
    edit_token: str | None
    created: bool
    edit_window_s: int = 0

    def answer(self) -> dict[str, Any]:
        """What the poster is told: the first answer, or the same comment again for a retry."""
        shown = self.comment.for_author()
        if not self.created:
            return {"comment": shown}
        until = self.comment.created_at + timedelta(seconds=self.edit_window_s)
        return {"comment": shown, "edit_token": self.edit_token, "edit_until": iso(until),
                "seq": self.seq}


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: a moderator, or whoever holds an edit token."""

    moderator: Moderator | None = None
    edit_token: str | None = None


class Service:
    """What the server does, independent of how the request arrived."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._previews = asyncio.Semaphore(PREVIEWS_AT_ONCE)

    async def create_comment(self, slug: str, draft: Draft, *,
                             check_author: bool = True) -> Created:
        """Post a comment: idempotent by client_id, judged by the shared moderation policy.

        `check_author=False` skips bans and flood limits, for the operator's own content
        (the demo thread), which no reader sent.
        """
        html = render.render_markdown(draft.body)
        links = render.count_links(draft.body)

        def judge(post: Post, facts: dict[str, Any]) -> Verdict:
            policy = self._policy(facts["policy"])
            ban = None if facts["shadow"] is None else ("shadow" if facts["shadow"] else "ban")
            # Both counts are capped at the limit; the source at the cap that waits longest
            # (its oldest counted comment is youngest) decides Retry-After.
            recent = max(facts["recent_ip"], facts["recent_email"])
            ages = [age for count, age in ((facts["recent_ip"], facts["oldest_ip"]),
                                           (facts["recent_email"], facts["oldest_email"]))
                    if count == recent and age is not None]
            author = moderation.Author(trusted=facts["trusted"], ban=ban,
                                       last_age_s=facts["last_age"], recent=recent,
                                       oldest_recent_age_s=min(ages) if ages else None)
            if check_author:
                moderation.check_author(policy, author)
            return moderation.verdict(draft.body, links, post.moderation, policy, author)

        token = auth.new_token()
        written = await self.store.insert_comment(
            slug, draft, judge=judge, html=html,
            flood_defaults=(self.settings.flood_max_per_10_min,
                            self.settings.flood_min_interval_s),
            avatar=render.avatar_hash(draft.author_email, draft.author_name), edit_token=token,
            max_depth=self.settings.max_depth, duplicate_window=DUPLICATE_WINDOW)
        if written.verdict is None:
            return Created(written.comment, None, None, created=False)
        return Created(written.comment, written.seq, token, created=True,
                       edit_window_s=written.verdict.edit_window_s)

    async def policy(self) -> moderation.Policy:
        """The moderation policy in force: the stored one, else the REALTIME_* defaults."""
        return self._policy(await self.store.policy())

    async def put_policy(self, changes: dict[str, Any], moderator: Moderator) -> moderation.Policy:
        """Replace the fields given; every node applies the result to its next comment."""
        policy = (await self.policy()).merged(changes)
        await self.store.put_policy(policy.public())
        await self.store.audit(moderator, "settings", None, None)
        return policy

    async def ban(self, kind: str, value: str | None, comment_id: int | None, *, shadow: bool,
                  reason: str | None, expires_at: str | None,
                  moderator: Moderator) -> dict[str, Any]:
        """Ban by IP, e-mail or name: a value given, or taken from a comment's author."""
        if comment_id is not None:
            comment = await self.store.get_comment(comment_id)
            value = {"ip": comment.ip, "email": comment.author_email,
                     "name": comment.author_name}[kind]
            if value is None:
                raise ValidationFailed.field("comment_id", f"that comment has no {kind}")
        if value is None:
            raise ValidationFailed.field("value", "give either value or comment_id")
        if kind == "ip":
            try:
                value = str(ipaddress.ip_address(value))
            except ValueError:
                raise ValidationFailed.field("value", "must be an IP address") from None
        elif kind == "email":
            value = value.lower()
        expires = datetime.fromisoformat(expires_at) if expires_at else None
        ban = await self.store.add_ban(kind, value, shadow=shadow, reason=reason,
                                       expires_at=expires, created_by=moderator.username)
        await self.store.audit(moderator, "ban", None, reason)
        return ban

    async def lift_ban(self, ban_id: int, moderator: Moderator) -> None:
        """Remove a ban."""
        await self.store.delete_ban(ban_id)
        await self.store.audit(moderator, "unban", None, None)

    def _policy(self, stored: str | None) -> moderation.Policy:
        base = moderation.Policy.defaults(self.settings)
        return base if stored is None else base.merged(orjson.loads(stored))

    # reads ------------------------------------------------------------------------------

    async def list_posts(self, limit: int, after: int | None) -> tuple[list[Post], int | None]:
        """Posts, newest first, and the cursor of the next page."""
        return await self.store.list_posts(limit, after)

    async def get_post(self, slug: str) -> Post:
        """One post, or NotFound."""
        return await self.store.get_post(slug)

    async def read_thread(self, slug: str, after: int | None,
                          limit: int) -> tuple[Post, list[Comment], int | None]:
        """A page of the visible thread and the seq to subscribe from."""
        return await self.store.read_thread(slug, after, limit)

    async def thread_page(self, slug: str, *, newest: bool, after: int | None, limit: int,
                          replies: int) -> ThreadPage:
        """A page of top-level comments with their first replies, and the seq to subscribe from."""
        return await self.store.thread_page(slug, newest=newest, after=after, limit=limit,
                                            replies=replies)

    async def replies(self, root_id: int, after: int | None,
                      limit: int) -> tuple[list[Comment], int | None]:
        """More replies under a top-level comment, in id order."""
        return await self.store.replies(root_id, after=after, limit=limit)

    async def context(self, comment_id: int, replies: int) -> ThreadPage:
        """A public comment with its top-level comment and the comments between them."""
        return await self.store.context(comment_id, replies=replies)

    async def comment_counts(self, slugs: list[str]) -> dict[str, int]:
        """The comment count of each of these posts that exists."""
        return await self.store.comment_counts(slugs)

    async def open_post(self, slug: str, title: str, url: str,
                        ip: str | None) -> tuple[Post, bool]:
        """The post a page embeds, created on its first view when auto-creation is on."""
        if not self.settings.auto_create:
            try:
                return await self.store.get_post(slug), False
            except NotFound:
                raise NotFound("comments are not enabled for this page yet") from None
        default = (await self.policy()).default_moderation
        return await self.store.create_post_on_view(slug, title, url, ip=ip, moderation=default,
                                                    per_hour=THREADS_PER_IP_HOUR)

    async def preview(self, body: str) -> tuple[str, int]:
        """A body rendered as it would be posted, and how many links the link limit counts."""
        async with self._previews:
            return await asyncio.to_thread(
                lambda: (render.render_markdown(body), render.count_links(body)))

    async def events_after(self, slug: str, since: int, limit: int) -> list[Event] | None:
        """A post's public events after `since`, or None when some were pruned."""
        return await self.store.events_after(slug, since, limit)

    async def private_comment(self, comment_id: int) -> dict[str, Any] | None:
        """A comment in the moderator view, or None when it is gone."""
        try:
            return (await self.store.get_comment(comment_id)).private()
        except NotFound:
            return None

    async def queue(self, status: str | None, after: int | None,
                    limit: int) -> tuple[list[Comment], int | None]:
        """Comments of one status (None: all) over every post, oldest first."""
        return await self.store.queue(status, after, limit)

    async def audit_log(self, after: int | None,
                        limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Moderator actions, newest first."""
        return await self.store.audit_log(after, limit)

    async def list_bans(self) -> list[dict[str, Any]]:
        """Every ban, newest first."""
        return await self.store.list_bans()

    async def prune(self, older_than: timedelta) -> None:
        """Forget what the retention settings let go: events past their window."""
        await self.store.prune_events(older_than)
        await self.store.prune_thread_creations()

    async def ping(self) -> None:
        """Raise when the database cannot answer."""
        await self.store.ping()

    async def public_comment(self, comment_id: int) -> Comment:
        """A comment anyone may see, or NotFound."""
        comment = await self.store.get_comment(comment_id)
        if not comment.is_public:
            raise NotFound(f"no comment {comment_id}")
        return comment

    async def report(self, comment_id: int, reader: str, reason: str) -> None:
        """A reader flags a visible comment for moderators; a repeat by the same reader counts once.

        `reader` identifies the reader (their address); only its hash is stored.
        """
        comment = await self.store.get_comment(comment_id)
        if comment.status != "approved":
            raise NotFound(f"no comment {comment_id}")
        await self.store.report(comment_id, hashlib.sha256(reader.encode()).digest(), reason)

    async def edit_comment(self, comment_id: int, body: str, actor: Actor) -> dict[str, Any]:
        """Replace a comment's body, as its author within the edit window or as a moderator;
        the answer is the comment as that actor may see it."""
        await self._authorize(comment_id, actor)
        html = render.render_markdown(body)

        def change(current: Comment) -> dict[str, Any] | None:
            if current.status == "deleted" and actor.moderator is None:
                raise NotFound(f"no comment {comment_id}")
            if current.body == body:
                return None
            return {"body": body, "html": html, "edited_at": datetime.now(UTC)}

        written = await self.store.change_comment(comment_id, change)
        if actor.moderator is not None:
            await self.store.audit(actor.moderator, "edit", written.comment, None)
            return written.comment.private()
        return written.comment.for_author()

    async def delete_comment(self, comment_id: int, actor: Actor) -> None:
        """Remove a comment from public view; a tombstone stays while it has replies."""
        await self._authorize(comment_id, actor)
        written = await self.store.change_comment(
            comment_id, lambda c: None if c.status == "deleted" else {"status": "deleted"})
        if actor.moderator is not None:
            await self.store.audit(actor.moderator, "delete", written.comment, None)

    async def moderate(self, comment_id: int, action: str, moderator: Moderator,
                       version: int | None, reason: str | None) -> Comment:
        """approve, reject, spam, delete or restore; a stale `version` is a conflict."""

        def change(current: Comment) -> dict[str, Any] | None:
            status = moderation.action_status(action, current.status)
            return None if status == current.status else {"status": status}

        written = await self.store.change_comment(comment_id, change, expected_version=version)
        if written.changed:
            await self.store.audit(moderator, action, written.comment, reason)
        return written.comment

    async def put_post(self, slug: str, fields: dict[str, Any]) -> tuple[Post, bool]:
        """Create or update a post; new posts take the default moderation."""
        fields = {k: v for k, v in fields.items() if v is not None}
        default = (await self.policy()).default_moderation
        return await self.store.put_post(slug, fields, default_moderation=default)

    async def login(self, username: str, password: str) -> tuple[Moderator, str]:
        """Check a moderator's password and open a session; returns the session token."""
        found = await self.store.moderator_password(username)
        if not auth.check_password(found[1] if found else None, password) or found is None:
            raise Unauthorized("wrong username or password")
        moderator, password_hash = found
        if auth.needs_rehash(password_hash):
            await self.store.set_password_hash(moderator, auth.hash_password(password))
        token = auth.new_token()
        expires = datetime.now(UTC) + timedelta(days=self.settings.session_days)
        await self.store.create_session(moderator, token, expires)
        return moderator, token

    async def session_moderator(self, token: str) -> Moderator | None:
        """The moderator a live session token belongs to."""
        return await self.store.session_moderator(token)

    async def logout(self, token: str) -> None:
        """End a session."""
        await self.store.delete_session(token)

    async def create_moderator(self, username: str, password: str) -> Moderator:
        """Add a moderator (or reset the password of one)."""
        if not username.strip() or len(username) > 100:
            raise ValidationFailed.field("username", "must be 1..100 characters")
        if len(password) < 8:
            raise ValidationFailed.field("password", "must be at least 8 characters")
        return await self.store.create_moderator(username.strip(), auth.hash_password(password))

    async def _authorize(self, comment_id: int, actor: Actor) -> None:
        if actor.moderator is not None:
            return
        if actor.edit_token is None:
            raise Unauthorized("an edit token or a moderator session is required")
        if not await self.store.edit_token_matches(comment_id, actor.edit_token):
            comment = await self.store.get_comment(comment_id)
            if not comment.is_public:
                raise NotFound(f"no comment {comment_id}")
            raise Forbidden("this edit token does not belong to that comment")
        comment = await self.store.get_comment(comment_id)
        window = timedelta(seconds=(await self.policy()).edit_window_s)
        if datetime.now(UTC) - comment.created_at > window:
            raise Forbidden("the edit window of this comment has closed")
