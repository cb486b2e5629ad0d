// The settings pane: the moderation policy every node applies to the next comment.
//
// Word lists are typed one per line or separated by commas; the server lowercases and trims
// them. Saving sends the whole form and shows what the server kept.

import { call, fieldErrors } from "./api.js";

/** Words typed one per line or comma-separated, without blanks. */
export function words(text) {
  return text.split(/[\n,]/).map((w) => w.trim()).filter(Boolean);
}

function number(input) {
  return input.value.trim() === "" ? NaN : Number(input.value);
}

export class SettingsPane {
  constructor(root) {
    this.form = root.querySelector("form");
    this.error = root.querySelector(".rt-error");
    this.saved = root.querySelector(".rt-saved");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
  }

  async show() {
    try {
      this.fill(await call("api/moderation/settings"));
    } catch (error) {
      this.showError(error.message);
    }
  }

  fill(policy) {
    const f = this.form.elements;
    f.hold_words.value = policy.hold_words.join("\n");
    f.block_words.value = policy.block_words.join("\n");
    f.max_links.value = policy.max_links;
    f["flood.min_interval_s"].value = policy.flood.min_interval_s;
    f["flood.max_per_10_min"].value = policy.flood.max_per_10_min;
    f.edit_window_s.value = policy.edit_window_s;
    f.default_moderation.value = policy.default_moderation;
    f.trusted_authors.checked = policy.trusted_authors;
  }

  async save() {
    const f = this.form.elements;
    for (const input of this.form.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
    }
    this.saved.textContent = "";
    const body = {
      hold_words: words(f.hold_words.value),
      block_words: words(f.block_words.value),
      max_links: number(f.max_links),
      edit_window_s: number(f.edit_window_s),
      default_moderation: f.default_moderation.value,
      trusted_authors: f.trusted_authors.checked,
      flood: { min_interval_s: number(f["flood.min_interval_s"]),
        max_per_10_min: number(f["flood.max_per_10_min"]) },
    };
    const bad = [["max_links", body.max_links], ["edit_window_s", body.edit_window_s],
      ["flood.min_interval_s", body.flood.min_interval_s],
      ["flood.max_per_10_min", body.flood.max_per_10_min]]
      .filter(([, value]) => !Number.isInteger(value) || value < 0).map(([name]) => name);
    if (bad.length) {
      for (const name of bad) f[name].setAttribute("aria-invalid", "true");
      f[bad[0]].focus();
      return this.showError("Limits are whole numbers, 0 or more.");
    }
    try {
      this.fill(await call("api/moderation/settings", { method: "PUT", body }));
      this.showError("");
      this.saved.textContent = "Saved. The next comment is judged by these settings.";
    } catch (error) {
      for (const field of fieldErrors(error).keys()) {
        f[field.split(".").slice(0, 2).join(".")]?.setAttribute("aria-invalid", "true");
      }
      this.showError(error.message);
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }
}
