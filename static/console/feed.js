// The console's feed model: the comments of one filter, newest first. Pure data, no DOM.
//
// `order` holds the ids that match the filter, descending. Everything from the newest comment
// down to `floor` has been read from the server, so a change to a comment at or above the
// floor lands in its place at once, and one below it is left for "Load older" to bring. A
// change costs a binary search and one splice, however many comments are loaded.
//
// Until the first page arrives there is no floor yet: a change heard meanwhile may or may not
// be in that page, so it waits in `early` and is merged after the page by the version rule.

export const FILTERS = ["pending", "reported", "approved", "spam", "rejected", "deleted", "all"];

/** Whether a comment belongs in the view of `filter` ({status, post}). */
export function matches(filter, comment) {
  if (filter.post && comment.post !== filter.post) return false;
  switch (filter.status) {
    case "all":
      return true;
    case "reported":
      return comment.status === "approved" && comment.reports > 0;
    default:
      return comment.status === filter.status;
  }
}

function sameContext(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class Feed {
  constructor(filter) {
    this.filter = filter;
    this.byId = new Map();
    this.order = [];
    this.floor = Infinity;
    this.complete = false;
    this.early = new Map();
    this.heard = null;
  }

  /** Whether the first page has arrived. */
  get started() {
    return this.early == null;
  }

  get size() {
    return this.order.length;
  }

  /** Where `id` is, or would go, in `order`: {index, found}. */
  locate(id) {
    let low = 0;
    let high = this.order.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.order[mid] > id) low = mid + 1;
      else high = mid;
    }
    return { index: low, found: this.order[low] === id };
  }

  indexOf(id) {
    const { index, found } = this.locate(id);
    return found ? index : -1;
  }

  /** A page read from the server (newest first, older than everything loaded so far). */
  addPage(comments, next) {
    for (const comment of comments) this.floor = Math.min(this.floor, comment.id);
    if (next == null) {
      this.complete = true;
      this.floor = 0;
    } else {
      this.floor = Math.min(this.floor, next);
    }
    const early = this.early ?? new Map();
    this.early = null;
    for (const comment of comments) this.upsert(comment);
    for (const comment of early.values()) this.upsert(comment);
  }

  /**
   * One comment as the server has it now (a live event, an action's answer, a refresh).
   * The highest version wins; a copy with the same version may still bring the context.
   * Returns {was, now}: its index in `order` before and after (-1 when absent), or null
   * when nothing changed (or when it waits for the first page).
   */
  upsert(comment) {
    if (!this.started) {
      const heard = this.early.get(comment.id);
      if (!heard || heard.version <= comment.version) this.early.set(comment.id, comment);
      return null;
    }
    this.heard?.add(comment.id);
    const known = this.byId.get(comment.id);
    if (known && known.version > comment.version) return null;
    if (known && known.version === comment.version && (!comment.context
      || (!known.contextStale && sameContext(known.context, comment.context)))) return null;
    const merged = { ...comment, context: comment.context ?? known?.context };
    // A newer version without context keeps the old one to show, but it may be out of date.
    merged.contextStale = !comment.context;
    const was = this.indexOf(comment.id);
    const belongs = matches(this.filter, merged) && (this.complete || comment.id >= this.floor);
    if (!belongs && was < 0 && !known) return null;
    this.byId.set(comment.id, merged);
    if (belongs && was < 0) {
      const { index } = this.locate(comment.id);
      this.order.splice(index, 0, comment.id);
      return { was, now: index };
    }
    if (!belongs && was >= 0) {
      this.order.splice(was, 1);
      return { was, now: -1 };
    }
    return { was, now: was };
  }

  /** A comment leaves the model (see `rebase`): {was, now: -1}, or null when not in `order`. */
  remove(id) {
    this.byId.delete(id);
    const was = this.indexOf(id);
    if (was < 0) return null;
    this.order.splice(was, 1);
    return { was, now: -1 };
  }

  /** Note which comments change from now on, until `rebase`: a fresh read of the first
   * page is on its way while the model keeps serving the entries on screen. */
  listen() {
    this.heard = new Set();
  }

  /**
   * The fresh first page has come: the range it covers becomes the model's, so the ids to
   * forget are returned (the caller removes each with `remove`, then upserts the page):
   * those in that range the page no longer holds, unless a live change heard during the
   * read says more than the page can, and every older one, which "Load older" reads afresh.
   */
  rebase(comments, next) {
    const floor = next == null ? 0 : Math.min(next, ...comments.map((c) => c.id));
    const fresh = new Set(comments.map((c) => c.id));
    const heard = this.heard ?? new Set();
    this.heard = null;
    this.floor = floor;
    this.complete = next == null;
    return [...this.byId.keys()].filter((id) => id < floor || (!fresh.has(id) && !heard.has(id)));
  }

  get(id) {
    return this.byId.get(id);
  }

  /** The comment at position `index` of the view. */
  at(index) {
    return this.byId.get(this.order[index]);
  }
}
