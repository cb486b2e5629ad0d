// The embeddable live thread: every <div data-realtime-post="slug"> on the page becomes one.
//
// Loaded as <script type="module" src="https://comments.example/static/embed.js">, possibly
// from another origin, so every URL is derived from this script's own URL. Comment bodies
// arrive as HTML the server sanitized at write time; everything else a commenter typed (name,
// website) only ever reaches the page as text or as an attribute value.

import { h } from "./dom.js";
import { Live } from "./live.js";
import { APPLIED, RESYNC, Thread, keyOf } from "./thread.js";

const BASE = new URL(".", import.meta.url).href.replace(/static\/$/, "");
const EDIT_WINDOW_MS = 15 * 60 * 1000;
const KEEP_PENDING_MS = 7 * 24 * 3600 * 1000;
const SVG = "http://www.w3.org/2000/svg";
const SAFE_URL = /^https?:\/\//i;

const api = (path) => new URL(path, BASE);

/** A UUID; crypto.randomUUID exists only in secure contexts, and embeds may run elsewhere. */
function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
    .join("-");
}

/** A 5x5 mirrored identicon from the avatar hash: a face for each author, no external image. */
function identicon(hash) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 5 5");
  svg.setAttribute("class", "rt-avatar");
  svg.setAttribute("aria-hidden", "true");
  if (!/^[0-9a-f]{12,}$/i.test(hash || "")) return svg;
  const bits = parseInt(hash.slice(0, 8), 16);
  const hue = parseInt(hash.slice(8, 12), 16) % 360;
  const rect = (x, y, fill) => {
    const r = document.createElementNS(SVG, "rect");
    for (const [k, v] of Object.entries({ x, y, width: 1, height: 1, fill })) r.setAttribute(k, v);
    svg.append(r);
  };
  svg.style.background = `hsl(${hue} 45% 92%)`;
  for (let x = 0; x < 3; x += 1) {
    for (let y = 0; y < 5; y += 1) {
      if (((bits >>> (x * 5 + y)) & 1) === 0) continue;
      rect(x, y, `hsl(${hue} 55% 45%)`);
      if (x < 2) rect(4 - x, y, `hsl(${hue} 55% 45%)`);
    }
  }
  return svg;
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

function ago(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  if (Math.abs(seconds) < 45) return "just now";
  for (const [unit, size] of [["year", 31536000], ["month", 2592000], ["week", 604800],
    ["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds / 60), "minute");
}

function timeElement(iso) {
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso));
}

async function problem(response) {
  const body = await response.json().catch(() => ({}));
  return body.detail || `The server answered ${response.status}.`;
}

// Edit tokens and one's own pending comments, per server, in this browser. localStorage can
// throw (storage disabled, private modes): losing edit rights beats breaking the thread.
const own = {
  prefix: `realtime:${new URL(BASE).host}:comment:`,
  get(id) {
    try {
      return JSON.parse(localStorage.getItem(this.prefix + id));
    } catch {
      return null;
    }
  },
  save(comment, token, until) {
    try {
      localStorage.setItem(this.prefix + comment.id, JSON.stringify({ token, comment, until }));
    } catch {
      // see above
    }
  },
  forget(id) {
    try {
      localStorage.removeItem(this.prefix + id);
    } catch {
      // see above
    }
  },
  /** Own comments of a post still waiting for a moderator (older ones are let go). */
  pending(slug) {
    const found = [];
    try {
      for (let i = localStorage.length - 1; i >= 0; i -= 1) {
        const key = localStorage.key(i);
        if (!key?.startsWith(this.prefix)) continue;
        const entry = JSON.parse(localStorage.getItem(key));
        const age = Date.now() - Date.parse(entry?.comment?.created_at);
        if (!(age < KEEP_PENDING_MS)) localStorage.removeItem(key);
        else if (entry.comment.post === slug && entry.comment.status === "pending") {
          found.push(entry.comment);
        }
      }
    } catch {
      // see above
    }
    return found;
  },
};

const author = {
  key: "realtime:author",
  load() {
    try {
      return JSON.parse(localStorage.getItem(this.key)) || {};
    } catch {
      return {};
    }
  },
  save(fields) {
    try {
      localStorage.setItem(this.key, JSON.stringify(fields));
    } catch {
      // see above
    }
  },
};

let shared = null;
const views = new Set();

/** The page's one socket, shared by every thread on it. */
function live() {
  shared ??= new Live(BASE, {
    onState: (state) => views.forEach((view) => view.connection(state)),
  });
  return shared;
}

class ThreadView {
  constructor(root, slug) {
    this.root = root;
    this.slug = slug;
    this.channel = `post:${slug}`;
    this.thread = new Thread();
    this.items = new Map();
    this.parentId = null;
    this.retry = null;
    this.sending = false;
    this.editing = null;

    this.count = h("h2", { class: "rt-count" }, "Comments");
    this.watching = h("span", { class: "rt-watching", hidden: true });
    this.state = h("span", { class: "rt-state", hidden: true }, "reconnecting…");
    this.list = h("ol", { class: "rt-comments" });
    this.form = this.buildForm();
    this.closedNote = h("p", { class: "rt-closed", hidden: true }, "Comments are closed.");
    this.rootSlot = h("div", { class: "rt-root-slot" }, this.form);
    this.section = h("section", { class: "rt-thread", "aria-live": "polite" },
      h("header", { class: "rt-head" }, this.count, this.watching, this.state),
      this.list, this.closedNote, this.rootSlot);
    root.replaceChildren(this.section);
  }

  async start() {
    try {
      await this.load();
    } catch (error) {
      this.section.replaceChildren(h("p", { class: "rt-error" }, String(error.message || error)));
      return;
    }
    this.render();
    views.add(this);
    live().subscribe(this.channel, this);
  }

  /** Read every page of the thread; the first page's seq is where the stream resumes. */
  async load() {
    let first = null;
    const comments = [];
    for (let after = null; ;) {
      const url = api(`api/posts/${encodeURIComponent(this.slug)}/comments`);
      url.searchParams.set("limit", "500");
      if (after != null) url.searchParams.set("after", after);
      const response = await fetch(url, { credentials: "omit" });
      if (!response.ok) throw new Error(await problem(response));
      const page = await response.json();
      first ??= page;
      comments.push(...page.comments);
      if (page.next == null) break;
      after = page.next;
    }
    // Later pages were read after the first one's seq; replaying from it only repeats
    // changes, which the version rule absorbs, where resuming later could lose some.
    this.thread.load(first.post, comments, first.seq);
    for (const comment of own.pending(this.slug)) this.thread.upsert(comment);
  }

  // Handlers of the live channel (see live.js).

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
    const result = this.thread.applyEvent(msg);
    if (result === RESYNC) live().resubscribe(this.channel);
    if (result !== APPLIED) return;
    // Opening or closing the thread changes every Reply button, not one comment.
    if (msg.event === "post.updated") for (const item of this.items.values()) item.comment = null;
    this.render();
  }

  async reset() {
    try {
      await this.load();
    } catch {
      // The server dropped the subscription with the reset: nothing else will retry for us.
      setTimeout(() => this.reset(), 5000);
      return;
    }
    this.render();
    live().resubscribe(this.channel);
  }

  error(msg) {
    console.warn("realtime:", msg.code, msg.message);
  }

  connection(state) {
    this.state.hidden = state === "open";
  }

  showWatching(n) {
    if (typeof n !== "number") return;
    this.watching.hidden = false;
    this.watching.textContent = `${n} watching`;
  }

  // Rendering: one <li> per comment, kept across renders so an open form or the reading
  // position survives live updates; a card is rebuilt only when its comment object changed.

  render() {
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
        if (item.comment.id != null) place(item.children, tree.get(item.comment.id) ?? []);
      }
    };
    place(this.list, tree.get(null));
    for (const [key, item] of this.items) {
      if (seen.has(key)) continue;
      if (item.li.contains(this.form)) this.closeReply();
      item.li.remove();
      this.items.delete(key);
    }
    // The applied stream position, for anyone debugging a page (and for the tests).
    this.section.dataset.seq = this.thread.seq;
    const n = this.thread.count();
    this.count.textContent = n === 0 ? "No comments yet" : n === 1 ? "1 comment" : `${n} comments`;
    const open = this.thread.post?.open !== false;
    this.closedNote.hidden = open;
    this.rootSlot.hidden = !open;
    if (!open && this.parentId != null) this.closeReply();
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
      const id = comment.id != null ? `rt-c-${comment.id}` : null;
      const li = h("li", { class: "rt-comment", id });
      item = { key, li, comment: null, card: h("article", { class: "rt-card" }),
        slot: h("div", { class: "rt-slot" }), children: h("ol", { class: "rt-children" }) };
      li.append(item.card, item.slot, item.children);
      this.items.set(key, item);
    }
    if (item.comment !== comment) {
      item.comment = comment;
      this.fillCard(item);
    }
    return item;
  }

  fillCard(item) {
    const c = item.comment;
    const classes = ["rt-comment", `rt-status-${c.status}`];
    if (c.kind === "pingback") classes.push("rt-pingback");
    item.li.className = classes.join(" ");
    if (c.status === "deleted") {
      item.card.replaceChildren(h("p", { class: "rt-tombstone" }, "This comment was deleted."));
      return;
    }
    const name = c.author.name || "Anonymous";
    const who = c.author.url && SAFE_URL.test(c.author.url)
      ? h("a", { class: "rt-author", href: c.author.url, rel: "nofollow ugc noopener" }, name)
      : h("span", { class: "rt-author" }, name);
    const when = c.id != null
      ? h("a", { class: "rt-permalink", href: `#rt-c-${c.id}` }, timeElement(c.created_at))
      : timeElement(c.created_at);
    const body = h("div", { class: "rt-body" });
    // Sanitized by the server at write time; an optimistic copy has only its Markdown source.
    if (c.html != null) body.innerHTML = c.html;
    else body.append(h("p", {}, c.body));
    const ping = c.kind === "pingback";
    const badge = { sending: "sending…", pending: "awaiting moderation" }[c.status];
    item.card.replaceChildren(
      ping ? h("span", { class: "rt-avatar rt-avatar-ping", "aria-hidden": "true" }, "↗")
        : identicon(c.author.avatar),
      h("div", { class: "rt-main" },
        h("header", { class: "rt-meta" },
          ping ? h("span", { class: "rt-kind" }, "Pingback") : null,
          who, " ", when,
          c.edited_at ? h("span", { class: "rt-edited",
            title: new Date(c.edited_at).toLocaleString() }, "edited") : null,
          badge ? h("span", { class: `rt-badge rt-badge-${c.status}` }, badge) : null),
        body,
        this.actions(c)));
  }

  actions(c) {
    const buttons = [];
    if (c.status === "approved" && c.kind === "comment" && this.thread.post?.open !== false) {
      buttons.push(h("button", { type: "button", class: "rt-reply",
        onclick: () => this.openReply(c) }, "Reply"));
    }
    const mine = c.id != null ? own.get(c.id) : null;
    if (c.status === "approved" && c.id != null && !mine) {
      buttons.push(h("button", { type: "button", class: "rt-report",
        onclick: (e) => this.report(c.id, e.currentTarget) }, "Report"));
    }
    // Once approved it is public: the stored copy must not come back as "pending" on reload.
    if (mine && mine.comment.version < c.version) own.save(c, mine.token, mine.until);
    // The server says when its edit window closes; older stored entries fall back to 15 min.
    const until = mine?.until ? Date.parse(mine.until) : Date.parse(c.created_at) + EDIT_WINDOW_MS;
    if (mine && Date.now() < until) {
      buttons.push(h("span", { class: "rt-own", "data-until": until },
        h("button", { type: "button", class: "rt-edit",
          onclick: () => this.openEdit(c.id) }, "Edit"),
        h("button", { type: "button", class: "rt-delete",
          onclick: (e) => this.remove(c.id, e.currentTarget) }, "Delete")));
    }
    return buttons.length ? h("footer", { class: "rt-actions" }, buttons) : null;
  }

  /** Relative times and the edit window move on while a page stays open. */
  tick() {
    for (const time of this.section.querySelectorAll("time[datetime]")) {
      time.textContent = ago(time.getAttribute("datetime"));
    }
    for (const el of this.section.querySelectorAll(".rt-own[data-until]")) {
      if (Date.now() >= Number(el.dataset.until)) el.remove();
    }
  }

  // The reply form: one form, moved under the comment being answered.

  buildForm() {
    const saved = author.load();
    const field = (label, input) => h("label", { class: "rt-field" }, h("span", {}, label), input);
    this.replying = h("p", { class: "rt-replying", hidden: true });
    this.formError = h("p", { class: "rt-error", role: "alert", hidden: true });
    this.submitButton = h("button", { type: "submit", class: "rt-submit" }, "Post Comment");
    // novalidate: the server's rules are the ones that count, and its messages say so.
    return h("form", { class: "rt-form", novalidate: true, onsubmit: (e) => this.submit(e) },
      h("h3", { class: "rt-form-title" }, "Leave a Reply"),
      this.replying,
      h("div", { class: "rt-fields" },
        field("Name", h("input", { name: "name", autocomplete: "name", maxlength: 100,
          value: saved.name ?? "" })),
        field("E-mail (not published)", h("input", { name: "email", type: "email",
          autocomplete: "email", value: saved.email ?? "" })),
        field("Website", h("input", { name: "url", type: "url", autocomplete: "url",
          value: saved.url ?? "" }))),
      field("Comment", h("textarea", { name: "body", rows: 5, maxlength: 10000 })),
      this.formError,
      h("p", { class: "rt-form-foot" }, this.submitButton));
  }

  openReply(comment) {
    this.parentId = comment.id;
    this.replying.replaceChildren(`Replying to ${comment.author.name} `,
      h("button", { type: "button", class: "rt-cancel", onclick: () => this.closeReply() },
        "Cancel"));
    this.replying.hidden = false;
    this.items.get(keyOf(comment)).slot.append(this.form);
    this.form.elements.body.focus();
  }

  closeReply() {
    this.parentId = null;
    this.replying.hidden = true;
    this.rootSlot.append(this.form);
  }

  showError(el, text) {
    el.textContent = text;
    el.hidden = !text;
  }

  async submit(event) {
    event.preventDefault();
    if (this.sending) return;
    const f = this.form.elements;
    const body = f.body.value;
    const [name, email, url] = [f.name, f.email, f.url].map((input) => input.value.trim());
    // Empty optional fields are left out: the server validates whatever is sent.
    const who = { name };
    if (email) who.email = email;
    if (url) who.url = url;
    const parentId = this.parentId;
    // Retrying after a lost answer reuses the client_id: the server then never duplicates.
    const again = this.retry && this.retry.body === body && this.retry.parentId === parentId;
    const clientId = again ? this.retry.clientId : newClientId();
    this.retry = null;
    this.thread.addLocal({ client_id: clientId, parent_id: parentId, kind: "comment",
      author: { name, url: null, avatar: "" }, body, html: null,
      created_at: new Date().toISOString(), edited_at: null });
    this.render();
    this.showError(this.formError, "");
    this.sending = true;
    this.submitButton.disabled = true;
    try {
      const response = await fetch(api(`api/posts/${encodeURIComponent(this.slug)}/comments`), {
        method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ body, author: who, parent_id: parentId, client_id: clientId }),
      });
      if (!response.ok) {
        this.thread.dropLocal(clientId);
        this.showError(this.formError, await problem(response));
        return;
      }
      const answer = await response.json();
      // Only the first answer carries the token; a 200 for a retry has none to give.
      if (answer.edit_token) own.save(answer.comment, answer.edit_token, answer.edit_until);
      // The live event may have drawn this comment already, before we knew it was ours.
      this.forget(answer.comment.id);
      this.thread.upsert(answer.comment);
      author.save({ name, email, url });
      f.body.value = "";
      if (parentId != null) this.closeReply();
    } catch {
      this.thread.dropLocal(clientId);
      this.retry = { clientId, body, parentId };
      this.showError(this.formError,
        "Could not reach the server; your comment is kept here, try again.");
    } finally {
      this.sending = false;
      this.submitButton.disabled = false;
      this.render();
    }
  }

  // Editing and deleting one's own comments with the edit token from the 201 answer.

  openEdit(id) {
    const item = this.items.get(`id:${id}`);
    const comment = this.thread.get(id);
    if (!item || !comment) return;
    const text = h("textarea", { name: "body", rows: 4 });
    text.value = comment.body;
    const error = h("p", { class: "rt-error", role: "alert", hidden: true });
    const close = () => form.remove();
    const form = h("form", { class: "rt-edit-form", novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const response = await this.withToken(id, "PATCH", { body: text.value }).catch(() => null);
      if (!response) return this.showError(error, "Could not reach the server; try again.");
      if (!response.ok) return this.showError(error, await problem(response));
      const edited = (await response.json()).comment;
      own.save(edited, own.get(id)?.token, own.get(id)?.until);
      this.thread.upsert(edited);
      close();
      this.render();
    } }, text, error, h("p", { class: "rt-form-foot" },
      h("button", { type: "submit" }, "Save"), " ",
      h("button", { type: "button", onclick: close }, "Cancel")));
    item.slot.querySelector(".rt-edit-form")?.remove();
    item.slot.prepend(form);
    text.focus();
  }

  async remove(id, button) {
    // Two clicks: a deletion cannot be undone by its author.
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = "Really delete?";
      return;
    }
    const comment = this.thread.get(id);
    const response = await this.withToken(id, "DELETE").catch(() => null);
    if (!response?.ok) {
      button.textContent = response ? await problem(response) : "Could not reach the server";
      delete button.dataset.armed;
      return;
    }
    own.forget(id);
    // The live event says the same, but a pending comment has none and the socket may be down:
    // the comment as the public now sees it (a tombstone, or nothing) settles it either way.
    const now = await fetch(api(`api/comments/${id}`), { credentials: "omit" }).catch(() => null);
    if (now?.ok) this.thread.upsert((await now.json()).comment);
    else if (now?.status === 404 && comment) this.thread.remove(id, comment.version + 1, null);
    this.render();
  }

  async report(id, button) {
    const reason = window.prompt("What is wrong with this comment? The moderators will see it.");
    if (!reason?.trim()) return;
    const response = await fetch(api(`api/comments/${id}/report`), {
      method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason: reason.trim() }),
    }).catch(() => null);
    button.textContent = response?.ok ? "Reported"
      : response ? await problem(response) : "Could not reach the server";
    button.disabled = Boolean(response?.ok);
  }

  withToken(id, method, body) {
    const headers = { Authorization: `Edit ${own.get(id)?.token}` };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(api(`api/comments/${id}`), { method, credentials: "omit", headers,
      body: body ? JSON.stringify(body) : undefined });
  }
}

for (const root of document.querySelectorAll("[data-realtime-post]")) {
  new ThreadView(root, root.dataset.realtimePost).start();
}
setInterval(() => views.forEach((view) => view.tick()), 30000);
