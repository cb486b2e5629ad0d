// One live thread on the page: loads it page by page, follows the live channel, and keeps
// the drawn tree, the counts and the forms in step with the model (thread.js).

import { canonicalUrl, explain } from "./api.js";
import { anchorOf, fillCard } from "./cards.js";
import { h } from "./dom.js";
import { CommentForm, editForm, reportForm, showError } from "./forms.js";
import { Notices } from "./notices.js";
import { sortChoice } from "./storage.js";
import { APPLIED, RESYNC, Thread, keyOf } from "./thread.js";

export const PAGE = 20;
export const REPLIES = 10;
// Pages after the first: the reader asked for more, so more at once.
const MORE = 100;
const EDIT_WINDOW_MS = 15 * 60 * 1000;
const PERMALINK = /^#comment-(\d+)$/;

function newClientId() {
  // crypto.randomUUID exists only in secure contexts, and embeds may run elsewhere.
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
    .join("-");
}

export class ThreadView {
  /** `shell` is the widget's root inside its shadow root; `host` the page's element. */
  constructor({ host, shell, slug, messages, api, transport, own, auto, sort, firstPage }) {
    Object.assign(this, { host, shell, slug, messages, api, transport, own, auto, firstPage });
    this.channel = `post:${slug}`;
    this.thread = new Thread({ sort });
    this.items = new Map();
    this.parentId = null;
    this.retry = null;
    this.sending = false;
    this.mine = new Set();
    const t = (key, params) => messages.t(key, params);
    this.notices = new Notices(messages);
    this.form = new CommentForm(messages, { onSubmit: (v) => this.submit(v),
      onCancel: () => this.closeReply(true), preview: (body) => this.preview(body) });
    this.count = h("h2", { class: "rt-count" }, t("commentsLabel"));
    this.status = h("span", { class: "rt-status", hidden: true });
    this.watching = h("span", { class: "rt-watching", hidden: true });
    this.sortSelect = h("select", { class: "rt-sort", onchange: (e) => this.resort(e.target.value) },
      h("option", { value: "oldest" }, t("oldest")), h("option", { value: "newest" }, t("newest")));
    this.sortSelect.value = this.thread.sort;
    this.list = h("ol", { class: "rt-comments" });
    this.more = h("button", { type: "button", class: "rt-more", hidden: true,
      onclick: () => this.showMore() }, t("showMore"));
    this.closedNote = h("p", { class: "rt-closed", hidden: true }, t("closed"));
    this.rootSlot = h("div", { class: "rt-root-slot" }, this.form.el);
    this.skip = h("a", { class: "rt-skip", href: `#${this.form.id}`, onclick: (e) => {
      e.preventDefault();
      this.form.el.scrollIntoView({ block: "center" });
      (this.rootSlot.hidden ? this.list : this.form.el.elements.name).focus();
    } }, t("skip"));
    this.section = h("section", { class: "rt-thread", "aria-labelledby": `${this.form.id}-count` },
      h("header", { class: "rt-head" }, this.count, this.status, this.watching,
        h("label", { class: "rt-sort-label" }, h("span", {}, t("sort")), this.sortSelect)),
      this.list, this.more, this.closedNote, this.rootSlot, this.notices.button,
      this.notices.region);
    this.count.id = `${this.form.id}-count`;
    this.list.tabIndex = -1;
    shell.replaceChildren(this.skip, this.section);
  }

  /** Draw the first page, then follow the live channel; true once the thread is shown. */
  async start() {
    const failure = await this.load();
    if (failure) {
      this.fail(failure);
      return false;
    }
    this.render();
    this.transport.subscribe(this.channel, this);
    addEventListener("hashchange", () => this.openPermalink());
    this.openPermalink();
    return true;
  }

  /** The first page (creating the thread on its first view); an error sentence, or null. */
  async load() {
    let answer = await this.readFirstPage();
    if (answer.status === 404 && this.auto) {
      const title = (document.title || "").trim().slice(0, 300) || canonicalUrl();
      const opened = await this.api.openPost(this.slug, title, canonicalUrl());
      answer = opened.status === 201
        ? { ok: true, data: { post: opened.data, seq: opened.data.seq, comments: [], next: null,
          more_replies: {} } }
        : opened.ok ? await this.readFirstPage() : opened;
    }
    if (!answer.ok) {
      if (answer.status === 403) return this.messages.t("originRefused");
      if (answer.status === 404) return this.messages.t("notEnabled");
      return this.messages.t("loadFailed");
    }
    const { post, comments, seq, next, more_replies: moreReplies } = answer.data;
    const applied = this.thread.seq;
    this.thread.load(post, comments, seq, { next, moreReplies });
    for (const comment of this.own.pending(this.slug)) this.thread.upsert(comment);
    // A snapshot older than what the stream already applied must replay from its own seq.
    if (seq < applied) this.transport.resubscribe(this.channel);
    return null;
  }

  readFirstPage() {
    // The first read may have been started before this view, while its catalog loaded.
    const started = this.firstPage;
    this.firstPage = null;
    if (started) return started;
    return this.api.thread(this.slug, { sort: this.thread.sort, limit: PAGE, replies: REPLIES });
  }

  fail(sentence) {
    const retry = h("button", { type: "button", class: "rt-secondary", onclick: async () => {
      this.shell.replaceChildren(this.skip, this.section);
      await this.start();
    } }, this.messages.t("tryAgain"));
    const again = sentence === this.messages.t("loadFailed");
    this.shell.replaceChildren(h("p", { class: "rt-notice", role: "status" }, sentence,
      again ? " " : null, again ? retry : null));
  }

  // Handlers of the live channel (see live.js and sse.js).

  since() {
    return this.thread.seq;
  }

  subscribed(msg) {
    this.showWatching(msg.watching);
  }

  presence(msg) {
    this.showWatching(msg.watching);
  }

  event(msg) {
    const known = msg.data?.id != null && this.thread.get(msg.data.id) != null;
    const result = this.thread.applyEvent(msg);
    if (result === RESYNC) this.transport.resubscribe(this.channel);
    if (result !== APPLIED) return;
    // Opening or closing the thread changes every Reply button, not one comment.
    if (msg.event === "post.updated") for (const item of this.items.values()) item.comment = null;
    this.render({ keepScroll: true });
    if (msg.event === "comment.created" && !known) this.arrived(msg.data);
    if (msg.event === "comment.deleted") this.notices.forget(msg.data.id);
    if (this.thread.countUnsure) this.refreshCount();
  }

  /** Someone else's new comment, drawn if it falls in the part of the thread shown. */
  arrived(comment) {
    if (this.mine.has(comment.client_id)) return;
    const item = this.items.get(keyOf(comment));
    if (item && comment.status === "approved") {
      this.notices.newComment(comment.id, item.li, item.card, comment.author.name);
    }
  }

  async reset() {
    const failure = await this.load();
    if (failure) {
      // The server dropped the subscription with the reset: nothing else will retry for us.
      setTimeout(() => this.reset(), 5000);
      return;
    }
    this.render();
    this.transport.resubscribe(this.channel);
  }

  error(msg) {
    console.warn("realtime:", msg.code, msg.message);
  }

  /** The connection's state: live, reconnecting or offline, over websocket or sse. */
  connection(state, kind) {
    this.host.dataset.realtimeTransport = kind;
    this.host.dataset.realtimeState = state;
    this.status.hidden = false;
    this.status.className = `rt-status rt-status-${state}`;
    this.status.textContent = this.messages.t(`state.${state}`);
    // A count from a connection that is gone would be a guess.
    if (state !== "live") this.watching.hidden = true;
  }

  showWatching(n) {
    if (typeof n !== "number") return;
    this.watching.hidden = this.host.dataset.realtimeState !== "live";
    this.watching.textContent = this.messages.t("watching", { count: n });
  }

  /** The count after an event the model could not count: read it again, once things settle. */
  refreshCount() {
    clearTimeout(this.countTimer);
    this.countTimer = setTimeout(async () => {
      const answer = await this.api.request(`api/posts/${encodeURIComponent(this.slug)}`);
      if (answer.ok && !this.thread.setCount(answer.data.comment_count, answer.data.seq)) {
        this.refreshCount();
      } else if (answer.ok) this.render();
    }, 1000);
  }

  // Paging.

  async showMore() {
    this.more.disabled = true;
    const answer = await this.api.thread(this.slug, { sort: this.thread.sort,
      after: this.thread.next, limit: MORE, replies: REPLIES });
    this.more.disabled = false;
    if (!answer.ok) return;
    this.thread.addPage(answer.data.comments, { next: answer.data.next,
      moreReplies: answer.data.more_replies });
    const firstNew = answer.data.comments.find((c) => c.parent_id == null);
    this.render();
    // Keyboard readers go on reading where the new page begins.
    if (this.shell.getRootNode().activeElement === this.more && firstNew) {
      this.items.get(keyOf(firstNew))?.card.focus();
    }
  }

  async showMoreReplies(rootId, button) {
    button.disabled = true;
    const answer = await this.api.replies(rootId, this.thread.moreReplies.get(rootId)?.after);
    button.disabled = false;
    if (!answer.ok) return;
    this.thread.addReplies(rootId, answer.data.comments, answer.data.next);
    this.render();
  }

  async resort(sort) {
    sortChoice.save(sort);
    this.thread.sort = sort;
    if (!(await this.load())) this.render();
  }

  /** `#comment-ID` opens that comment, reading it with its context when it is not drawn. */
  async openPermalink() {
    const match = PERMALINK.exec(location.hash);
    if (!match) return;
    const id = Number(match[1]);
    if (!this.thread.get(id)) {
      const answer = await this.api.context(id);
      if (!answer.ok || answer.data.post.slug !== this.slug) return;
      this.thread.addPage(answer.data.comments, { moreReplies: answer.data.more_replies });
      this.render();
    }
    const item = this.items.get(`id:${id}`);
    if (!item) return;
    for (const other of this.shell.querySelectorAll(".rt-target")) {
      other.classList.remove("rt-target");
    }
    item.li.classList.add("rt-target");
    item.li.scrollIntoView({ block: "start" });
    item.card.focus({ preventScroll: true });
  }

  // Rendering: one <li> per comment, kept across renders so an open form or the reading
  // position survives live updates; a card is rebuilt only when its comment object changed.

  render({ keepScroll = false } = {}) {
    const anchor = keepScroll ? this.readingAnchor() : null;
    const before = anchor?.getBoundingClientRect().top;
    const tree = this.thread.tree();
    const seen = new Set();
    // Siblings first, then their replies: a reply that was shown at the top level while its
    // parent was unknown moves down only after this level is in order.
    const place = (container, comments) => {
      const items = comments.map((comment) => this.item(comment));
      items.forEach((item, i) => {
        seen.add(item.key);
        const there = container.children[i];
        if (there !== item.li) container.insertBefore(item.li, there ?? null);
      });
      for (const item of items) {
        if (item.comment.id == null) continue;
        place(item.children, tree.get(item.comment.id) ?? []);
        this.replyButton(item);
      }
    };
    place(this.list, tree.get(null));
    for (const [key, item] of this.items) {
      if (seen.has(key)) continue;
      if (item.li.contains(this.form.el)) this.closeReply(false);
      item.li.remove();
      this.items.delete(key);
    }
    // The applied stream position, for anyone debugging a page (and for the tests).
    this.section.dataset.seq = this.thread.seq;
    const n = this.thread.count();
    this.count.textContent = n === 0 ? this.messages.t("noComments")
      : this.messages.t("comments", { count: n });
    this.more.hidden = this.thread.next == null;
    const open = this.thread.post?.open !== false;
    this.closedNote.hidden = open;
    this.rootSlot.hidden = !open;
    if (!open && this.parentId != null) this.closeReply(false);
    if (anchor?.isConnected) {
      // New comments above the one being read must not push it down the screen.
      const moved = anchor.getBoundingClientRect().top - before;
      if (Math.abs(moved) >= 1) scrollBy(0, moved);
    }
    this.notices.update();
  }

  /** The comment at the top of the screen while the reader is inside the thread, if any. */
  readingAnchor() {
    const box = this.list.getBoundingClientRect();
    if (box.top >= 0 || box.bottom <= 0) return null;
    const root = this.shell.getRootNode();
    // The first comment below the screen's top edge (the edge may fall between two).
    for (const y of [1, 24, 48, 96, 160, 240]) {
      const li = root.elementFromPoint(box.left + box.width / 2, y)?.closest?.(".rt-comment");
      if (li) return li.querySelector(":scope > .rt-card");
    }
    return null;
  }

  /** The "Show N more replies" button of a top-level comment, while some are not read. */
  replyButton(item) {
    const more = item.comment.parent_id == null
      ? this.thread.moreReplies.get(item.comment.id) : null;
    if (!more || more.count <= 0) {
      item.moreButton?.remove();
      item.moreButton = null;
      return;
    }
    item.moreButton ??= h("button", { type: "button", class: "rt-more-replies",
      onclick: (e) => this.showMoreReplies(item.comment.id, e.currentTarget) });
    item.moreButton.textContent = this.messages.t("showMoreReplies", { count: more.count });
    if (item.moreButton.parentNode !== item.li) item.li.append(item.moreButton);
  }

  /** Make the next render redraw a comment's card even though its data did not change. */
  forget(id) {
    const item = this.items.get(`id:${id}`);
    if (item) item.comment = null;
  }

  item(comment) {
    const key = keyOf(comment);
    let item = this.items.get(key);
    if (!item) {
      const id = comment.id != null ? anchorOf(comment.id) : null;
      const li = h("li", { class: "rt-comment", id });
      item = { key, li, comment: null, card: h("article", { class: "rt-card", tabindex: "-1" }),
        slot: h("div", { class: "rt-slot" }), children: h("ol", { class: "rt-children" }) };
      li.append(item.card, item.slot, item.children);
      this.items.set(key, item);
    }
    if (item.comment !== comment) {
      item.comment = comment;
      fillCard(item, this.messages, this.actions(comment));
    }
    return item;
  }

  actions(c) {
    const t = (key) => this.messages.t(key);
    const buttons = [];
    if (c.status === "approved" && c.kind === "comment" && this.thread.post?.open !== false) {
      buttons.push(["rt-reply", t("reply"), () => this.openReply(c),
        { "aria-label": this.messages.t("replyTo", { name: c.author.name }) }]);
    }
    const mine = c.id != null ? this.own.get(c.id) : null;
    if (c.status === "approved" && c.id != null && !mine) {
      buttons.push(["rt-report", t("report"), (e) => this.openReport(c.id, e.currentTarget)]);
    }
    // Once approved it is public: the stored copy must not come back as "pending" on reload.
    if (mine && mine.comment.version < c.version) this.own.save(c, mine.token, mine.until);
    // The server says when its edit window closes; older stored entries fall back to 15 min.
    const until = mine?.until ? Date.parse(mine.until) : Date.parse(c.created_at) + EDIT_WINDOW_MS;
    if (mine && Date.now() < until) {
      buttons.push(["rt-edit", t("edit"), () => this.openEdit(c.id), { "data-until": until }]);
      buttons.push(["rt-delete", t("delete"), (e) => this.remove(c.id, e.currentTarget),
        { "data-until": until }]);
    }
    return buttons;
  }

  /** Relative times and the edit window move on while a page stays open. */
  tick() {
    for (const time of this.section.querySelectorAll("time[datetime]")) {
      time.textContent = this.messages.ago(time.getAttribute("datetime"));
    }
    for (const el of this.section.querySelectorAll("[data-until]")) {
      if (Date.now() >= Number(el.dataset.until)) el.remove();
    }
  }

  // The comment form: one form, moved under the comment being answered.

  openReply(comment) {
    this.parentId = comment.id;
    this.form.replying(comment.author.name);
    this.items.get(keyOf(comment)).slot.append(this.form.el);
    this.form.body.focus();
  }

  /** Back to a new top-level comment; `refocus` returns the focus to the Reply button. */
  closeReply(refocus) {
    const parent = this.parentId;
    this.parentId = null;
    this.form.replying(null);
    this.rootSlot.append(this.form.el);
    if (refocus && parent != null) {
      this.items.get(`id:${parent}`)?.card.querySelector(".rt-reply")?.focus();
    }
  }

  async preview(body) {
    const answer = await this.api.preview(body);
    return { ...answer, sentence: answer.ok ? null : explain(answer, this.messages) };
  }

  async submit({ body, name, email, url }) {
    if (this.sending) return;
    // Empty optional fields are left out: the server validates whatever is sent.
    const who = { name };
    if (email) who.email = email;
    if (url) who.url = url;
    const parentId = this.parentId;
    // Retrying after a lost answer reuses the client_id: the server then never duplicates.
    const again = this.retry && this.retry.body === body && this.retry.parentId === parentId;
    const clientId = again ? this.retry.clientId : newClientId();
    this.retry = null;
    this.mine.add(clientId);
    this.thread.addLocal({ client_id: clientId, parent_id: parentId, kind: "comment",
      author: { name, url: null, avatar: "" }, body, html: null,
      created_at: new Date().toISOString(), edited_at: null });
    this.render();
    showError(this.form.error, "");
    this.sending = true;
    this.form.busy(true);
    const answer = await this.api.post(this.slug, { body, author: who, parent_id: parentId,
      client_id: clientId });
    this.sending = false;
    this.form.busy(false);
    if (!answer.ok) {
      this.thread.dropLocal(clientId);
      if (answer.status === 0) this.retry = { clientId, body, parentId };
      showError(this.form.error, answer.status === 0 ? this.messages.t("unreachable")
        : explain(answer, this.messages));
      this.render();
      return;
    }
    const { comment, edit_token: token, edit_until: until } = answer.data;
    // Only the first answer carries the token; a 200 for a retry has none to give.
    if (token) this.own.save(comment, token, until);
    // The live event may have drawn this comment already, before we knew it was ours.
    this.forget(comment.id);
    this.thread.confirm(comment);
    this.form.sent({ name, email, url });
    if (parentId != null) this.closeReply(false);
    this.render();
    // Focus follows the comment just posted, so keyboard readers do not start over.
    this.items.get(keyOf(comment))?.card.focus();
    this.notices.announce(this.messages.t(comment.status === "pending" ? "awaiting" : "posted"));
  }

  // Editing, deleting and reporting.

  openEdit(id) {
    const item = this.items.get(`id:${id}`);
    const comment = this.thread.get(id);
    if (!item || !comment) return;
    const close = () => {
      form.remove();
      item.card.querySelector(".rt-edit")?.focus();
    };
    const form = editForm(this.messages, comment.body, { close, save: async (text) => {
      const answer = await this.api.edit(id, this.own.get(id)?.token, text);
      if (!answer.ok) return explain(answer, this.messages);
      const edited = answer.data.comment;
      this.own.save(edited, this.own.get(id)?.token, this.own.get(id)?.until);
      this.thread.upsert(edited);
      form.remove();
      this.render();
      item.card.focus();
      return null;
    } });
    item.slot.querySelector(".rt-edit-form")?.remove();
    item.slot.prepend(form);
    form.elements.body.focus();
  }

  async remove(id, button) {
    // Two clicks: a deletion cannot be undone by its author.
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = this.messages.t("reallyDelete");
      return;
    }
    const comment = this.thread.get(id);
    const answer = await this.api.remove(id, this.own.get(id)?.token);
    if (!answer.ok) {
      button.textContent = explain(answer, this.messages);
      delete button.dataset.armed;
      return;
    }
    this.own.forget(id);
    // The live event says the same, but a pending comment has none and the socket may be down:
    // the comment as the public now sees it (a tombstone, or nothing) settles it either way.
    const now = await this.api.comment(id);
    if (now.ok) this.thread.deleted({ id, version: now.data.comment.version,
      tombstone: now.data.comment });
    else if (now.status === 404 && comment) {
      this.thread.deleted({ id, version: comment.version + 1, tombstone: null });
    }
    this.render();
    this.list.focus();
  }

  openReport(id, button) {
    const item = this.items.get(`id:${id}`);
    if (!item || item.slot.querySelector(".rt-report-form")) return;
    const close = () => {
      form.remove();
      button.focus();
    };
    const form = reportForm(this.messages, { close, send: async (reason) => {
      const answer = await this.api.report(id, reason);
      if (!answer.ok) return explain(answer, this.messages);
      form.remove();
      button.textContent = this.messages.t("reported");
      button.disabled = true;
      this.notices.announce(this.messages.t("reported"));
      item.card.focus();
      return null;
    } });
    item.slot.append(form);
    form.elements.reason.focus();
  }
}
