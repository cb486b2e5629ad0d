// The forms a reader types into: the comment form (moved under the comment being answered),
// the edit form and the report form. Keyboard: Ctrl/Cmd+Enter sends, Escape cancels.

import { h } from "./dom.js";
import { author } from "./storage.js";

let serial = 0;

/** Ctrl/Cmd+Enter submits the form; Escape calls `cancel` (when there is one). */
function keys(form, cancel) {
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.tagName === "TEXTAREA") {
      e.preventDefault();
      form.requestSubmit();
    } else if (e.key === "Escape" && cancel) {
      e.preventDefault();
      cancel();
    }
  });
}

const errorLine = () => h("p", { class: "rt-error", role: "alert", hidden: true });

export function showError(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

export class CommentForm {
  /** `onSubmit(values)` posts; `onCancel()` ends a reply; `preview(body)` renders on the server. */
  constructor(messages, { onSubmit, onCancel, preview }) {
    const t = (key, params) => messages.t(key, params);
    const saved = author.load();
    serial += 1;
    this.id = `rt-form-${serial}`;
    this.messages = messages;
    this.preview = preview;
    const field = (label, input) => h("label", { class: "rt-field" }, h("span", {}, label), input);
    const input = (name, attrs) => h("input", { name, ...attrs, value: saved[name] ?? "" });
    this.title = h("h3", { class: "rt-form-title", id: `${this.id}-title` }, t("leaveReply"));
    this.cancelButton = h("button", { type: "button", class: "rt-cancel", hidden: true,
      onclick: () => onCancel() }, t("cancel"));
    this.error = errorLine();
    this.body = h("textarea", { name: "body", rows: 5, maxlength: 10000, id: `${this.id}-body`,
      "aria-describedby": `${this.id}-hint` });
    this.previewPane = h("div", { class: "rt-preview rt-body", hidden: true, tabindex: "-1",
      "aria-label": t("preview") });
    this.previewButton = h("button", { type: "button", class: "rt-preview-toggle",
      "aria-pressed": "false", onclick: () => this.togglePreview() }, t("preview"));
    this.submitButton = h("button", { type: "submit", class: "rt-submit" }, t("postComment"));
    // novalidate: the server's rules are the ones that count, and its messages say so.
    this.el = h("form", { class: "rt-form", id: this.id, novalidate: true,
      "aria-labelledby": this.title.id, onsubmit: (e) => {
        e.preventDefault();
        onSubmit(this.values());
      } },
    h("div", { class: "rt-form-head" }, this.title, this.cancelButton),
    h("div", { class: "rt-fields" },
      field(t("name"), input("name", { autocomplete: "name", maxlength: 100 })),
      field(t("email"), input("email", { type: "email", autocomplete: "email" })),
      field(t("website"), input("url", { type: "url", autocomplete: "url" }))),
    h("label", { class: "rt-field", for: this.body.id }, h("span", {}, t("comment"))),
    this.body, this.previewPane,
    h("p", { class: "rt-hint", id: `${this.id}-hint` }, t("markdownHint")),
    this.error,
    h("p", { class: "rt-form-foot" }, this.previewButton, this.submitButton));
    keys(this.el, () => (this.cancelButton.hidden ? null : onCancel()));
  }

  values() {
    const f = this.el.elements;
    const [name, email, url] = [f.name, f.email, f.url].map((input) => input.value.trim());
    return { body: this.body.value, name, email, url };
  }

  /** Replying to `name`, or (null) writing a new top-level comment. */
  replying(name) {
    this.title.textContent = name == null ? this.messages.t("leaveReply")
      : this.messages.t("replyingTo", { name });
    this.cancelButton.hidden = name == null;
  }

  busy(on) {
    this.submitButton.disabled = on;
  }

  /** After a successful post: the text goes, the author's fields are remembered. */
  sent({ name, email, url }) {
    author.save({ name, email, url });
    this.body.value = "";
    if (this.previewing) this.togglePreview();
  }

  async togglePreview() {
    this.previewing = !this.previewing;
    this.previewButton.setAttribute("aria-pressed", String(this.previewing));
    this.body.hidden = this.previewing;
    this.previewPane.hidden = !this.previewing;
    if (!this.previewing) {
      this.body.focus();
      return;
    }
    const text = this.body.value;
    if (!text.trim()) {
      this.previewPane.replaceChildren(h("p", { class: "rt-muted" },
        this.messages.t("previewEmpty")));
      return;
    }
    const answer = await this.preview(text);
    if (!this.previewing || this.body.value !== text) return;
    // Sanitized by the server, exactly as it would store it.
    if (answer.ok) this.previewPane.innerHTML = answer.data.html;
    else this.previewPane.replaceChildren(h("p", { class: "rt-error" }, answer.sentence));
  }
}

/** The form that edits one's own comment in place. `save(text)` resolves to an error or null. */
export function editForm(messages, text, { save, close }) {
  serial += 1;
  const id = `rt-edit-${serial}`;
  const area = h("textarea", { name: "body", rows: 4, id, maxlength: 10000 });
  area.value = text;
  const error = errorLine();
  const form = h("form", { class: "rt-edit-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const problem = await save(area.value);
    showError(error, problem);
  } },
  h("label", { class: "rt-sr", for: id }, messages.t("editLabel")), area, error,
  h("p", { class: "rt-form-foot" },
    h("button", { type: "submit", class: "rt-submit" }, messages.t("save")),
    h("button", { type: "button", class: "rt-secondary", onclick: close },
      messages.t("cancel"))));
  keys(form, close);
  return form;
}

/** The form that tells moderators what is wrong with a comment. */
export function reportForm(messages, { send, close }) {
  serial += 1;
  const id = `rt-report-${serial}`;
  const reason = h("textarea", { name: "reason", rows: 2, id, maxlength: 1000 });
  const error = errorLine();
  const form = h("form", { class: "rt-report-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    showError(error, await send(reason.value.trim()));
  } },
  h("label", { class: "rt-field", for: id }, h("span", {}, messages.t("reportReason"))),
  reason, error,
  h("p", { class: "rt-form-foot" },
    h("button", { type: "submit", class: "rt-submit" }, messages.t("sendReport")),
    h("button", { type: "button", class: "rt-secondary", onclick: close },
      messages.t("cancel"))));
  keys(form, close);
  return form;
}
