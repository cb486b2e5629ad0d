// The account pane: the moderator's sessions, one ended or all of them ("log out everywhere").

import { h } from "../dom.js";
import { call } from "./api.js";

export class AccountPane {
  constructor(root, { announce, signedOut }) {
    this.announce = announce;
    this.signedOut = signedOut;
    this.body = root.querySelector("tbody");
    this.error = root.querySelector(".rt-error");
    root.querySelector(".rt-everywhere").addEventListener("click", () => this.everywhere());
  }

  async show() {
    try {
      const { sessions } = await call("api/auth/sessions");
      this.body.replaceChildren(...sessions.map((s) => h("tr", {},
        h("td", {}, h("time", { datetime: s.created_at }, new Date(s.created_at).toLocaleString()),
          s.current ? h("strong", { class: "rt-badge" }, "this browser") : null),
        h("td", {}, h("time", { datetime: s.expires_at },
          new Date(s.expires_at).toLocaleString())),
        h("td", { class: "rt-mono" }, s.ip || ""),
        h("td", {}, s.user_agent || ""),
        h("td", {}, s.current ? "" : h("button", { type: "button",
          "aria-label": `End the session from ${new Date(s.created_at).toLocaleString()}`,
          onclick: () => this.end(s) }, "End")))));
      this.error.hidden = true;
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
    }
  }

  async end(session) {
    await call(`api/auth/sessions/${session.id}`, { method: "DELETE" }).catch(() => null);
    this.announce("Session ended.");
    await this.show();
  }

  async everywhere() {
    try {
      await call("api/auth/sessions", { method: "DELETE" });
      this.signedOut("You are logged out everywhere.");
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
    }
  }
}
