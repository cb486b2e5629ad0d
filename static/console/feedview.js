// The feed pane: the filter bar with live counts, the entries, and acting on them.
//
// The DOM holds a window of at most MAX_RENDERED entries of the model's order; "Load older"
// moves it down (reading pages from the server as needed) and "Show newer" back up. A live
// change touches at most two entries of the DOM (the one that changed and the one that moves
// into or out of the window), so it costs the same with 50 or 50,000 comments loaded.

import { h } from "../dom.js";
import { call } from "./api.js";
import { actionsFor, banForm, entryNode, expiry, LABELS } from "./entry.js";
import { Feed, FILTERS } from "./feed.js";

export const PAGE = 50;
const MAX_RENDERED = 150;
const COUNTS_DELAY = 400;
const CONTEXT_DELAY = 150;

export class FeedView {
  /** `root` is the feed pane; `posts` a Map slug → post; `announce(text)` speaks politely. */
  constructor(root, { posts, announce, onFilter }) {
    this.root = root;
    this.posts = posts;
    this.announce = announce;
    this.onFilter = onFilter;
    this.list = root.querySelector(".rt-feed");
    this.older = root.querySelector(".rt-older");
    this.newer = root.querySelector(".rt-newer");
    this.empty = root.querySelector(".rt-empty");
    this.error = root.querySelector(".rt-error");
    this.postSelect = root.querySelector("select[name=post]");
    this.feed = new Feed({ status: "pending", post: "" });
    this.start = 0;
    this.size = PAGE; // how many entries the window may show
    this.nodes = new Map();
    this.notes = new Map();
    this.busy = new Set();
    this.banOpen = new Map();
    this.current = null;
    this.generation = 0;
    this.refreshes = 0;
    this.wantContext = new Set();
    this.timers = {};
    this.counts = {};
    this.older.addEventListener("click", () => this.loadOlder());
    this.newer.addEventListener("click", () => this.showNewer());
    this.list.addEventListener("click", (event) => this.clicked(event));
    this.list.addEventListener("focusin", (event) => {
      const entry = event.target.closest?.(".rt-entry");
      if (entry) this.setCurrent(Number(entry.dataset.id), false);
    });
    for (const button of root.querySelectorAll("[data-status]")) {
      button.addEventListener("click", () => this.onFilter({ ...this.feed.filter,
        status: button.dataset.status }));
    }
    this.postSelect.addEventListener("change", () => this.onFilter({ ...this.feed.filter,
      post: this.postSelect.value }));
  }

  // -- reading ----------------------------------------------------------------------------

  /** Show `filter` ({status, post}) from its newest comment, read afresh. */
  async open(filter) {
    const keep = this.current;
    this.feed = new Feed(filter);
    this.start = 0;
    this.size = PAGE;
    for (const button of this.root.querySelectorAll("[data-status]")) {
      button.setAttribute("aria-pressed", String(button.dataset.status === filter.status));
    }
    this.showPostOption(filter.post);
    this.postSelect.value = filter.post || "";
    this.list.replaceChildren();
    this.nodes.clear();
    this.refreshCounts(0);
    if (await this.readPage()) {
      this.render();
      if (keep != null && this.nodes.has(keep)) this.setCurrent(keep, false);
    }
  }

  /**
   * Read the newest page again and bring the model and the entries shown up to it, change
   * by change like live ones (after the live channel is subscribed: whatever changed while
   * no one listened). The entries stay usable meanwhile; changes heard during the read win
   * over the page by the version rule.
   */
  async refresh() {
    if (!this.feed.started) {
      await this.open(this.feed.filter);
      return;
    }
    const mine = ++this.refreshes;
    const feed = this.feed;
    feed.listen();
    let page;
    try {
      page = await this.fetchPage(feed.filter, null);
    } catch (error) {
      if (mine === this.refreshes) this.showError(error.message);
      return;
    }
    if (mine !== this.refreshes || feed !== this.feed) return;
    for (const id of feed.rebase(page.comments, page.next)) this.place(feed.remove(id), id);
    for (const comment of page.comments) this.apply(comment);
    this.showError("");
    this.updateChrome();
  }

  /** Read the next page of the filter from the server into the model; false when a newer
   * read took over meanwhile (another filter, or a refresh that moved the floor) or the read
   * failed. */
  async readPage() {
    const mine = ++this.generation;
    const feed = this.feed;
    const floor = feed.floor;
    this.list.setAttribute("aria-busy", "true");
    try {
      const page = await this.fetchPage(feed.filter, Number.isFinite(floor) ? floor : null);
      if (mine !== this.generation || feed.floor !== floor) return false;
      feed.addPage(page.comments, page.next);
      this.showError("");
      return true;
    } catch (error) {
      if (mine === this.generation) this.showError(error.message);
      return false;
    } finally {
      if (mine === this.generation) this.list.setAttribute("aria-busy", "false");
    }
  }

  /** One page of `filter` older than `before` (null: the newest), its posts remembered. */
  async fetchPage({ status, post }, before) {
    const page = await call("api/moderation/comments", { params: {
      status, post, before, limit: PAGE } });
    for (const comment of page.comments) {
      if (comment.context?.post) this.posts.set(comment.post, {
        ...this.posts.get(comment.post), ...comment.context.post, slug: comment.post });
    }
    return page;
  }

  async loadOlder() {
    const wanted = this.start + this.size + PAGE;
    if (this.feed.size < wanted && !this.feed.complete && !(await this.readPage())) return;
    this.size += PAGE;
    if (this.size > MAX_RENDERED) {
      this.start += this.size - MAX_RENDERED;
      this.size = MAX_RENDERED;
    }
    this.render();
  }

  showNewer() {
    this.start = Math.max(0, this.start - PAGE);
    this.render();
    this.list.querySelector(".rt-entry")?.focus();
  }

  /** Counts per filter for the header, at most once per COUNTS_DELAY however busy. */
  refreshCounts(delay = COUNTS_DELAY) {
    if (this.timers.counts) return;
    this.timers.counts = setTimeout(async () => {
      this.timers.counts = null;
      try {
        const answer = await call("api/moderation/counts", { params: {
          post: this.feed.filter.post } });
        this.counts = answer.counts;
        for (const button of this.root.querySelectorAll("[data-status]")) {
          button.querySelector(".rt-n").textContent = String(this.counts[button.dataset.status]
            ?? "");
        }
        this.updateSetsize();
      } catch {
        // The next change tries again; a failed count must not hide the feed.
      }
    }, delay);
  }

  /** Read the context (history, reports, parent) of these comments soon, in one request. */
  needContext(id) {
    this.wantContext.add(id);
    if (this.timers.context) return;
    this.timers.context = setTimeout(async () => {
      this.timers.context = null;
      const ids = [...this.wantContext].slice(0, 100);
      for (const each of ids) this.wantContext.delete(each);
      if (this.wantContext.size) this.needContext([...this.wantContext][0]);
      try {
        const answer = await call("api/moderation/comments", { params: { ids: ids.join(",") } });
        for (const comment of answer.comments) this.apply(comment);
      } catch {
        // The entry keeps what it shows; the next change of it asks again.
      }
    }, CONTEXT_DELAY);
  }

  // -- live changes -----------------------------------------------------------------------

  /** A comment as the server has it now: place, move or drop its entry. */
  apply(comment) {
    this.place(this.feed.upsert(comment), comment.id);
  }

  /** The entries follow one change of the model ({was, now} indexes, or null). */
  place(change, id) {
    if (change == null) return;
    const { was, now } = change;
    const end = this.start + this.rendered;
    if (was >= 0 && now >= 0) {
      if (was >= this.start && was < end) this.redraw(id);
    } else if (now >= 0) {
      if (now < this.start) this.start += 1;
      else if (now < end || this.rendered < this.size) this.insertAt(now);
    } else if (was >= 0) {
      if (was < this.start) this.start -= 1;
      else if (was < end) this.removeAt(id);
    }
    this.updateChrome();
    this.refreshCounts();
  }

  get rendered() {
    return this.nodes.size;
  }

  /** The model at index `index` joins the window. */
  insertAt(index) {
    const comment = this.feed.at(index);
    const node = this.node(comment, index);
    const after = this.list.children[index - this.start] || null;
    this.list.insertBefore(node, after);
    this.nodes.set(comment.id, node);
    if (this.rendered > this.size) {
      const last = this.list.lastElementChild;
      this.dropNode(Number(last.dataset.id));
    }
  }

  /** An entry leaves the window (it no longer matches); the next one moves up into it. */
  removeAt(id) {
    const node = this.nodes.get(id);
    const hadFocus = node.contains(document.activeElement);
    const next = node.nextElementSibling || node.previousElementSibling;
    this.dropNode(id);
    const fill = this.start + this.rendered;
    if (fill < this.feed.size && this.rendered < this.size) {
      const comment = this.feed.at(fill);
      const added = this.node(comment, fill);
      this.list.append(added);
      this.nodes.set(comment.id, added);
    }
    if (hadFocus) {
      // Focus stays in the feed: on the entry that took this one's place, else the message.
      const target = (next && next.isConnected ? next : null)
        || this.list.lastElementChild || this.empty;
      if (target === this.empty) this.updateChrome();
      if (target.dataset?.id) this.setCurrent(Number(target.dataset.id));
      else target.focus();
    }
  }

  dropNode(id) {
    this.nodes.get(id)?.remove();
    this.nodes.delete(id);
  }

  redraw(id) {
    const old = this.nodes.get(id);
    if (!old) return;
    const active = document.activeElement;
    const focusAction = old.contains(active) ? active.dataset?.action || "" : null;
    const node = this.node(this.feed.get(id), this.feed.indexOf(id));
    old.replaceWith(node);
    this.nodes.set(id, node);
    if (focusAction != null) {
      const same = focusAction && node.querySelector(`[data-action="${focusAction}"]`);
      const form = node.querySelector(".rt-ban-form");
      (same && !same.disabled ? same : form && form.contains(active) ? active : node).focus();
    }
  }

  /** The window drawn afresh from the model (after a read or a move of the window). */
  render() {
    this.start = Math.min(this.start, Math.max(0, this.feed.size - 1));
    const nodes = [];
    this.nodes.clear();
    const end = Math.min(this.feed.size, this.start + this.size);
    for (let i = this.start; i < end; i += 1) {
      const comment = this.feed.at(i);
      const node = this.node(comment, i);
      this.nodes.set(comment.id, node);
      nodes.push(node);
    }
    this.list.replaceChildren(...nodes);
    this.updateChrome();
  }

  node(comment, index) {
    if (!comment.context || comment.contextStale) this.needContext(comment.id);
    const node = entryNode(comment, {
      posts: this.posts, note: this.notes.get(comment.id), busy: this.busy.has(comment.id),
      banOpen: this.banOpen.has(comment.id), current: comment.id === this.current,
      position: index, setsize: this.setsize(),
    });
    const form = this.banOpen.get(comment.id);
    if (form) node.querySelector(".rt-entry-actions").after(form);
    return node;
  }

  setsize() {
    if (this.feed.complete) return this.feed.size;
    return this.counts[this.feed.filter.status] ?? -1;
  }

  updateSetsize() {
    const total = String(this.setsize());
    for (const node of this.nodes.values()) node.setAttribute("aria-setsize", total);
  }

  updateChrome() {
    const more = this.start + this.rendered < this.feed.size || !this.feed.complete;
    this.older.hidden = !more;
    this.newer.hidden = this.start === 0;
    this.newer.textContent = `Show newer (${this.start})`;
    this.empty.hidden = this.feed.size > 0;
    this.root.dataset.loaded = String(this.feed.size);
    this.root.dataset.rendered = String(this.rendered);
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  showPostOption(slug) {
    if (!slug || [...this.postSelect.options].some((o) => o.value === slug)) return;
    this.postSelect.append(h("option", { value: slug }, this.posts.get(slug)?.title || slug));
  }

  // -- the current entry and the keyboard -------------------------------------------------

  setCurrent(id, focus = true) {
    if (this.current != null && this.current !== id) {
      this.nodes.get(this.current)?.setAttribute("tabindex", "-1");
    }
    this.current = id;
    const node = this.nodes.get(id);
    if (!node) return;
    node.setAttribute("tabindex", "0");
    if (focus) {
      node.focus();
      node.scrollIntoView({ block: "nearest" });
    }
  }

  /** Move the current entry by `step` (j: +1, k: -1), paging the window when at its edge. */
  async move(step) {
    const ids = [...this.list.children].map((n) => Number(n.dataset.id));
    if (!ids.length) return;
    const at = ids.indexOf(this.current);
    const target = at < 0 ? 0 : at + step;
    if (target >= ids.length) {
      if (this.older.hidden) return;
      await this.loadOlder();
      return this.move(step);
    }
    if (target < 0) {
      if (this.start === 0) return;
      this.showNewer();
      return this.setCurrent(ids[0]);
    }
    this.setCurrent(ids[target]);
  }

  /** A key for the current entry: a, r, s, d act, b bans. */
  key(letter) {
    const comment = this.feed.get(this.current);
    if (!comment || !this.nodes.has(comment.id)) return false;
    if (letter === "b") {
      this.openBan(comment);
      return true;
    }
    const possible = actionsFor(comment);
    const action = { a: possible.includes("restore") ? "restore" : "approve", r: "reject",
      s: "spam", d: "delete" }[letter];
    if (!action) return false;
    if (!possible.includes(action)) {
      this.announce(`${LABELS[action]} does not apply to this comment.`);
      return true;
    }
    this.act(comment, action);
    return true;
  }

  // -- acting -----------------------------------------------------------------------------

  clicked(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const comment = this.feed.get(Number(button.closest(".rt-entry").dataset.id));
    if (!comment) return;
    if (button.dataset.action === "ban") {
      if (this.banOpen.has(comment.id)) this.closeBan(comment.id);
      else this.openBan(comment);
    } else {
      this.act(comment, button.dataset.action);
    }
  }

  /** Approve, reject, ... with the version shown: a stale view gets the 409 and the
   * comment as it is now, in place. */
  async act(comment, action) {
    this.setBusy(comment.id, true);
    const author = comment.author?.name || "(no name)";
    try {
      const answer = await call(`api/moderation/comments/${comment.id}/${action}`, {
        method: "POST", body: { version: comment.version } });
      this.notes.delete(comment.id);
      this.busy.delete(comment.id);
      this.apply(answer.comment);
      this.setBusy(comment.id, false);
      this.announce(`${LABELS[action]}: comment by ${author}.`);
    } catch (error) {
      this.busy.delete(comment.id);
      if (error.status === 409 && error.body.comment) {
        this.notes.set(comment.id, "This comment changed meanwhile: here it is now; decide again.");
        this.apply(error.body.comment);
        this.redraw(comment.id);
        this.needContext(comment.id);
      } else {
        this.notes.set(comment.id, error.message);
        this.redraw(comment.id);
      }
    }
  }

  setBusy(id, busy) {
    if (busy) this.busy.add(id);
    else this.busy.delete(id);
    for (const button of this.nodes.get(id)?.querySelectorAll(".rt-entry-actions button") || []) {
      button.disabled = busy;
    }
  }

  openBan(comment) {
    const form = banForm(comment, {
      onBan: (choice) => this.ban(comment.id, choice),
      onCancel: () => this.closeBan(comment.id, true),
    });
    this.banOpen.set(comment.id, form);
    this.redraw(comment.id);
    form.querySelector("input[name=kind]:checked, input[name=kind]")?.focus();
  }

  closeBan(id, refocus = false) {
    this.banOpen.delete(id);
    this.redraw(id);
    if (refocus) this.nodes.get(id)?.querySelector("[data-action=ban]")?.focus();
  }

  async ban(id, { kind, shadow, duration, reason }) {
    const form = this.banOpen.get(id);
    const error = form.querySelector(".rt-error");
    try {
      const ban = await call("api/moderation/bans", { method: "POST", body: {
        kind, comment_id: id, shadow, reason: reason || null, expires_at: expiry(duration) } });
      const what = `${ban.shadow ? "Shadow-banned" : "Banned"} ${ban.value}`;
      this.notes.set(id, `${what} (${duration === "forever" ? "forever" : `for 1 ${duration}`}).`);
      this.closeBan(id, true);
      this.announce(`${what}.`);
      // Every entry of this author shows the ban in its history.
      const comment = this.feed.get(id);
      for (const other of this.nodes.keys()) {
        const c = this.feed.get(other);
        if (c.author?.email === comment.author?.email || c.ip === comment.ip) {
          this.needContext(other);
        }
      }
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  }
}

export { FILTERS };
