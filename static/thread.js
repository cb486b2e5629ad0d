// The thread model: what one reader knows about one post's comments.
//
// Pure data: no DOM and no sockets, so the rules that keep every open page consistent
// (highest version wins, events in seq order, optimistic copies matched by client_id) can be
// tested on their own and shared by the embed and the moderator console.

export const APPLIED = "applied";
export const IGNORED = "ignored";
export const RESYNC = "resync";

/** A stable key for a comment, also before the server has given it an id. */
export function keyOf(comment) {
  return comment.id != null ? `id:${comment.id}` : `local:${comment.client_id}`;
}

export class Thread {
  constructor() {
    this.post = null;
    this.seq = 0;
    this.byId = new Map();
    // Optimistic comments by client_id: shown at once, replaced when the server confirms.
    this.local = new Map();
    // The version at which a comment left the public view: a late copy must not revive it.
    this.gone = new Map();
  }

  /** Replace the thread with a fresh HTTP read (all pages) taken at stream position `seq`. */
  load(post, comments, seq) {
    // A reader's own pending comments are never in a public read; they survive a reload.
    const pending = [...this.byId.values()].filter((c) => c.status === "pending");
    this.post = post;
    this.seq = seq;
    this.byId = new Map();
    for (const comment of comments) this.upsert(comment);
    for (const comment of pending) if (!this.byId.has(comment.id)) this.upsert(comment);
  }

  /**
   * Apply one `event` message of a post channel. Returns APPLIED, IGNORED (already seen),
   * or RESYNC when events were missed and the owner must resubscribe with `since`.
   */
  applyEvent(msg) {
    if (msg.seq != null) {
      if (msg.seq <= this.seq) return IGNORED;
      if (msg.seq !== this.seq + 1) return RESYNC;
      this.seq = msg.seq;
    }
    switch (msg.event) {
      case "comment.created":
      case "comment.updated":
        this.upsert(msg.data);
        break;
      case "comment.deleted":
        this.remove(msg.data.id, msg.data.version, msg.data.tombstone);
        break;
      case "post.updated":
        this.post = msg.data;
        break;
      default:
        // Newer servers may add event types; the seq still counts, the data is not ours.
        break;
    }
    return APPLIED;
  }

  /** Store a comment unless a newer or equal version is already known. True when stored. */
  upsert(comment) {
    // The confirmation may lose the race against its own live event: either one retires
    // the optimistic copy, so the comment is never shown twice.
    if (comment.client_id) this.local.delete(comment.client_id);
    if ((this.gone.get(comment.id) ?? 0) >= comment.version) return false;
    const known = this.byId.get(comment.id);
    if (known && known.version >= comment.version) return false;
    this.byId.set(comment.id, comment);
    this.gone.delete(comment.id);
    return true;
  }

  /** A comment left public view at `version`: keep its tombstone, or drop it. */
  remove(id, version, tombstone) {
    if (tombstone) return this.upsert(tombstone);
    const known = this.byId.get(id);
    if (known && known.version >= version) return false;
    if ((this.gone.get(id) ?? 0) >= version) return false;
    this.byId.delete(id);
    this.gone.set(id, version);
    return true;
  }

  /** Show a comment being posted before the server has answered. */
  addLocal(draft) {
    this.local.set(draft.client_id, { ...draft, id: null, status: "sending", version: 0 });
  }

  /** Forget an optimistic comment the server refused. */
  dropLocal(clientId) {
    this.local.delete(clientId);
  }

  get(id) {
    return this.byId.get(id);
  }

  /**
   * The tree as a Map from parent id (null for the top level) to child comments in display
   * order: ascending ids, then optimistic ones. A reply whose parent is not (yet) known is
   * shown at the top level rather than lost; it moves under its parent once that arrives.
   */
  tree() {
    const ordered = [...this.byId.values()].sort((a, b) => a.id - b.id);
    const children = new Map([[null, []]]);
    for (const comment of [...ordered, ...this.local.values()]) {
      const parent = this.byId.has(comment.parent_id) ? comment.parent_id : null;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(comment);
    }
    return children;
  }

  /** Public comments, as the post's comment count counts them (not tombstones or pending). */
  count() {
    let n = 0;
    for (const comment of this.byId.values()) if (comment.status === "approved") n += 1;
    return n;
  }
}
