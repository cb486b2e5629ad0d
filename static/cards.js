// One comment drawn: avatar, name, time, body and its buttons. Comment bodies arrive as HTML
// the server sanitized at write time; everything else a commenter typed (name, website) only
// ever reaches the page as text or as an attribute value.

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const SAFE_URL = /^https?:\/\//i;

/** A 5x5 mirrored identicon from the avatar hash: a face for each author, no external image. */
export function identicon(hash) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 5 5");
  svg.setAttribute("class", "rt-avatar");
  svg.setAttribute("aria-hidden", "true");
  if (!/^[0-9a-f]{12,}$/i.test(hash || "")) return svg;
  const bits = parseInt(hash.slice(0, 8), 16);
  const hue = parseInt(hash.slice(8, 12), 16) % 360;
  const rect = (x, y, w, fill) => {
    const r = document.createElementNS(SVG, "rect");
    for (const [k, v] of Object.entries({ x, y, width: w, height: w, fill })) r.setAttribute(k, v);
    svg.append(r);
  };
  rect(0, 0, 5, `hsl(${hue} 45% 92%)`);
  for (let x = 0; x < 3; x += 1) {
    for (let y = 0; y < 5; y += 1) {
      if (((bits >>> (x * 5 + y)) & 1) === 0) continue;
      rect(x, y, 1, `hsl(${hue} 55% 42%)`);
      if (x < 2) rect(4 - x, y, 1, `hsl(${hue} 55% 42%)`);
    }
  }
  return svg;
}

export function timeElement(iso, messages) {
  return h("time", { datetime: iso, title: messages.date(iso) }, messages.ago(iso));
}

/** The id of a comment's element, which is also its permalink's fragment. */
export const anchorOf = (id) => `comment-${id}`;

/**
 * Fill `item.card` for `item.comment`. `actions` lists the buttons to offer as
 * [className, label, handler] (the caller decides which apply).
 */
export function fillCard(item, messages, actions) {
  const c = item.comment;
  const classes = ["rt-comment", `rt-status-${c.status}`];
  if (c.kind === "pingback") classes.push("rt-pingback");
  if (item.li.classList.contains("rt-target")) classes.push("rt-target");
  item.li.className = classes.join(" ");
  if (c.status === "deleted") {
    item.card.replaceChildren(h("p", { class: "rt-tombstone" }, messages.t("tombstone")));
    return;
  }
  const name = c.author.name || messages.t("anonymous");
  const who = c.author.url && SAFE_URL.test(c.author.url)
    ? h("a", { class: "rt-author", href: c.author.url, rel: "nofollow ugc noopener" }, name)
    : h("span", { class: "rt-author" }, name);
  const when = c.id != null
    ? h("a", { class: "rt-permalink", href: `#${anchorOf(c.id)}`,
      "aria-label": `${messages.t("permalink")}: ${messages.ago(c.created_at)}` },
    timeElement(c.created_at, messages))
    : timeElement(c.created_at, messages);
  const body = h("div", { class: "rt-body" });
  // Sanitized by the server at write time; an optimistic copy has only its Markdown source.
  if (c.html != null) body.innerHTML = c.html;
  else body.append(h("p", {}, c.body));
  const ping = c.kind === "pingback";
  const badge = { sending: messages.t("sending"), pending: messages.t("pending") }[c.status];
  const buttons = actions.map(([cls, label, onclick, extra = {}]) => h("button",
    { type: "button", class: cls, onclick, ...extra }, label));
  item.card.replaceChildren(
    ping ? h("span", { class: "rt-avatar rt-avatar-ping", "aria-hidden": "true" }, "↗")
      : identicon(c.author.avatar),
    h("div", { class: "rt-main" },
      h("header", { class: "rt-meta" },
        ping ? h("span", { class: "rt-kind" }, messages.t("pingback")) : null,
        who, when,
        c.edited_at ? h("span", { class: "rt-edited", title: messages.date(c.edited_at) },
          messages.t("edited")) : null,
        badge ? h("span", { class: `rt-badge rt-badge-${c.status}` }, badge) : null),
      body,
      buttons.length ? h("footer", { class: "rt-actions" }, buttons) : null));
}
