// Every word the reader sees, in the reader's language.
//
// The language is the widget's data-realtime-lang, else the host page's <html lang>, else the
// browser's; the server picks the best of its catalogs (static/i18n/<tag>.json) in one request.
// Plurals, numbers, dates and relative times come from Intl in that language.

/** Language tags in order of preference for one widget root. */
export function wantedLanguages(root) {
  const tags = [root?.dataset?.realtimeLang, document.documentElement.lang,
    ...(navigator.languages ?? [navigator.language])];
  return [...new Set(tags.filter(Boolean).map((t) => t.trim()).filter(Boolean))];
}

export class Messages {
  /** `lang`: the catalog's language; `locale`: the reader's own tag of that language. */
  constructor(lang, messages, wanted = []) {
    this.lang = lang;
    this.messages = messages;
    this.locale = wanted.find((tag) => tag.toLowerCase().split("-")[0] === lang.split("-")[0])
      ?? lang;
    this.plural = new Intl.PluralRules(this.locale);
    this.number = new Intl.NumberFormat(this.locale);
    this.relative = new Intl.RelativeTimeFormat(this.locale, { numeric: "auto" });
  }

  /** The message `key` with `{name}` placeholders filled; `count` also picks the plural. */
  t(key, params = {}) {
    let text = this.messages[key] ?? key;
    if (typeof text === "object") {
      text = text[this.plural.select(params.count ?? 0)] ?? text.other ?? key;
    }
    return text.replace(/\{(\w+)\}/g, (whole, name) => {
      const value = params[name];
      if (value == null) return whole;
      return typeof value === "number" ? this.number.format(value) : String(value);
    });
  }

  has(key) {
    return key in this.messages;
  }

  /** "3 minutes ago", "gestern", "2 時間前". */
  ago(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    if (Math.abs(seconds) < 45) return this.relative.format(0, "second");
    for (const [unit, size] of [["year", 31536000], ["month", 2592000], ["week", 604800],
      ["day", 86400], ["hour", 3600], ["minute", 60]]) {
      if (Math.abs(seconds) >= size) return this.relative.format(Math.round(seconds / size), unit);
    }
    return this.relative.format(Math.round(seconds / 60), "minute");
  }

  date(iso) {
    return new Date(iso).toLocaleString(this.locale);
  }
}

const loaded = new Map();

/** The catalog for these languages from the server at `base` (English if it cannot answer). */
export function loadMessages(base, wanted) {
  const key = wanted.join(",");
  if (!loaded.has(key)) {
    const url = new URL("i18n", base);
    url.searchParams.set("lang", key);
    loaded.set(key, fetch(url, { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(String(r.status)))))
      .then((c) => new Messages(c.lang, c.messages, wanted))
      .catch(() => new Messages("en", {}, wanted)));
  }
  return loaded.get(key);
}
