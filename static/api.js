// Every request the widget makes, in one place: URLs from the server's base, no cookies, and
// answers as {ok, status, data, problem} so callers never parse errors themselves.

/** The server's base URL, from the URL of a module it served (…/static/x.js). */
export function baseOf(moduleUrl) {
  return new URL(".", moduleUrl).href.replace(/static\/$/, "");
}

export class Api {
  constructor(base) {
    this.base = base;
  }

  url(path, params = {}) {
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(params)) if (v != null) url.searchParams.set(k, v);
    return url;
  }

  /** One request; a network failure (or a refusal the browser hides) gives status 0. */
  async request(path, { method = "GET", params, body, token } = {}) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Edit ${token}`;
    let response;
    try {
      response = await fetch(this.url(path, params), { method, headers, credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      return { ok: false, status: 0, data: null, problem: null };
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, data: response.ok ? data : null,
      problem: response.ok ? null : (data ?? {}),
      retryAfter: Number(response.headers.get("Retry-After")) || null };
  }

  thread(slug, { sort, after, limit = 20, replies = 10 } = {}) {
    return this.request(`api/posts/${encodeURIComponent(slug)}/thread`,
      { params: { sort, after, limit, replies } });
  }

  replies(rootId, after) {
    return this.request(`api/comments/${rootId}/replies`, { params: { after, limit: 100 } });
  }

  context(id) {
    return this.request(`api/comments/${id}/context`);
  }

  openPost(slug, title, url) {
    return this.request("api/posts", { method: "POST", body: { slug, title, url } });
  }

  post(slug, comment) {
    return this.request(`api/posts/${encodeURIComponent(slug)}/comments`,
      { method: "POST", body: comment });
  }

  comment(id) {
    return this.request(`api/comments/${id}`);
  }

  edit(id, token, body) {
    return this.request(`api/comments/${id}`, { method: "PATCH", token, body: { body } });
  }

  remove(id, token) {
    return this.request(`api/comments/${id}`, { method: "DELETE", token });
  }

  report(id, reason) {
    return this.request(`api/comments/${id}/report`, { method: "POST", body: { reason } });
  }

  preview(body) {
    return this.request("api/preview", { method: "POST", body: { body } });
  }

  counts(slugs) {
    return this.request("api/counts", { params: { slugs: slugs.join(",") } });
  }
}

/** The reader's sentence for a refused request: translated by code or field when we can. */
export function explain(answer, messages) {
  if (answer.status === 0) return messages.t("unreachableShort");
  const problem = answer.problem ?? {};
  const field = problem.errors?.[0]?.field;
  if (problem.code === "validation_error" && field && messages.has(`error.field.${field}`)) {
    return messages.t(`error.field.${field}`);
  }
  if (problem.code && messages.has(`error.${problem.code}`)) {
    return messages.t(`error.${problem.code}`, { seconds: answer.retryAfter ?? 1 });
  }
  return problem.detail || messages.t("loadFailed");
}

/** The slug of a page with an empty data-realtime-post: from its canonical URL's path. */
export function slugFromUrl(url) {
  const path = new URL(url).pathname.toLowerCase().replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^-+|-+$/g, "").slice(0, 200);
  return path || "index";
}

/** The page's canonical URL: <link rel=canonical>, else its location without the fragment. */
export function canonicalUrl() {
  const link = document.querySelector('link[rel~="canonical"][href]');
  const url = new URL(link ? link.href : location.href);
  url.hash = "";
  return url.href;
}
