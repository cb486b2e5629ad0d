// What the reader is told about comments arriving while they read: one polite live region
// (not the whole thread), and a "N new comments" button for new comments out of view, which
// brings the reader to them. Arrivals never move the page; see ThreadView.keepScroll.

import { h } from "./dom.js";

const ANNOUNCE_AFTER_MS = 1500;

export class Notices {
  constructor(messages) {
    this.messages = messages;
    this.unseen = new Map();
    this.arrived = [];
    this.region = h("div", { class: "rt-sr", role: "status", "aria-live": "polite" });
    this.button = h("button", { type: "button", class: "rt-new", hidden: true,
      onclick: () => this.bringToFirst() });
    this.observer = typeof IntersectionObserver === "function"
      ? new IntersectionObserver((entries) => this.seen(entries), { threshold: 0.5 }) : null;
  }

  /** Say something to screen readers, politely. */
  announce(text) {
    // A changed text node is what assistive technology reads; clear first so a repeat counts.
    this.region.textContent = "";
    requestAnimationFrame(() => {
      this.region.textContent = text;
    });
  }

  /** A new comment by someone else was drawn at `li` (whose `focusable` gets the focus). */
  newComment(id, li, focusable, name) {
    this.unseen.set(id, { li, focusable });
    this.observer?.observe(li);
    this.update();
    this.arrived.push(name);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const names = this.arrived;
      this.arrived = [];
      this.announce(names.length === 1 ? this.messages.t("newCommentBy", { name: names[0] })
        : this.messages.t("newComments", { count: names.length }));
    }, ANNOUNCE_AFTER_MS);
  }

  /** A comment left the page (deleted, or the thread reloaded). */
  forget(id) {
    const entry = this.unseen.get(id);
    if (!entry) return;
    this.observer?.unobserve(entry.li);
    this.unseen.delete(id);
    this.update();
  }

  seen(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      for (const [id, found] of this.unseen) if (found.li === entry.target) this.forget(id);
    }
  }

  update() {
    const n = this.unseen.size;
    this.button.hidden = n === 0;
    if (!n) return;
    this.button.textContent = this.messages.t("newComments", { count: n });
    // Pinned to the edge of the screen the first new comment is beyond.
    const first = this.first();
    const above = first && first.li.getBoundingClientRect().bottom < 0;
    this.button.classList.toggle("rt-new-above", Boolean(above));
  }

  first() {
    let found = null;
    for (const entry of this.unseen.values()) {
      if (!found || (entry.li.compareDocumentPosition(found.li)
        & Node.DOCUMENT_POSITION_FOLLOWING)) found = entry;
    }
    return found;
  }

  bringToFirst() {
    const first = this.first();
    if (!first) return;
    first.li.scrollIntoView({ block: "center" });
    first.focusable.focus({ preventScroll: true });
    for (const id of [...this.unseen.keys()]) this.forget(id);
  }
}
