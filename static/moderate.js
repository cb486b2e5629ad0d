// The moderator console: log in, then the live feed of every comment on every post, and the
// panes for settings, bans, posts, the audit log and the account.
//
// Served at /moderate by the server itself, same-origin only: the session cookie is HttpOnly,
// so the browser sends it (and the Origin header that cookie-authenticated writes need)
// unasked. The `moderation` channel has no seq to resume from, so every (re)subscription
// re-reads the feed; the version rule merges the read with what the channel delivers
// during it.

import { AccountPane } from "./console/account.js";
import { BASE, call, whenSignedOut } from "./console/api.js";
import { BansPane } from "./console/bans.js";
import { FILTERS, FeedView } from "./console/feedview.js";
import { LogPane } from "./console/log.js";
import { PostsPane } from "./console/posts.js";
import { SettingsPane } from "./console/settings.js";
import { Live } from "./live.js";

const $ = (selector) => document.querySelector(selector);
const pane = (name) => $(`[data-pane="${name}"]`);
const loginForm = $(".rt-login");
const keysDialog = $(".rt-keys");
const announcer = $(".rt-announce");
const posts = new Map();

let live = null;
let started = false;

function announce(text) {
  // Emptied first so the same words twice are still spoken twice.
  announcer.textContent = "";
  requestAnimationFrame(() => { announcer.textContent = text; });
}

const feed = new FeedView(pane("feed"), { posts, announce,
  onFilter: (filter) => go("feed", filter) });
const panes = {
  feed,
  settings: new SettingsPane(pane("settings")),
  bans: new BansPane(pane("bans"), { announce }),
  posts: new PostsPane(pane("posts"), { posts, announce,
    openFeed: (slug) => go("feed", { status: "all", post: slug }) }),
  log: new LogPane(pane("log")),
  account: new AccountPane(pane("account"), { announce, signedOut: showLogin }),
};

/** The route in the address: `#/feed?status=pending&post=slug`, `#/settings`, ... */
function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const params = new URLSearchParams(query);
  const name = path in panes ? path : "feed";
  const status = FILTERS.includes(params.get("status")) ? params.get("status") : "pending";
  return { name, filter: { status, post: params.get("post") || "" } };
}

function go(name, filter) {
  const query = name === "feed" ? `?${new URLSearchParams({ status: filter.status,
    ...(filter.post ? { post: filter.post } : {}) })}` : "";
  location.hash = `#/${name}${query}`;
}

async function show() {
  if (!started) return;
  const { name, filter } = route();
  for (const other of Object.keys(panes)) pane(other).hidden = other !== name;
  for (const link of document.querySelectorAll(".rt-nav a")) {
    if (link.hash === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${name === "feed" ? "Feed" : name[0].toUpperCase() + name.slice(1)}`
    + " · Moderation · realtime";
  if (name === "feed") await feed.open(filter);
  else await panes[name].show();
}

function showLogin(message = "") {
  started = false;
  live?.close();
  live = null;
  for (const el of document.querySelectorAll(".rt-pane, .rt-nav, .rt-who, .rt-logout, .rt-live")) {
    el.hidden = true;
  }
  loginForm.hidden = false;
  const error = loginForm.querySelector(".rt-error");
  error.textContent = message;
  error.hidden = !message;
  loginForm.elements.username.focus();
}

function showConsole(username) {
  loginForm.hidden = true;
  started = true;
  for (const el of document.querySelectorAll(".rt-nav, .rt-who, .rt-logout, .rt-live")) {
    el.hidden = false;
  }
  $(".rt-who").textContent = `Logged in as ${username}`;
  call("api/posts", { params: { limit: 500 } }).then((page) => {
    const select = pane("feed").querySelector("select[name=post]");
    for (const post of page.posts) {
      posts.set(post.slug, post);
      if (![...select.options].some((o) => o.value === post.slug)) {
        select.append(new Option(post.title, post.slug));
      }
    }
    select.value = route().filter.post;
  }).catch(() => null);
  const state = $(".rt-live");
  const showLive = (on, text = "Connecting…") => {
    state.textContent = on ? "Live" : text;
    state.dataset.state = on ? "open" : "closed";
  };
  showLive(false);
  // "Live" once the server has the subscription, not when the socket opens: until then a
  // change reaches no one.
  live = new Live(BASE, {
    onState: (now) => { if (now !== "open") showLive(false, "Reconnecting…"); },
  });
  // The channel has no seq: every subscribe, the first too (the first read may have run
  // before it), and every reset (the server's listener reconnected) is followed by a fresh
  // read of the newest page, merged with what the channel brings meanwhile.
  const catchUp = () => {
    if (route().name === "feed") feed.refresh();
  };
  live.subscribe("moderation", {
    subscribed: () => {
      showLive(true);
      catchUp();
    },
    reset: catchUp,
    // Other panes do not show the feed; opening it reads it afresh.
    event: (msg) => {
      if (route().name === "feed") feed.apply(msg.data);
    },
    error: (msg) => {
      if (msg.code === "forbidden") showLogin("Your session has ended; log in again.");
    },
  });
  show();
}

whenSignedOut(() => {
  if (started) showLogin("Your session has ended; log in again.");
});
window.addEventListener("hashchange", () => show());

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = loginForm.elements;
  const error = loginForm.querySelector(".rt-error");
  const button = loginForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const answer = await call("api/auth/login", { method: "POST", body: {
      username: f.username.value, password: f.password.value } });
    f.password.value = "";
    showConsole(answer.moderator.username);
  } catch (failure) {
    error.textContent = failure.status === 429
      ? "Too many failed logins from here; wait a while and try again."
      : failure.message;
    error.hidden = false;
    f.password.focus();
  } finally {
    button.disabled = false;
  }
});

$(".rt-logout").addEventListener("click", async () => {
  await call("api/auth/logout", { method: "POST" }).catch(() => null);
  showLogin("");
});

$(".rt-keys-button").addEventListener("click", () => keysDialog.showModal());

const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

document.addEventListener("keydown", (event) => {
  if (!started || event.ctrlKey || event.metaKey || event.altKey || keysDialog.open) return;
  if (TYPING.has(event.target.tagName) || event.target.isContentEditable) return;
  if (event.key === "?") {
    event.preventDefault();
    keysDialog.showModal();
    return;
  }
  if (route().name !== "feed" || event.shiftKey) return;
  let handled = true;
  if (event.key === "j") feed.move(1);
  else if (event.key === "k") feed.move(-1);
  else handled = "arsdb".includes(event.key) && event.key.length === 1 && feed.key(event.key);
  if (handled) event.preventDefault();
});

/** The session decides which view to show: the cookie itself is out of reach (HttpOnly). */
async function boot() {
  try {
    const answer = await call("api/auth/me");
    showConsole(answer.moderator.username);
  } catch {
    showLogin("");
  }
}

boot();
