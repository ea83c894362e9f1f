// The job API, as any client calls it: the raw Cognito token in Authorization, JSON bodies,
// errors {"error", "message"}; the IETF RateLimit headers read where the API sends them.

export class ApiError extends Error {
  constructor(status, code, message, body = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Parse a structured-field list like `"burst";r=19;t=1, "active";r=99` into
 * {burst: {r: 19, t: 1}, active: {r: 99}}. */
export function parseRateLimit(header) {
  const out = {};
  if (!header) return out;
  for (const member of header.split(",")) {
    const [name, ...params] = member.trim().split(";");
    const key = name.trim().replace(/^"|"$/g, "");
    if (!key) continue;
    out[key] = {};
    for (const param of params) {
      const [k, v = ""] = param.split("=");
      const value = v.replace(/^"|"$/g, "");
      out[key][k.trim()] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
    }
  }
  return out;
}

export class Api {
  /**
   * @param config  the console's config.json
   * @param auth    an Auth (token(), refresh())
   * @param hooks   {onSessionEnded(error), onRateLimit({policy, state})}
   */
  constructor(config, auth, hooks = {}) {
    this.base = String(config.api_url).replace(/\/+$/, "");
    this.auth = auth;
    this.hooks = hooks;
  }

  async request(method, path, { query, body, headers = {} } = {}) {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    }
    const send = async () => {
      const token = await this.auth.token();
      const init = { method, headers: { Authorization: token, ...headers } };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      try {
        return await fetch(url, init);
      } catch (err) {
        throw new ApiError(0, "network", `Could not reach the API (${err.message}). Check your connection and retry.`);
      }
    };

    let response;
    try {
      response = await send();
      if (response.status === 401) {
        // The token expired or was revoked: renew it once and retry (a POST keeps its
        // Idempotency-Key, so a retry never makes a second job).
        await this.auth.refresh();
        response = await send();
      }
    } catch (err) {
      if (err.name === "AuthError" && err.code !== "network") {
        this.hooks.onSessionEnded?.(err);
      }
      throw err;
    }

    const policy = response.headers.get("RateLimit-Policy");
    if (policy) {
      this.hooks.onRateLimit?.({
        policy: parseRateLimit(policy),
        state: parseRateLimit(response.headers.get("RateLimit")),
        retryAfter: Number(response.headers.get("Retry-After")) || null,
      });
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { message: text };
    }
    if (!response.ok) {
      const code = data?.error || `http_${response.status}`;
      const message = data?.message || `The API answered ${response.status}.`;
      const error = new ApiError(response.status, code, message, data || {});
      if (response.status === 401) this.hooks.onSessionEnded?.(error);
      throw error;
    }
    return { status: response.status, body: data, headers: response.headers };
  }

  actions() {
    return this.request("GET", "/actions");
  }

  listJobs({ status, limit = 20, nextToken } = {}) {
    return this.request("GET", "/jobs", { query: { status, limit, next_token: nextToken } });
  }

  getJob(jobId) {
    return this.request("GET", "/job", { query: { job_id: jobId } });
  }

  cancelJob(jobId) {
    return this.request("DELETE", "/job", { query: { job_id: jobId } });
  }

  submit(body, idempotencyKey) {
    return this.request("POST", "/job", { body, headers: { "Idempotency-Key": idempotencyKey } });
  }

  submitBatch(jobs, idempotencyKey) {
    return this.request("POST", "/jobs/batch", { body: { jobs }, headers: { "Idempotency-Key": idempotencyKey } });
  }

  quota() {
    return this.request("GET", "/quota");
  }
}
