// The audit log pane: who did what and when, newest first, by moderator and by action.

import { h } from "../dom.js";
import { call } from "./api.js";

function detail(entry) {
  const d = entry.detail;
  if (!d) return "";
  if (d.ban) {
    return `${d.ban.shadow ? "shadow ban" : "ban"} by ${d.ban.kind} ${d.ban.value}`
      + (d.ban.expires_at ? ` until ${new Date(d.ban.expires_at).toLocaleString()}` : "");
  }
  if (d.changes) {
    return Object.entries(d.changes).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("; ");
  }
  return JSON.stringify(d);
}

export class LogPane {
  constructor(root) {
    this.body = root.querySelector("tbody");
    this.more = root.querySelector(".rt-more");
    this.moderator = root.querySelector("select[name=moderator]");
    this.action = root.querySelector("select[name=action]");
    this.error = root.querySelector(".rt-error");
    this.next = null;
    this.more.addEventListener("click", () => this.load(this.next));
    this.moderator.addEventListener("change", () => this.show());
    this.action.addEventListener("change", () => this.show());
  }

  async show() {
    this.body.replaceChildren();
    await this.load(null);
  }

  async load(after) {
    try {
      const page = await call("api/moderation/log", { params: { after, limit: 100,
        moderator: this.moderator.value, action: this.action.value } });
      const chosen = this.moderator.value;
      this.moderator.replaceChildren(h("option", { value: "" }, "Everyone"),
        ...page.moderators.map((name) => h("option", { value: name, selected: name === chosen },
          name)));
      for (const entry of page.entries) {
        this.body.append(h("tr", {},
          h("td", {}, h("time", { datetime: entry.created_at },
            new Date(entry.created_at).toLocaleString())),
          h("td", {}, entry.moderator),
          h("td", {}, entry.action),
          h("td", {}, entry.comment_id == null ? "" : `#${entry.comment_id}`),
          h("td", { class: "rt-mono" }, entry.post || ""),
          h("td", {}, entry.reason || ""),
          h("td", {}, detail(entry))));
      }
      this.next = page.next;
      this.more.hidden = page.next == null;
      this.error.hidden = true;
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
    }
  }
}
