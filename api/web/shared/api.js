/**
 * footfit fit API client for the pages (the one place that calls /v1 and turns refusals into messages).
 *
 *   import { FitApi, ApiError, fromFragment } from "/web/shared/api.js";
 *   const api = new FitApi(key);                 // sent as "Authorization: Bearer <key>": an API key ("ff_...",
 *                                                // staff pages) or a customer session token ("ffs_...", the only
 *                                                // credential a shopper's browser may hold)
 *   new FitApi(key, { hints: {401: "..."} })     // what a refusal's status means to the person at the screen
 *   new FitApi("", { base: "/fit-proxy" })       // no key: calls /fit-proxy/v1/..., a proxy adds one
 *   const me = await api.get("/me");             // GET /v1/me; query: api.get(path, {n: 3, category: "running"})
 *   await api.post("/customers", {loyalty_id});  // JSON body; api.put(path, body), api.delete(path)
 *   api.url(path, query)                         // the absolute URL of a /v1 path with its query
 *
 * Every method resolves to the parsed JSON body (null for an empty one) or rejects with an ApiError whose
 * `message` is a sentence to show as it is: the service's ErrorBody.detail with its individual `errors`, prefixed
 * by what the status means for the person at the screen (key refused, not allowed, not found); a network
 * failure says the service cannot be reached. `error.status` is the HTTP status (0: no answer).
 *
 * fromFragment(name) reads a value passed in the URL fragment (`#session=ffs_...`): the fragment never reaches a
 * server (not in requests, not in Referer), so a token there stays in the browser (docs/webshop-tryon.md).
 */

const PREFIX = "/v1";

const STATUS_HINTS = {
  401: "The API key was refused",
  403: "This key is not allowed to do that",
  404: "Not found",
  409: "Not possible right now",
  413: "Too large",
  422: "The request was not accepted",
};

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

export function fromFragment(name, hash = window.location.hash) {
  return new URLSearchParams(hash.replace(/^#/, "")).get(name);
}

/** The sentence to show for a refusal (status + the service's ErrorBody), `hints` saying what each status means. */
export function errorMessage(status, body, hints = STATUS_HINTS) {
  const hint = hints[status] || (status >= 500 ? "The fit service failed" : `Refused (${status})`);
  if (!body || typeof body.detail !== "string") return `${hint}.`;
  const details = (body.errors || []).map((e) => `${e.location}: ${e.message}`);
  const more = details.length > 1 ? ` (${details.join("; ")})` : "";
  return `${hint}: ${body.detail}${more}`;
}

export class FitApi {
  constructor(key, { base = "", hints = STATUS_HINTS } = {}) {
    this.key = key; // an API key or a customer session token
    this.base = base;
    this.hints = hints;
  }

  get(path, query) { return this.request("GET", path, { query }); }
  post(path, json) { return this.request("POST", path, { json }); }
  put(path, json) { return this.request("PUT", path, { json }); }
  delete(path) { return this.request("DELETE", path); }

  url(path, query) {
    const url = new URL(this.base + PREFIX + path, window.location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    return url.toString();
  }

  async request(method, path, { query, json } = {}) {
    const headers = { Accept: "application/json" };
    if (this.key) headers.Authorization = `Bearer ${this.key}`; // none: a proxy adds it (docs/webshop-tryon.md)
    const init = { method, headers };
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(this.url(path, query), init);
    } catch {
      throw new ApiError(0, "The fit service cannot be reached: check the connection, then try again.");
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, body, this.hints), body);
    return body;
  }
}
