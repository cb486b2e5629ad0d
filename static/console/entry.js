// One entry of the feed: the comment as readers see it, and around it everything a moderator
// decides by (where it was posted, what it answers, who wrote it and their history, what
// readers reported, why the rules held it), with the actions its status allows.
//
// Everything a commenter typed becomes text; only the body is HTML, rendered and sanitized by
// the server when it was written.

import { h } from "../dom.js";
import { BASE } from "./api.js";

// What each status can become, in the order the buttons show.
const ACTIONS = {
  pending: ["approve", "reject", "spam", "delete"],
  approved: ["reject", "spam", "delete"],
  rejected: ["restore", "spam", "delete"],
  spam: ["restore", "delete"],
  deleted: ["restore"],
};
export const LABELS = { approve: "Approve", reject: "Reject", spam: "Spam", delete: "Delete",
  restore: "Restore" };
const STATUS_NAMES = { pending: "Pending", approved: "Approved", spam: "Spam",
  rejected: "Rejected", deleted: "Deleted" };
const BAN_KINDS = { email: "E-mail", ip: "IP address", name: "Name" };

/** The actions a comment's status allows; approving a reported comment keeps it and
 * dismisses its reports. */
export function actionsFor(comment) {
  const found = ACTIONS[comment.status] || [];
  return comment.status === "approved" && comment.reports > 0 ? ["approve", ...found] : found;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A held comment's reasons as moderators read them. */
export function reasonText(reason) {
  switch (reason.rule) {
    case "hold_word":
      return `Hold word “${reason.word}”`;
    case "block_word":
      return `Block word “${reason.word}”`;
    case "links":
      return `${plural(reason.count, "link")} (limit ${reason.limit})`;
    case "pre_moderation":
      return "Pre-moderated thread";
    case "shadow_ban":
      return "Author is shadow-banned";
    default: {
      const { rule, ...figures } = reason;
      const detail = Object.entries(figures).map(([k, v]) => `${k} ${v}`).join(", ");
      return detail ? `${rule}: ${detail}` : String(rule);
    }
  }
}

/** Where the comment is on the site: the post's own page when known, else the demo page. */
export function permalink(comment, post) {
  let page = null;
  try {
    page = new URL(post?.url);
  } catch {
    // No URL (or an unusable one from an import): the server's own page of the post.
  }
  if (!/^https?:$/.test(page?.protocol)) {
    page = new URL(`p/${encodeURIComponent(comment.post)}`, BASE);
  }
  page.hash = `comment-${comment.id}`;
  return page.href;
}

function when(iso) {
  const date = new Date(iso);
  return h("time", { datetime: iso, title: date.toLocaleString() },
    date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }));
}

function banText(ban) {
  const until = ban.expires_at ? `until ${new Date(ban.expires_at).toLocaleString()}` : "forever";
  return `${ban.shadow ? "Shadow ban" : "Ban"} by ${BAN_KINDS[ban.kind].toLowerCase()}, ${until}`;
}

function authorCard(comment) {
  const author = comment.author || {};
  const history = comment.context?.author;
  const rows = [
    ["E-mail", author.email ? h("span", { class: "rt-mono" }, author.email) : "none"],
    ["Website", /^https?:\/\//i.test(author.url || "")
      ? h("a", { href: author.url, rel: "nofollow ugc noopener noreferrer" }, author.url)
      : "none"],
    ["IP", comment.ip ? h("span", { class: "rt-mono" }, comment.ip) : "unknown"],
  ];
  if (history) {
    rows.push(["History", `${history.approved} approved · ${history.rejected} rejected · `
      + `${history.spam} spam`
      + (history.pending ? ` · ${history.pending} pending` : "")]);
    rows.push(["Bans", history.bans.length
      ? h("ul", { class: "rt-bans" }, history.bans.map((b) => h("li", {}, banText(b))))
      : "none"]);
  }
  return h("dl", { class: "rt-card" },
    rows.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))));
}

function where(comment, posts) {
  const post = comment.context?.post || posts.get(comment.post);
  const parent = comment.context?.parent;
  return h("p", { class: "rt-where" },
    "On ",
    h("a", { href: permalink(comment, post) }, post?.title || comment.post),
    parent ? [" · reply to ", h("strong", {}, parent.author.name || "(no name)"),
      h("q", { class: "rt-excerpt" }, parent.excerpt)] : null,
    comment.parent_id && !parent && comment.context ? " · reply" : null);
}

function listBlock(cls, title, items) {
  if (!items.length) return null;
  return h("div", { class: cls }, h("strong", {}, title), h("ul", {}, items.map((i) =>
    h("li", {}, i))));
}

/**
 * The entry of `comment`. `view` gives `posts` (slug → post), and per entry `note` (a message
 * for the moderator), `busy` (an action is under way), and the position in the feed.
 */
export function entryNode(comment, view) {
  const id = `rt-m-${comment.id}`;
  const body = h("div", { class: "rt-body" });
  body.innerHTML = comment.html; // sanitized by the server at write time
  const reports = comment.context?.reports || [];
  const actions = actionsFor(comment).map((action) => h("button", {
    type: "button", class: `rt-act rt-act-${action}`, "data-action": action,
    disabled: view.busy,
  }, LABELS[action]));
  actions.push(h("button", { type: "button", class: "rt-act rt-act-ban", "data-action": "ban",
    "aria-expanded": view.banOpen ? "true" : "false", "aria-controls": `${id}-ban`,
    disabled: view.busy }, "Ban author"));
  return h("article", {
    class: `rt-entry rt-s-${comment.status}`, id, tabindex: view.current ? "0" : "-1",
    "data-id": comment.id, "aria-labelledby": `${id}-h`,
    "aria-posinset": view.position + 1, "aria-setsize": view.setsize,
  },
  h("header", { class: "rt-entry-head", id: `${id}-h` },
    h("span", { class: `rt-badge rt-badge-${comment.status}` }, STATUS_NAMES[comment.status]
      || comment.status),
    comment.kind === "pingback" ? h("span", { class: "rt-badge" }, "Pingback") : null,
    comment.reports > 0 ? h("span", { class: "rt-badge rt-badge-reported" },
      plural(comment.reports, "report")) : null,
    h("strong", { class: "rt-author" }, comment.author?.name || "(no name)"),
    when(comment.created_at),
    comment.edited_at ? h("span", { class: "rt-quiet" }, "edited") : null,
    h("span", { class: "rt-quiet rt-mono" }, `#${comment.id} v${comment.version}`)),
  h("div", { class: "rt-entry-grid" },
    h("div", { class: "rt-entry-main" },
      where(comment, view.posts),
      body,
      listBlock("rt-held", "Why it was held", (comment.reasons || []).map(reasonText)),
      listBlock("rt-reports", reports.length === 1 ? "Report" : `${reports.length} reports`,
        reports.map((r) => h("q", {}, r.reason)))),
    authorCard(comment)),
  view.note ? h("p", { class: "rt-note", role: "status" }, view.note) : null,
  h("div", { class: "rt-entry-actions", role: "group", "aria-label": "Actions" }, actions));
}

/** The "Ban author" form of an entry; `onBan({kind, shadow, duration, reason})`. */
export function banForm(comment, { onBan, onCancel }) {
  const id = `rt-m-${comment.id}-ban`;
  const kinds = Object.entries(BAN_KINDS).map(([kind, label]) => {
    const has = kind === "email" ? comment.author?.email : kind === "ip" ? comment.ip : true;
    return h("label", { class: "rt-choice" },
      h("input", { type: "radio", name: "kind", value: kind, disabled: !has }), label);
  });
  const form = h("form", { class: "rt-ban-form", id, "aria-label": "Ban author" },
    h("fieldset", {}, h("legend", {}, "Ban by"), kinds),
    h("label", { class: "rt-choice" }, h("input", { type: "checkbox", name: "shadow" }),
      "Shadow ban"),
    h("label", { class: "rt-field" }, h("span", {}, "Duration"),
      h("select", { name: "duration" },
        h("option", { value: "day" }, "1 day"),
        h("option", { value: "week" }, "1 week"),
        h("option", { value: "forever" }, "forever"))),
    h("label", { class: "rt-field rt-grow" }, h("span", {}, "Reason"),
      h("input", { name: "reason", maxlength: "1000", autocomplete: "off" })),
    h("div", { class: "rt-form-buttons" },
      h("button", { type: "submit", class: "rt-primary" }, "Ban"),
      h("button", { type: "button", onclick: onCancel }, "Cancel")),
    h("p", { class: "rt-error", role: "alert", hidden: true }));
  const first = form.querySelector("input[name=kind]:not(:disabled)");
  if (first) first.checked = true;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = form.elements;
    onBan({ kind: f.kind.value, shadow: f.shadow.checked, duration: f.duration.value,
      reason: f.reason.value.trim() });
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") onCancel();
  });
  return form;
}

/** When a ban of `duration` (day, week, forever) ends, as RFC 3339, or null. */
export function expiry(duration, now = Date.now()) {
  const days = { day: 1, week: 7 }[duration];
  return days ? new Date(now + days * 86400000).toISOString() : null;
}
