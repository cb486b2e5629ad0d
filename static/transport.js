// The page's one live connection, shared by every thread on it: a WebSocket, or Server-Sent
// Events when WebSockets turn out to be blocked. Owners see one interface and three states.

import { Live } from "./live.js";
import { SseLive } from "./sse.js";

export class Transport {
  /** `onState(state, kind)`: state is live, reconnecting or offline; kind websocket or sse. */
  constructor(base, { onState = () => {} } = {}) {
    this.base = base;
    this.onState = onState;
    this.connected = false;
    this.kind = "websocket";
    this.live = new Live(base, {
      onState: (state) => this.changed(state === "open"),
      onUnavailable: () => this.fallBack(),
    });
    globalThis.addEventListener?.("online", () => this.changed(this.connected));
    globalThis.addEventListener?.("offline", () => this.changed(this.connected));
  }

  get state() {
    // A browser that knows it is offline is believed over a socket that has not noticed yet.
    if (navigator.onLine === false) return "offline";
    return this.connected ? "live" : "reconnecting";
  }

  changed(connected) {
    this.connected = connected;
    this.onState(this.state, this.kind);
  }

  /** WebSockets never worked on this page: carry every subscription over to SSE. */
  fallBack() {
    const channels = this.live.channels;
    this.kind = "sse";
    this.live = new SseLive(this.base, { onState: (state) => this.changed(state === "open") });
    for (const [channel, handler] of channels) this.live.subscribe(channel, handler);
    this.changed(false);
  }

  subscribe(channel, handler) {
    this.live.subscribe(channel, handler);
  }

  unsubscribe(channel) {
    this.live.unsubscribe(channel);
  }

  resubscribe(channel) {
    this.live.resubscribe(channel);
  }
}
