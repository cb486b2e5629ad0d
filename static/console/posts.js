// The posts pane: every thread with its comment count, opened or closed, post- or
// pre-moderated, and new threads created.

import { h } from "../dom.js";
import { BASE, call } from "./api.js";

export class PostsPane {
  constructor(root, { posts, announce, openFeed }) {
    this.posts = posts;
    this.announce = announce;
    this.openFeed = openFeed;
    this.body = root.querySelector("tbody");
    this.more = root.querySelector(".rt-more");
    this.form = root.querySelector("form");
    this.error = root.querySelector(".rt-error");
    this.next = null;
    this.more.addEventListener("click", () => this.load(this.next));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  async show() {
    this.body.replaceChildren();
    await this.load(null);
  }

  async load(after) {
    try {
      const page = await call("api/posts", { params: { limit: 100, after } });
      for (const post of page.posts) {
        this.posts.set(post.slug, post);
        this.body.append(this.row(post));
      }
      this.next = page.next;
      this.more.hidden = page.next == null;
      this.showError("");
    } catch (error) {
      this.showError(error.message);
    }
  }

  row(post) {
    const link = post.url || new URL(`p/${encodeURIComponent(post.slug)}`, BASE).href;
    const moderation = h("select", { "aria-label": `Moderation of ${post.title}`,
      onchange: (event) => this.change(post, { moderation: event.target.value }) },
    h("option", { value: "post", selected: post.moderation === "post" }, "Post-moderation"),
    h("option", { value: "pre", selected: post.moderation === "pre" }, "Pre-moderation"));
    return h("tr", { "data-slug": post.slug },
      h("td", {}, h("a", { href: link }, post.title)),
      h("td", { class: "rt-mono" }, post.slug),
      h("td", { class: "rt-num" }, String(post.comment_count)),
      h("td", {}, moderation),
      h("td", {}, post.open ? "Open" : "Closed"),
      h("td", { class: "rt-row-actions" },
        h("button", { type: "button", "aria-label": `${post.open ? "Close" : "Open"} ${post.title}`,
          onclick: () => this.change(post, { open: !post.open }) },
        post.open ? "Close" : "Open"),
        h("button", { type: "button", "aria-label": `Comments on ${post.title}`,
          onclick: () => this.openFeed(post.slug) }, "Comments")));
  }

  async change(post, fields) {
    try {
      const changed = await call(`api/posts/${encodeURIComponent(post.slug)}`, {
        method: "PUT", body: fields });
      this.posts.set(changed.slug, changed);
      const old = this.body.querySelector(`tr[data-slug="${CSS.escape(post.slug)}"]`);
      const row = this.row(changed);
      old.replaceWith(row);
      row.querySelector(fields.open === undefined ? "select" : "button").focus();
      this.announce(`${changed.title}: ${changed.open ? "open" : "closed"},`
        + ` ${changed.moderation}-moderated.`);
    } catch (error) {
      this.showError(error.message);
    }
  }

  async create() {
    const f = this.form.elements;
    const slug = f.slug.value.trim();
    try {
      const post = await call(`api/posts/${encodeURIComponent(slug)}`, { method: "PUT", body: {
        title: f.title.value.trim(), url: f.url.value.trim() || null,
        moderation: f.moderation.value } });
      this.form.reset();
      this.announce(`Created ${post.title}.`);
      await this.show();
    } catch (error) {
      this.showError(error.message);
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }
}
