// The moderator console: the queue read over HTTP plus a live feed of every comment change.
//
// Served by the server itself and same-origin only: the session cookie is HttpOnly, so the
// browser sends it (and the Origin header that cookie-authenticated writes need) unasked.
// The `moderation` channel has no seq to resume from, so every (re)subscription re-reads the
// queue; the version rule merges the read with whatever the feed already delivered.

import { h } from "./dom.js";
import { Live } from "./live.js";
import { Thread } from "./thread.js";

const BASE = new URL(".", import.meta.url).href.replace(/static\/$/, "");
const api = (path) => new URL(path, BASE);
const $ = (selector) => document.querySelector(selector);

// What each status can become; `restore` undoes a removal.
const ACTIONS = {
  pending: ["approve", "reject", "spam", "delete"],
  approved: ["reject", "spam", "delete"],
  rejected: ["restore", "delete"],
  spam: ["restore", "delete"],
  deleted: ["restore"],
};

const loginForm = $(".rt-login");
const consoleView = $(".rt-console");
const queue = $(".rt-queue");
const filter = $(".rt-filter");
const consoleError = consoleView.querySelector(".rt-error");

let live = null;
let comments = new Thread();
let shown = new Set();
let notes = new Map();
let generation = 0;

function showError(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

async function json(response) {
  return response.json().catch(() => ({}));
}

function showLogin(message) {
  live?.close();
  live = null;
  consoleView.hidden = true;
  loginForm.hidden = false;
  showError(loginForm.querySelector(".rt-error"), message);
  loginForm.elements.username.focus();
}

function showConsole(username) {
  loginForm.hidden = true;
  consoleView.hidden = false;
  $(".rt-who").textContent = `Logged in as ${username}`;
  comments = new Thread();
  shown = new Set();
  notes = new Map();
  loadQueue();
  live = new Live(BASE, {
    onState: (state) => {
      $(".rt-state").hidden = state === "open";
    },
  });
  live.subscribe("moderation", {
    // Nothing to resume from: a fresh read closes whatever gap the reconnect left.
    subscribed: () => loadQueue(),
    event: (msg) => {
      comments.upsert(msg.data);
      shown.add(msg.data.id);
      render();
    },
    error: (msg) => {
      if (msg.code === "forbidden") showLogin("Your session has ended; log in again.");
      else showError(consoleError, msg.message || msg.code);
    },
  });
}

/** Read the queue for the chosen status; the list becomes exactly what the read returned. */
async function loadQueue() {
  const mine = ++generation;
  const found = [];
  for (let after = null, page = 0; page < 10; page += 1) {
    const url = api("api/moderation/queue");
    url.searchParams.set("status", filter.value);
    url.searchParams.set("limit", "500");
    if (after != null) url.searchParams.set("after", after);
    let response;
    try {
      response = await fetch(url);
    } catch {
      showError(consoleError, "Could not reach the server.");
      return;
    }
    if (response.status === 401) return showLogin("Your session has ended; log in again.");
    if (!response.ok) return showError(consoleError, (await json(response)).detail);
    const body = await response.json();
    found.push(...body.comments);
    if (body.next == null) break;
    after = body.next;
  }
  if (mine !== generation) return; // a newer read (another filter) won
  showError(consoleError, "");
  shown = new Set();
  for (const comment of found) {
    comments.upsert(comment);
    shown.add(comment.id);
  }
  render();
}

async function act(comment, action, row) {
  for (const button of row.querySelectorAll("button")) button.disabled = true;
  let response;
  try {
    response = await fetch(api(`api/moderation/comments/${comment.id}/${action}`), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      // The version makes a stale click a 409 instead of overriding another moderator.
      body: JSON.stringify({ version: comment.version }),
    });
  } catch {
    notes.set(comment.id, "Could not reach the server; try again.");
    return render();
  }
  const body = await json(response);
  if (response.status === 401) return showLogin("Your session has ended; log in again.");
  if (response.ok) {
    comments.upsert(body.comment);
    notes.delete(comment.id);
  } else if (response.status === 409 && body.comment) {
    comments.upsert(body.comment);
    notes.set(comment.id, "This comment changed meanwhile: here it is now; decide again.");
  } else {
    notes.set(comment.id, body.detail || `The server answered ${response.status}.`);
  }
  render();
}

function row(c) {
  const when = new Date(c.created_at);
  const author = c.author || {};
  const body = h("div", { class: "rt-body" });
  body.innerHTML = c.html; // sanitized by the server at write time
  const li = h("li", { class: `rt-mod-item rt-status-${c.status}`, id: `rt-m-${c.id}` },
    h("header", { class: "rt-meta" },
      h("span", { class: `rt-badge rt-badge-${c.status}` }, c.status),
      c.kind === "pingback" ? h("span", { class: "rt-kind" }, "Pingback") : null,
      h("strong", { class: "rt-author" }, author.name || "(no name)"),
      author.email ? h("span", { class: "rt-email" }, author.email) : null,
      /^https?:\/\//i.test(author.url || "")
        ? h("a", { href: author.url, rel: "nofollow ugc noopener" }, author.url) : null,
      c.ip ? h("span", { class: "rt-ip" }, c.ip) : null,
      c.reports > 0
        ? h("span", { class: "rt-reports" }, `${c.reports} report${c.reports === 1 ? "" : "s"}`)
        : null,
      h("span", {}, "on "),
      h("a", { href: new URL(`p/${encodeURIComponent(c.post)}#comment-${c.id}`, BASE).href }, c.post),
      h("time", { datetime: c.created_at, title: when.toLocaleString() }, when.toLocaleString()),
      h("span", { class: "rt-version" }, `#${c.id} v${c.version}`)),
    body,
    notes.has(c.id) ? h("p", { class: "rt-note" }, notes.get(c.id)) : null);
  const actions = (ACTIONS[c.status] || []).map((action) =>
    h("button", { type: "button", class: `rt-action rt-${action}`, "data-action": action,
      onclick: () => act(c, action, li) }, action));
  li.append(h("footer", { class: "rt-actions" }, actions));
  return li;
}

function render() {
  const list = [...shown].map((id) => comments.get(id)).filter(Boolean).sort((a, b) => b.id - a.id);
  queue.replaceChildren(...list.map(row));
  $(".rt-empty").hidden = list.length > 0;
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = loginForm.querySelector(".rt-error");
  const f = loginForm.elements;
  let response;
  try {
    response = await fetch(api("api/auth/login"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: f.username.value, password: f.password.value }),
    });
  } catch {
    return showError(error, "Could not reach the server.");
  }
  if (!response.ok) return showError(error, (await json(response)).detail);
  f.password.value = "";
  await boot();
});

$(".rt-logout").addEventListener("click", async () => {
  await fetch(api("api/auth/logout"), { method: "POST" }).catch(() => null);
  showLogin("");
});

filter.addEventListener("change", () => loadQueue());

/** The session decides which view to show: the cookie itself is out of reach (HttpOnly). */
async function boot() {
  const response = await fetch(api("api/auth/me")).catch(() => null);
  if (response?.ok) showConsole((await response.json()).moderator.username);
  else showLogin("");
}

boot();
