// The thread model: what one reader knows about one post's comments.
//
// Pure data: no DOM and no sockets, so the rules that keep every open page consistent
// (highest version wins, events in seq order, optimistic copies matched by client_id) can be
// tested on their own and shared by the embed and the moderator console.
//
// A big thread is known only in part: the top-level comments of the pages read so far (in
// the chosen order), each with the replies read so far. A live event about a comment outside
// that part changes the count, not the model, so what is drawn is always a correct tree.

export const APPLIED = "applied";
export const IGNORED = "ignored";
export const RESYNC = "resync";

/** A stable key for a comment, also before the server has given it an id. */
export function keyOf(comment) {
  return comment.id != null ? `id:${comment.id}` : `local:${comment.client_id}`;
}

const counted = (comment) => comment?.status === "approved";

export class Thread {
  constructor({ sort = "oldest" } = {}) {
    this.sort = sort;
    this.post = null;
    this.seq = 0;
    this.total = 0;
    this.byId = new Map();
    // Optimistic comments by client_id: shown at once, replaced when the server confirms.
    this.local = new Map();
    // The version at which a comment left the public view: a late copy must not revive it.
    this.gone = new Map();
    // The cursor of the next page of top-level comments (null: every one is known).
    this.next = null;
    // Top-level comments whose replies are known only in part: id -> {after, count}.
    this.moreReplies = new Map();
    // Set when an event changed the count by an amount the model cannot know.
    this.countUnsure = false;
  }

  /** Replace the thread with a fresh HTTP read taken at stream position `seq`. */
  load(post, comments, seq, { next = null, moreReplies = {} } = {}) {
    // A reader's own pending comments are never in a public read; they survive a reload.
    const pending = [...this.byId.values()].filter((c) => c.status === "pending");
    this.post = post;
    this.seq = seq;
    this.total = post.comment_count ?? comments.filter(counted).length;
    this.byId = new Map();
    this.moreReplies = new Map();
    this.next = next;
    this.addPage(comments, { moreReplies });
    for (const comment of pending) if (!this.byId.has(comment.id)) this.upsert(comment);
  }

  /** Add a later page (or replies, or a comment's context): the version rule absorbs repeats. */
  addPage(comments, { next, moreReplies = {} } = {}) {
    for (const comment of comments) this.upsert(comment);
    if (next !== undefined) this.next = next;
    for (const [id, more] of Object.entries(moreReplies)) {
      if (!this.moreReplies.has(Number(id))) this.moreReplies.set(Number(id), { ...more });
    }
  }

  /** Replies of a top-level comment read after its cursor; `next` null when none are left. */
  addReplies(rootId, comments, next) {
    const more = this.moreReplies.get(rootId);
    const fresh = comments.filter((c) => !this.byId.has(c.id)).length;
    for (const comment of comments) this.upsert(comment);
    if (!more) return;
    if (next == null) this.moreReplies.delete(rootId);
    else this.moreReplies.set(rootId, { after: next, count: Math.max(0, more.count - fresh) });
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
        this.changed(msg.data, msg.event === "comment.created");
        break;
      case "comment.deleted":
        this.deleted(msg.data);
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

  changed(comment, created) {
    const known = this.byId.get(comment.id);
    if (known) {
      if (known.version < comment.version) this.total += counted(comment) - counted(known);
      this.upsert(comment);
      return;
    }
    if ((this.gone.get(comment.id) ?? 0) >= comment.version) return;
    // Not known: new and approved counts one, a reappearing tombstone none; an update of a
    // comment never read (an edit, or a restore) may or may not change the count.
    if (created) this.total += counted(comment);
    else this.countUnsure = true;
    if (created && this.belongsToKnownPart(comment)) this.upsert(comment);
    else if (created) this.countHiddenReply(comment);
  }

  deleted({ id, version, tombstone }) {
    const known = this.byId.get(id);
    if (known) {
      if (known.version < version) this.total -= counted(known);
      this.remove(id, version, tombstone);
      return;
    }
    if ((this.gone.get(id) ?? 0) >= version) return;
    // A tombstone is only sent for a comment that was approved until now.
    if (tombstone) this.total -= 1;
    else this.countUnsure = true;
    if ((this.gone.get(id) ?? 0) < version) this.gone.set(id, version);
  }

  /** Whether a comment not read yet falls inside the part of the thread that is drawn. */
  belongsToKnownPart(comment) {
    if (comment.parent_id == null) {
      if (this.next == null) return true;
      return this.sort === "newest" ? comment.id > this.next : comment.id < this.next;
    }
    if (!this.byId.has(comment.parent_id)) return false;
    const more = this.moreReplies.get(this.rootOf(comment.parent_id));
    return !more || comment.id < more.after;
  }

  countHiddenReply(comment) {
    if (comment.parent_id == null || !this.byId.has(comment.parent_id)) return;
    const more = this.moreReplies.get(this.rootOf(comment.parent_id));
    if (more) more.count += 1;
  }

  rootOf(id) {
    let comment = this.byId.get(id);
    while (comment?.parent_id != null && this.byId.has(comment.parent_id)) {
      comment = this.byId.get(comment.parent_id);
    }
    return comment?.id ?? id;
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

  /** One's own comment as the server confirmed it (its live event may come before or after). */
  confirm(comment) {
    if (!this.byId.has(comment.id)) this.total += counted(comment);
    return this.upsert(comment);
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
   * order: replies by ascending id, then optimistic ones; top-level comments in the chosen
   * order, optimistic ones where a new comment goes (last, or first when newest come first).
   * A reply whose parent is not (yet) known is shown at the top level rather than lost; it
   * moves under its parent once that arrives.
   */
  tree() {
    const ordered = [...this.byId.values()].sort((a, b) => a.id - b.id);
    const children = new Map([[null, []]]);
    for (const comment of [...ordered, ...this.local.values()]) {
      const parent = this.byId.has(comment.parent_id) ? comment.parent_id : null;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(comment);
    }
    if (this.sort === "newest") children.get(null).reverse();
    return children;
  }

  /** The post's public comment count (approved comments, not tombstones or pending ones). */
  count() {
    return this.total;
  }

  /** A fresh count read at stream position `seq` (events up to it are already in it). */
  setCount(count, seq) {
    if (seq !== this.seq) return false;
    this.total = count;
    this.countUnsure = false;
    return true;
  }
}
