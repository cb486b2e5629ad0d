// The same channels over Server-Sent Events, for networks that block WebSockets.
//
// One EventSource per post (`GET /api/posts/{slug}/events?since=N`). Every stream message
// arrives as one SSE message whose data is the JSON the socket would send; `event` messages
// carry `id: seq`, so the browser's own reconnect resumes with Last-Event-ID and the server
// replays exactly what was missed. After a `reset` the server ends the stream: the owner
// reloads and this opens a new one from the new seq.

import { deliver } from "./live.js";

const MAX_DELAY = 30000;

export class SseLive {
  /** Same interface as Live: subscribe, unsubscribe, resubscribe; `onState` open/closed. */
  constructor(base, { onState = () => {} } = {}) {
    this.base = base;
    this.onState = onState;
    this.channels = new Map();
    this.sources = new Map();
    this.attempts = new Map();
    this.timers = new Map();
    this.state = null;
  }

  subscribe(channel, handler) {
    this.channels.set(channel, handler);
    this.open(channel);
  }

  unsubscribe(channel) {
    this.channels.delete(channel);
    this.shut(channel);
  }

  /** A new stream from the owner's `since`: after a seq gap or a reset. */
  resubscribe(channel) {
    if (this.channels.has(channel)) this.open(channel);
  }

  close() {
    for (const channel of [...this.sources.keys()]) this.shut(channel);
    this.channels.clear();
  }

  open(channel) {
    this.shut(channel);
    const handler = this.channels.get(channel);
    const slug = channel.replace(/^post:/, "");
    const url = new URL(`api/posts/${encodeURIComponent(slug)}/events`, this.base);
    const since = handler.since?.();
    if (since != null) url.searchParams.set("since", since);
    const source = new EventSource(url);
    this.sources.set(channel, source);
    source.onopen = () => this.report();
    source.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg.type === "subscribed") this.attempts.set(channel, 0);
      // The server ends the stream after a reset; the browser must not resume it.
      if (msg.type === "reset") this.shut(channel);
      deliver(handler, msg);
    };
    source.onerror = () => {
      // CONNECTING: the browser retries by itself with Last-Event-ID. CLOSED: it gave up
      // (an error answer), so we try again later from the owner's since.
      if (source.readyState === EventSource.CLOSED && this.sources.get(channel) === source) {
        this.sources.delete(channel);
        const attempt = this.attempts.get(channel) ?? 0;
        this.attempts.set(channel, attempt + 1);
        const ceiling = Math.min(MAX_DELAY, 1000 * 2 ** attempt);
        this.timers.set(channel, setTimeout(() => this.channels.has(channel)
          && this.open(channel), ceiling / 2 + Math.random() * (ceiling / 2)));
      }
      this.report();
    };
  }

  shut(channel) {
    clearTimeout(this.timers.get(channel));
    this.sources.get(channel)?.close();
    this.sources.delete(channel);
  }

  /** Open while every stream is open; closed as soon as one is not. */
  report() {
    const open = this.sources.size > 0
      && [...this.sources.values()].every((s) => s.readyState === EventSource.OPEN);
    const state = open ? "open" : "closed";
    if (state !== this.state) {
      this.state = state;
      this.onState(state);
    }
  }
}
