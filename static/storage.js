// What this browser remembers: edit tokens and one's own pending comments per server, the
// author's name, e-mail and website, and the chosen sort order. localStorage can throw
// (storage disabled, private modes): losing edit rights beats breaking the thread.

const KEEP_PENDING_MS = 7 * 24 * 3600 * 1000;

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // see above
  }
}

/** Edit tokens and own comments, keyed by the server's host. */
export class OwnComments {
  constructor(base) {
    this.prefix = `realtime:${new URL(base).host}:comment:`;
  }

  get(id) {
    return read(this.prefix + id);
  }

  save(comment, token, until) {
    write(this.prefix + comment.id, { token, comment, until });
  }

  forget(id) {
    write(this.prefix + id, undefined);
  }

  /** Own comments of a post still waiting for a moderator (older ones are let go). */
  pending(slug) {
    const found = [];
    try {
      for (let i = localStorage.length - 1; i >= 0; i -= 1) {
        const key = localStorage.key(i);
        if (!key?.startsWith(this.prefix)) continue;
        const entry = read(key);
        const age = Date.now() - Date.parse(entry?.comment?.created_at);
        if (!(age < KEEP_PENDING_MS)) write(key, undefined);
        else if (entry.comment.post === slug && entry.comment.status === "pending") {
          found.push(entry.comment);
        }
      }
    } catch {
      // see above
    }
    return found;
  }
}

export const author = {
  load: () => read("realtime:author") ?? {},
  save: (fields) => write("realtime:author", fields),
};

export const sortChoice = {
  load: () => read("realtime:sort"),
  save: (sort) => write("realtime:sort", sort),
};
