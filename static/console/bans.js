// The bans pane: every ban with its expiry, lifted with one button; new bans by value.

import { h } from "../dom.js";
import { call } from "./api.js";
import { expiry } from "./entry.js";

const KINDS = { email: "E-mail", ip: "IP address", name: "Name" };

export class BansPane {
  constructor(root, { announce }) {
    this.announce = announce;
    this.body = root.querySelector("tbody");
    this.table = root.querySelector("table");
    this.empty = root.querySelector(".rt-empty");
    this.form = root.querySelector("form");
    this.error = root.querySelector(".rt-error");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
  }

  async show() {
    try {
      this.draw((await call("api/moderation/bans")).bans);
      this.showError("");
    } catch (error) {
      this.showError(error.message);
    }
  }

  draw(bans) {
    const now = Date.now();
    this.body.replaceChildren(...bans.map((ban) => {
      const expired = ban.expires_at && Date.parse(ban.expires_at) <= now;
      const expires = ban.expires_at
        ? h("time", { datetime: ban.expires_at }, new Date(ban.expires_at).toLocaleString())
        : "never";
      return h("tr", { class: expired ? "rt-expired" : null },
        h("td", {}, KINDS[ban.kind]),
        h("td", { class: "rt-mono" }, ban.value),
        h("td", {}, ban.shadow ? "Shadow ban" : "Ban"),
        h("td", {}, ban.reason || ""),
        h("td", {}, expired ? ["expired ", expires] : expires),
        h("td", {}, ban.created_by || ""),
        h("td", {}, h("button", { type: "button", "aria-label":
          `Lift ban on ${KINDS[ban.kind].toLowerCase()} ${ban.value}`,
          onclick: () => this.lift(ban) }, "Lift")));
    }));
    this.table.hidden = !bans.length;
    this.empty.hidden = bans.length > 0;
  }

  async lift(ban) {
    try {
      await call(`api/moderation/bans/${ban.id}`, { method: "DELETE" });
      this.announce(`Lifted the ban on ${ban.value}.`);
      await this.show();
      this.form.elements.value.focus();
    } catch (error) {
      this.showError(error.message);
    }
  }

  async add() {
    const f = this.form.elements;
    try {
      const ban = await call("api/moderation/bans", { method: "POST", body: {
        kind: f.kind.value, value: f.value.value.trim(), shadow: f.shadow.checked,
        reason: f.reason.value.trim() || null, expires_at: expiry(f.duration.value) } });
      this.form.reset();
      this.announce(`Banned ${ban.value}.`);
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
