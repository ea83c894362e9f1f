// Sign-in through the pool's hosted (managed) login page: the OAuth 2.0 authorization-code
// flow with PKCE (RFC 7636, method S256), for a public client (no secret in the browser).
//
// begin():    a random code_verifier and state, kept in sessionStorage until the callback;
//             then the browser goes to <domain>/oauth2/authorize with the verifier's SHA-256.
// complete(): on the way back (?code=...&state=...), the state must be the one this tab kept
//             (else the answer is refused); the code and the verifier go to <domain>/oauth2/token.
// The code and state leave the address bar (history.replaceState) before anything else.

const PENDING_KEY = "jobs-console.pkce";
const VERIFIER_BYTES = 48; // 64 base64url characters (RFC 7636: 43 to 128)
const PENDING_MAX_AGE_MS = 10 * 60 * 1000; // an unanswered sign-in is forgotten after this

export class HostedLoginError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "AuthError"; // handled like any other sign-in failure
    this.code = code;
  }
}

export function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function randomString(bytes = VERIFIER_BYTES) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** code_challenge for method S256: base64url(SHA-256(ASCII(verifier))). */
export async function challengeOf(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

/** The console's own address without query or fragment: the redirect (callback) URL the app
 * client must list, e.g. https://d111.cloudfront.net/ */
export function redirectUri(loc = window.location) {
  return `${loc.origin}${loc.pathname.replace(/[^/]*$/, "")}`;
}

export function scopesOf(config) {
  const scopes = config.oauth_scopes;
  if (Array.isArray(scopes) && scopes.length) return scopes.join(" ");
  return typeof scopes === "string" && scopes.trim() ? scopes.trim() : "openid email profile";
}

export class HostedLogin {
  constructor(config, storage = window.sessionStorage) {
    this.domain = String(config.oauth_domain).replace(/\/+$/, "");
    this.clientId = config.client_id;
    this.scope = scopesOf(config);
    this.storage = storage;
  }

  /** Start: keep a fresh verifier and state in this tab, go to the authorization endpoint. */
  async begin({ hash = "" } = {}) {
    const verifier = randomString();
    const state = randomString(24);
    this.storage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, hash, startedAt: Date.now() }));
    const url = new URL(`${this.domain}/oauth2/authorize`);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.clientId,
      redirect_uri: redirectUri(),
      scope: this.scope,
      state,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
    }).toString();
    window.location.assign(url.toString());
  }

  /** Whether this page load is the login page's answer (a code, or an error). */
  static isCallback(loc = window.location) {
    const params = new URLSearchParams(loc.search);
    return params.has("code") || params.has("error");
  }

  /** Finish: check the state, exchange the code. Returns the token endpoint's answer. */
  async complete() {
    const params = new URLSearchParams(window.location.search);
    let pending = null;
    try {
      pending = JSON.parse(this.storage.getItem(PENDING_KEY) || "null");
    } catch {
      pending = null;
    }
    this.storage.removeItem(PENDING_KEY); // one answer per sign-in, whatever it is
    // The code is single-use and short-lived, but it does not belong in the history or a bookmark.
    window.history.replaceState(null, "", window.location.pathname + (pending?.hash || ""));

    const fresh = pending && Date.now() - Number(pending.startedAt) < PENDING_MAX_AGE_MS;
    if (!fresh || !pending.state || params.get("state") !== pending.state) {
      throw new HostedLoginError(
        "The sign-in answer does not belong to a sign-in started in this tab (state mismatch), so it was refused. " +
          "Sign in again.",
        "state_mismatch",
      );
    }
    if (params.has("error")) {
      const detail = params.get("error_description") || params.get("error");
      throw new HostedLoginError(`The login page refused the sign-in: ${detail}.`, params.get("error"));
    }
    return this.token({
      grant_type: "authorization_code",
      client_id: this.clientId,
      code: params.get("code"),
      redirect_uri: redirectUri(),
      code_verifier: pending.verifier,
    });
  }

  refresh(refreshToken) {
    return this.token({ grant_type: "refresh_token", client_id: this.clientId, refresh_token: refreshToken });
  }

  /** POST form-encoded to <domain>/oauth2/token; the answer, or a HostedLoginError. */
  async token(form) {
    return this.post("/oauth2/token", form);
  }

  async post(path, form) {
    let response;
    try {
      response = await fetch(`${this.domain}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form).toString(),
      });
    } catch (err) {
      throw new HostedLoginError(`Could not reach the login service (${err.message}).`, "network");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const code = data.error || `http_${response.status}`;
      const detail = data.error_description ? `: ${data.error_description}` : "";
      throw new HostedLoginError(`The login service refused the tokens (${code}${detail}).`, code);
    }
    return data;
  }

  /** Revoke the refresh token (and the tokens issued with it); errors are the caller's to ignore. */
  revoke(refreshToken) {
    return this.post("/oauth2/revoke", { token: refreshToken, client_id: this.clientId });
  }

  /** Leave the login page's own session too, then come back to the console. */
  logout() {
    const url = new URL(`${this.domain}/logout`);
    url.search = new URLSearchParams({ client_id: this.clientId, logout_uri: redirectUri() }).toString();
    window.location.assign(url.toString());
  }
}
