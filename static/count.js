// Comment counts for index pages: every <span data-realtime-count="SLUG"> (or <a href="…"
// data-realtime-count="SLUG">) on the page shows "12 comments" in the reader's language.
// Loaded as <script type="module" src="https://HOST/static/count.js">; every count on the
// page comes from one request (up to 100 posts; more take one request per 100).

import { Api, baseOf, slugFromUrl } from "./api.js";
import { loadMessages, wantedLanguages } from "./i18n.js";

const BASE = baseOf(import.meta.url);
const PER_REQUEST = 100;

/** The slug an element counts: its attribute, else the path of its link (or of this page). */
function slugOf(el) {
  return el.dataset.realtimeCount || slugFromUrl(el.href || location.href);
}

async function fill() {
  const elements = [...document.querySelectorAll("[data-realtime-count]")];
  if (!elements.length) return;
  const api = new Api(BASE);
  const slugs = [...new Set(elements.map(slugOf))];
  const batches = [];
  for (let i = 0; i < slugs.length; i += PER_REQUEST) {
    batches.push(api.counts(slugs.slice(i, i + PER_REQUEST)));
  }
  const [messages, ...answers] = await Promise.all([
    loadMessages(BASE, wantedLanguages(elements[0])), ...batches]);
  if (answers.some((answer) => !answer.ok)) return;
  const counts = Object.assign({}, ...answers.map((answer) => answer.data.counts));
  for (const el of elements) {
    el.textContent = messages.t("comments", { count: counts[slugOf(el)] ?? 0 });
  }
}

fill();
