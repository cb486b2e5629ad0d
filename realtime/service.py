"""The use cases, written once for HTTP and WebSocket: post, edit, delete, moderate, read."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from . import auth, moderation, render
from .config import Settings
from .errors import (
    DuplicateComment,
    Forbidden,
    NotFound,
    ThreadClosed,
    Unauthorized,
    ValidationFailed,
)
from .logins import WINDOW, Hashing, Logins
from .models import Audit, Comment, Draft, EventPage, Moderator, Post, Verdict, iso
from .renderer import Renderer
from .schemas import readable_policy
from .store import Store, ThreadPage

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(minutes=10)
THREADS_PER_IP_HOUR = 10
# Nodes read a moderation change back moments after its NOTIFY; nothing needs it later.
MODERATION_CHANGES_KEPT = timedelta(minutes=10)


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
    """Who asks for a change: a moderator, or whoever holds an edit token; from `ip`."""

    moderator: Moderator | None = None
    edit_token: str | None = None
    ip: str | None = None


class Service(Logins):
    """What the server does, independent of how the request arrived."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.hashing = Hashing()
        self.renderer = Renderer(settings.render_workers, settings.render_cpu_limit_s)
        self._unreadable: str | None = None
        self._avatar_key: bytes | None = None

    async def start(self) -> None:
        """Load what every node shares and the service needs before it serves: the site's
        avatar key (created, and every stored avatar recomputed with it, on first start)."""
        key = await self.store.avatar_key(
            secrets.token_hex(32),
            lambda key, email, name: render.avatar_hash(bytes.fromhex(key), email, name))
        self._avatar_key = bytes.fromhex(key)

    def avatar(self, email: str | None, name: str) -> str:
        """An author's avatar hash, keyed with the site's avatar key."""
        if self._avatar_key is None:
            raise RuntimeError("Service.start() was not awaited")
        return render.avatar_hash(self._avatar_key, email, name)

    async def close(self) -> None:
        """Let go of what the service started (its render workers)."""
        await self.renderer.close()

    async def create_comment(self, slug: str, draft: Draft, *,
                             check_author: bool = True) -> Created:
        """Post a comment: idempotent by client_id, judged by the shared moderation policy.

        A body the event loop cannot render at once is first checked against everything
        cheap that could refuse it (the post, a retry, bans, flood limits, the client's render
        budget, a duplicate), so a refused comment never costs a render.
        `check_author=False` skips bans and flood limits, for the operator's own content
        (the demo thread), which no reader sent.
        """
        keys = moderation.match_keys(draft)
        flood = (self.settings.flood_max_per_10_min, self.settings.flood_min_interval_s)
        if not render.renders_inline(draft.body):
            self.renderer.check(draft.ip)
            post, early = await self.store.admission(slug, draft, keys, flood_defaults=flood,
                                                     duplicate_window=DUPLICATE_WINDOW)
            if early.retry is not None:
                return Created(early.retry, None, None, created=False)
            if not post.open:
                raise ThreadClosed(f"comments on {slug!r} are closed")
            if check_author:
                moderation.check_author(self._policy(early.facts["policy"]),
                                        self._author(early.facts))
            if early.duplicate:
                raise DuplicateComment("the same comment was posted here a moment ago")
        html, links = await self.renderer.render(draft.body, draft.ip)

        def judge(post: Post, facts: dict[str, Any]) -> Verdict:
            policy = self._policy(facts["policy"])
            author = self._author(facts)
            if check_author:
                moderation.check_author(policy, author)
            return moderation.verdict(draft.body, links, post.moderation, policy, author)

        token = auth.new_token()
        written = await self.store.insert_comment(
            slug, draft, keys, judge=judge, html=html, flood_defaults=flood,
            avatar=self.avatar(draft.author_email, draft.author_name), edit_token=token,
            max_depth=self.settings.max_depth, duplicate_window=DUPLICATE_WINDOW)
        if written.verdict is None:
            return Created(written.comment, None, None, created=False)
        return Created(written.comment, written.seq, token, created=True,
                       edit_window_s=written.verdict.edit_window_s)

    def check_render_budget(self, ip: str | None) -> None:
        """Refuse (429) a client whose bodies used up its render budget, before its next
        request is read."""
        self.renderer.check(ip)

    @staticmethod
    def _author(facts: dict[str, Any]) -> moderation.Author:
        ban = None if facts["shadow"] is None else ("shadow" if facts["shadow"] else "ban")
        # Both counts are capped at the limit; the source at the cap that waits longest
        # (its oldest counted comment is youngest) decides Retry-After.
        recent = max(facts["recent_ip"], facts["recent_email"])
        ages = [age for count, age in ((facts["recent_ip"], facts["oldest_ip"]),
                                       (facts["recent_email"], facts["oldest_email"]))
                if count == recent and age is not None]
        return moderation.Author(trusted=facts["trusted"], ban=ban,
                                 last_age_s=facts["last_age"], recent=recent,
                                 oldest_recent_age_s=min(ages) if ages else None)

    async def policy(self) -> moderation.Policy:
        """The moderation policy in force: the stored one, else the REALTIME_* defaults."""
        return self._policy(await self.store.policy())

    async def put_policy(self, changes: dict[str, Any], moderator: Moderator) -> moderation.Policy:
        """Replace the fields given; every node applies the result to its next comment."""
        policy = (await self.policy()).merged(changes)
        await self.store.put_policy(policy.public(), Audit(moderator.username, "settings",
                                                           detail={"changes": changes}))
        return policy

    async def ban(self, kind: str, value: str | None, comment_id: int | None, *, shadow: bool,
                  reason: str | None, expires_at: str | None,
                  moderator: Moderator) -> dict[str, Any]:
        """Ban by IP, e-mail or name: a value given, or taken from a comment's author."""
        comment = None
        if comment_id is not None:
            comment = await self.store.get_comment(comment_id)
            value = {"ip": comment.ip, "email": comment.author_email,
                     "name": comment.author_name}[kind]
            if value is None:
                raise ValidationFailed.field("comment_id", f"that comment has no {kind}")
        if value is None:
            raise ValidationFailed.field("value", "give either value or comment_id")
        try:
            match = moderation.ban_value(kind, value)
        except ValueError:
            raise ValidationFailed.field(
                "value", "must be an IP address or a network (CIDR)") from None
        if not match:
            raise ValidationFailed.field("value", "must not be empty")
        # Shown as the moderator wrote it (an e-mail in lower case; an IP ban as the network
        # it covers); matched by its folded form.
        value = {"ip": match, "email": value.strip().lower()}.get(kind, value.strip())
        expires = datetime.fromisoformat(expires_at) if expires_at else None
        return await self.store.add_ban(kind, value, match=match, shadow=shadow, reason=reason,
                                        expires_at=expires, created_by=moderator.username,
                                        audit=Audit(moderator.username, "ban", reason),
                                        comment=comment)

    async def lift_ban(self, ban_id: int, moderator: Moderator) -> None:
        """Remove a ban."""
        await self.store.delete_ban(ban_id, Audit(moderator.username, "unban"))

    def _policy(self, stored: str | None) -> moderation.Policy:
        """The stored policy over the defaults; a stored field that cannot be read (written
        by hand, or by a broken version) keeps its default and is logged, once per change,
        rather than failing every comment."""
        base = moderation.Policy.defaults(self.settings)
        if stored is None:
            return base
        try:
            fields, broken = readable_policy(orjson.loads(stored))
        except orjson.JSONDecodeError:
            fields, broken = {}, ["policy"]
        if broken and stored != self._unreadable:
            log.error("the stored moderation policy has fields that cannot be read, their"
                      " defaults apply until a moderator saves the policy: %s",
                      ", ".join(broken))
        self._unreadable = stored if broken else None
        return base.merged(fields)

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

    async def preview(self, body: str, ip: str | None) -> tuple[str, int]:
        """A body rendered as it would be posted, and how many links the link limit counts;
        rendered like a posted body (off the event loop, within the client's budget)."""
        return await self.renderer.render(body, ip)

    async def event_page(self, slug: str, since: int | None, limit: int) -> EventPage | None:
        """A page of a post's public events after `since` and its seq; None when pruned."""
        return await self.store.event_page(slug, since, limit)

    async def moderation_changes(self, keys: list[tuple[int, int]]) -> list[tuple[str, bytes]]:
        """The moderator view of the comment changes with these (id, version) keys."""
        return await self.store.moderation_changes(keys)

    async def live_sessions(self, tokens: set[str]) -> set[str]:
        """Those of `tokens` whose sessions have not ended (logged out, expired, removed)."""
        return await self.store.live_sessions(tokens) if tokens else set()

    async def queue(self, status: str, post: str | None, after: int | None,
                    limit: int) -> tuple[list[Comment], int | None]:
        """Comments of one filter (a status, `reported` or `all`) over every post or one,
        oldest first."""
        return await self.store.moderator_comments(status, await self._post_id(post),
                                                   after=after, limit=limit, newest_first=False)

    async def feed(self, status: str, post: str | None, before: int | None, limit: int,
                   ids: list[int] | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """The console's feed: comments of one filter, newest first, each in the moderator
        view with its `context`."""
        comments, cursor = await self.store.moderator_comments(
            status, await self._post_id(post), before=before, ids=ids, limit=limit,
            newest_first=True)
        contexts = await self.store.contexts(comments)
        return [{**c.private(), "context": contexts[c.id]} for c in comments], cursor

    async def counts(self, post: str | None) -> dict[str, int]:
        """How many comments each filter of the feed holds, over every post or one."""
        return await self.store.status_counts(await self._post_id(post))

    async def _post_id(self, slug: str | None) -> int | None:
        return None if slug is None else (await self.store.get_post(slug)).id

    async def audit_log(self, after: int | None, limit: int, *, moderator: str | None = None,
                        action: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Moderator actions, newest first, optionally of one moderator and one action."""
        return await self.store.audit_log(after, limit, moderator=moderator, action=action)

    async def audit_moderators(self) -> list[str]:
        """The moderators named in the audit log."""
        return await self.store.audit_moderators()

    async def list_bans(self) -> list[dict[str, Any]]:
        """Every ban, newest first."""
        return await self.store.list_bans()

    async def prune(self) -> None:
        """Forget what the retention settings let go: events past REALTIME_RETENTION_DAYS,
        moderation changes past MODERATION_CHANGES_KEPT, thread creations and failed logins
        past their windows, and addresses and user agents past REALTIME_IP_RETENTION_DAYS."""
        await self.store.prune_events(timedelta(days=self.settings.retention_days),
                                      MODERATION_CHANGES_KEPT)
        await self.store.prune_thread_creations()
        await self.store.prune_login_failures(WINDOW)
        await self.store.forget_addresses(timedelta(days=self.settings.ip_retention_days))

    async def ping(self, timeout: float) -> None:
        """Raise when the database cannot answer within `timeout` seconds."""
        await self.store.ping(timeout)

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
        the answer is the comment as that actor may see it.

        An author's edit is judged like a new comment (bans, block and hold words, the link
        limit, pre-moderation) and may send the comment back to the queue or to spam, never
        out of them: a comment approved for one text does not stay approved for another.
        """
        own = await self._authorize(comment_id, actor)
        html, links = await self.renderer.render(body, actor.ip)
        verdict = None if own is None else await self._judge_edit(own, body, links)

        def change(current: Comment) -> dict[str, Any] | None:
            if current.status == "deleted" and actor.moderator is None:
                raise NotFound(f"no comment {comment_id}")
            if current.body == body:
                return None
            columns: dict[str, Any] = {"body": body, "html": html,
                                       "edited_at": datetime.now(UTC)}
            if verdict is not None:
                status = moderation.edited_status(current.status, verdict.status)
                if status != current.status:
                    columns.update(status=status,
                                   reasons=orjson.dumps(verdict.reasons).decode())
            return columns

        written = await self.store.change_comment(comment_id, change,
                                                  audit=self._audit(actor, "edit"))
        if actor.moderator is not None:
            return written.comment.private()
        return written.comment.for_author()

    async def _judge_edit(self, comment: Comment, body: str, links: int) -> Verdict:
        """The verdict a new comment with this body by this author would get (flood limits
        aside: an edit adds no comment); 403 when the author is banned."""
        facts = await self.store.author_standing(
            comment, name=moderation.folded(comment.author_name).strip(),
            email=moderation.folded(comment.author_email) if comment.author_email else None)
        policy = self._policy(facts["policy"])
        ban = None if facts["shadow"] is None else ("shadow" if facts["shadow"] else "ban")
        author = moderation.Author(trusted=facts["trusted"], ban=ban)
        moderation.check_author(policy, author)
        return moderation.verdict(body, links, facts["moderation"], policy, author)

    async def delete_comment(self, comment_id: int, actor: Actor) -> None:
        """Remove a comment from public view; a tombstone stays while it has replies."""
        await self._authorize(comment_id, actor)
        await self.store.change_comment(
            comment_id, lambda c: None if c.status == "deleted" else {"status": "deleted"},
            audit=self._audit(actor, "delete"))

    async def moderate(self, comment_id: int, action: str, moderator: Moderator,
                       version: int | None, reason: str | None) -> Comment:
        """approve, reject, spam, delete or restore; a stale `version` is a conflict.

        Approving (or restoring) a reported comment dismisses its reports: a moderator has
        looked and kept it.
        """

        def change(current: Comment) -> dict[str, Any] | None:
            status = moderation.action_status(action, current.status)
            columns: dict[str, Any] = {}
            if status != current.status:
                columns["status"] = status
            if status == "approved" and current.report_count:
                columns["report_count"] = 0
            return columns or None

        written = await self.store.change_comment(
            comment_id, change, expected_version=version,
            audit=Audit(moderator.username, action, reason))
        return written.comment

    async def put_post(self, slug: str, fields: dict[str, Any],
                       moderator: Moderator | None = None) -> tuple[Post, bool]:
        """Create or update a post; new posts take the default moderation. A moderator's
        change is audited (the operator's, from the command line, is not)."""
        fields = {k: v for k, v in fields.items() if v is not None}
        default = (await self.policy()).default_moderation
        audit = None if moderator is None else Audit(moderator.username, "post",
                                                     detail={"changes": fields})
        return await self.store.put_post(slug, fields, default_moderation=default, audit=audit)

    @staticmethod
    def _audit(actor: Actor, action: str) -> Audit | None:
        return None if actor.moderator is None else Audit(actor.moderator.username, action)

    async def _authorize(self, comment_id: int, actor: Actor) -> Comment | None:
        """Allow a moderator, or the holder of the comment's edit token within its edit
        window; for the latter, the comment."""
        if actor.moderator is not None:
            return None
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
        return comment
