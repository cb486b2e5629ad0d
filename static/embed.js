// The embeddable live thread: every <div data-realtime-post="slug"> on the page becomes one.
//
// Loaded as <script type="module" src="https://comments.example/static/embed.js">, possibly
// from another origin, so every URL is derived from this script's own URL. Each thread lives
// in an open shadow root with its own stylesheet: the host page's CSS cannot break it and it
// cannot change the host page; CSS custom properties (--rt-*) theme it from outside.
//
// Options on the element: data-realtime-post (the slug; empty: from the canonical URL),
// data-realtime-theme (light, dark, auto), data-realtime-lang, data-realtime-sort (oldest,
// newest). The widget reports data-realtime-state (live, reconnecting, offline) and
// data-realtime-transport (websocket, sse) on the element.

import { Api, baseOf, canonicalUrl, slugFromUrl } from "./api.js";
import { h } from "./dom.js";
import { loadMessages, wantedLanguages } from "./i18n.js";
import { OwnComments, sortChoice } from "./storage.js";
import { Transport } from "./transport.js";
import { PAGE, REPLIES, ThreadView } from "./view.js";
// The modules below are imported by view.js, transport.js and sse.js; naming them here too
// lets the browser ask for the whole graph in one round instead of one round per level.
import "./cards.js";
import "./forms.js";
import "./live.js";
import "./notices.js";
import "./sse.js";
import "./thread.js";

const BASE = baseOf(import.meta.url);
const STYLES_WITHIN_MS = 3000;
const THEMES = new Set(["light", "dark", "auto"]);
const api = new Api(BASE);
const own = new OwnComments(BASE);
const views = new Set();
let transport = null;

/** The page's one live connection, shared by every thread on it. */
function shared() {
  transport ??= new Transport(BASE, {
    onState: (state, kind) => views.forEach((view) => view.connection(state, kind)),
  });
  return transport;
}

/** The widget's stylesheet inside its shadow root; resolves once applied (or given up on). */
function styles(shadow) {
  const link = h("link", { rel: "stylesheet", href: new URL("static/embed.css", BASE) });
  const applied = new Promise((resolve) => {
    link.addEventListener("load", resolve);
    link.addEventListener("error", resolve);
    setTimeout(resolve, STYLES_WITHIN_MS);
  });
  shadow.append(link);
  return applied;
}

async function mount(host) {
  if (host.shadowRoot) return;
  const shadow = host.attachShadow({ mode: "open" });
  const theme = THEMES.has(host.dataset.realtimeTheme) ? host.dataset.realtimeTheme : "auto";
  // Hidden until styled: an unstyled flash would look broken on a stranger's page.
  const shell = h("div", { class: "rt-root", "data-theme": theme, hidden: true });
  const styled = styles(shadow);
  shadow.append(shell);
  const slug = host.dataset.realtimePost || slugFromUrl(canonicalUrl());
  const sort = sortChoice.load()
    ?? (host.dataset.realtimeSort === "newest" ? "newest" : "oldest");
  // The thread, the catalog and the stylesheet load side by side.
  const firstPage = api.thread(slug, { sort, limit: PAGE, replies: REPLIES });
  const messages = await loadMessages(BASE, wantedLanguages(host));
  shell.lang = messages.locale;
  const view = new ThreadView({ host, shell, slug, messages, api, transport: shared(), own,
    auto: true, sort, firstPage });
  views.add(view);
  const shown = view.start();
  await styled;
  shell.hidden = false;
  if (!(await shown)) return;
  view.connection(shared().state, shared().kind);
  host.dataset.realtimeReady = "";
  // After the frame that paints it: what a reader would call "there".
  requestAnimationFrame(() => setTimeout(() => performance.mark("realtime:ready")));
}

for (const host of document.querySelectorAll("[data-realtime-post]")) mount(host);
setInterval(() => views.forEach((view) => view.tick()), 30000);
