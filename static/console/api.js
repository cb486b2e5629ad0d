// The console's HTTP calls: same origin, the HttpOnly session cookie sent by the browser.
//
// Cookie-authenticated writes need an Origin header, which the browser adds itself to
// same-origin fetches with a body. Every answer that says the session is gone (401) goes to
// one handler, which shows the login form.

export const BASE = new URL(".", import.meta.url).href.replace(/static\/console\/$/, "");

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `The server answered ${status}.`);
    this.status = status;
    this.body = body || {};
  }
}

let onSignedOut = () => {};

/** Who hears that the session ended (a 401 from any call). */
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

/** The URL of a server path, with query parameters (null and "" left out). */
export function url(path, params = {}) {
  const found = new URL(path, BASE);
  for (const [name, value] of Object.entries(params)) {
    if (value != null && value !== "") found.searchParams.set(name, value);
  }
  return found;
}

/** Call the API; resolves to the JSON answer (or null for 204), rejects with ApiError. */
export async function call(path, { method = "GET", params, body } = {}) {
  let response;
  try {
    response = await fetch(url(path, params), {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, { detail: "Could not reach the server." });
  }
  const answer = response.status === 204 ? null : await response.json().catch(() => ({}));
  if (response.ok) return answer;
  if (response.status === 401 && !path.endsWith("auth/login")) onSignedOut();
  throw new ApiError(response.status, answer);
}

/** Field errors of a 422 answer as a Map from field name to message. */
export function fieldErrors(error) {
  return new Map((error.body?.errors || []).map((e) => [e.field, e.message]));
}
