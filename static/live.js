// One WebSocket to the server carrying every channel this page follows.
//
// The socket is the only part that may fail at any moment, so it owns all the recovery:
// app-level pings (browsers cannot see protocol pings), reconnects with backoff, and
// resubscribing every channel with `since` so the owners miss nothing across a reconnect.

const MAX_DELAY = 30000;
// A socket still not open after this long is treated as blocked (some proxies black-hole it).
const OPEN_WITHIN = 8000;

/** The `/ws` URL of a server whose base URL is `base` (which may carry a path prefix). */
export function socketUrl(base) {
  const url = new URL("ws", base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function report(error) {
  // A broken handler must not stop the rest of a batch, but must not vanish either.
  if (globalThis.reportError) globalThis.reportError(error);
  else console.error(error);
}

export class Live {
  /**
   * `onState(state)` hears "open" and "closed". Each channel's handler may define
   * `since()` (the last applied seq, or undefined for "from now on") and one method per
   * server message type: subscribed, event, reset, presence, error.
   * `onUnavailable()`, when given, is called instead of reconnecting when a socket fails
   * before the server ever sent a message on this page: WebSockets look blocked.
   */
  constructor(base, { pingEvery = 25000, pongWithin = 10000, onState = () => {},
    onUnavailable = null } = {}) {
    this.url = socketUrl(base);
    this.pingEvery = pingEvery;
    this.pongWithin = pongWithin;
    this.onState = onState;
    this.onUnavailable = onUnavailable;
    this.heard = false;
    this.channels = new Map();
    this.resubscribing = new Set();
    this.ws = null;
    this.attempt = 0;
    this.pingId = 0;
    this.awaiting = null;
    this.timers = {};
    this.closed = false;
    globalThis.addEventListener?.("online", () => this.ws || this.reconnect(0));
    this.connect();
  }

  subscribe(channel, handler) {
    this.channels.set(channel, handler);
    this.sendSubscribe(channel);
  }

  unsubscribe(channel) {
    if (this.channels.delete(channel)) this.send({ op: "unsubscribe", channel });
  }

  /** Subscribe again from the owner's `since`: after a seq gap or a reset. */
  resubscribe(channel) {
    if (!this.channels.has(channel) || this.resubscribing.has(channel)) return;
    this.resubscribing.add(channel);
    this.send({ op: "unsubscribe", channel });
    this.sendSubscribe(channel);
  }

  close() {
    this.closed = true;
    this.stopTimers();
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
  }

  get open() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  sendSubscribe(channel) {
    const since = this.channels.get(channel).since?.();
    this.send(since == null ? { op: "subscribe", channel } : { op: "subscribe", channel, since });
  }

  send(op) {
    // While closed, nothing is queued: opening the socket subscribes every channel anew.
    if (this.open) this.ws.send(JSON.stringify(op));
  }

  connect() {
    if (this.closed) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.unavailable();
      return;
    }
    this.ws = ws;
    this.timers.open = setTimeout(() => this.abandon(), OPEN_WITHIN);
    ws.onopen = () => {
      clearTimeout(this.timers.open);
      this.resubscribing.clear();
      for (const channel of this.channels.keys()) this.sendSubscribe(channel);
      this.timers.ping = setInterval(() => this.ping(), this.pingEvery);
      this.onState("open");
    };
    ws.onmessage = (e) => {
      this.heard = true;
      this.receive(e.data);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopTimers();
      if (!this.heard && this.onUnavailable) {
        this.unavailable();
        return;
      }
      this.onState("closed");
      // 1001 is a server restarting on purpose: its peers are ready, waiting helps nobody.
      this.reconnect(e.code === 1001 ? 0 : this.backoff());
    };
  }

  /** Give up on WebSockets for this page and let the owner use another transport. */
  unavailable() {
    this.close();
    this.onUnavailable();
  }

  backoff() {
    const ceiling = Math.min(MAX_DELAY, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    // Jitter spreads the reconnects of many readers after one server restart.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  reconnect(delay) {
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  ping() {
    if (this.awaiting != null) return;
    this.pingId += 1;
    this.awaiting = this.pingId;
    this.send({ op: "ping", id: this.pingId });
    this.timers.pong = setTimeout(() => this.abandon(), this.pongWithin);
  }

  /** The connection looks dead (no pong): do not wait for a close handshake that may never end. */
  abandon() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.stopTimers();
    ws.close();
    if (!this.heard && this.onUnavailable) {
      this.unavailable();
      return;
    }
    this.onState("closed");
    this.reconnect(this.backoff());
  }

  stopTimers() {
    clearTimeout(this.timers.open);
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
    clearTimeout(this.timers.reconnect);
    this.awaiting = null;
  }

  receive(text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return;
    }
    // Under load the server batches several messages into one array frame.
    for (const msg of Array.isArray(data) ? data : [data]) {
      try {
        this.dispatch(msg);
      } catch (error) {
        report(error);
      }
    }
  }

  /** The one place where server messages are told apart. */
  dispatch(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "pong") {
      if (msg.id === this.awaiting) {
        clearTimeout(this.timers.pong);
        this.awaiting = null;
      }
      return;
    }
    // Only a working subscription proves the server is healthy enough to reset backoff.
    if (msg.type === "subscribed") this.attempt = 0;
    if (["subscribed", "reset", "error"].includes(msg.type) && msg.code !== "not_subscribed") {
      this.resubscribing.delete(msg.channel);
    }
    deliver(this.channels.get(msg.channel), msg);
  }
}

/** Hand one stream message of a channel to its handler (shared by the WebSocket and SSE). */
export function deliver(handler, msg) {
  switch (msg.type) {
    case "subscribed":
      handler?.subscribed?.(msg);
      break;
    case "event":
      handler?.event?.(msg);
      break;
    case "reset":
      // The server dropped the subscription; the owner reloads and subscribes anew.
      handler?.reset?.(msg);
      break;
    case "presence":
      handler?.presence?.(msg);
      break;
    case "error":
      // The answer to resubscribe's defensive unsubscribe after the server dropped a channel.
      if (msg.code === "not_subscribed") break;
      if (handler?.error) handler.error(msg);
      else console.warn("realtime:", msg.code, msg.message);
      break;
    default:
      // Unknown types come from newer servers; ignoring them keeps old clients working.
      break;
  }
}
