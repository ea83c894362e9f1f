// Sign-in with the stack's Cognito user pool, two ways:
// - the password form, through Cognito's JSON API (no SDK): InitiateAuth with
//   USER_PASSWORD_AUTH to sign in, REFRESH_TOKEN_AUTH to renew the tokens, GlobalSignOut to
//   sign out; the password is sent to Cognito once and never kept;
// - when config.json names the pool's login domain (oauth_domain), its hosted login page:
//   the authorization-code flow with PKCE (hosted.js), tokens renewed and revoked at the
//   domain's OAuth endpoints.
// The tokens live in sessionStorage (this tab only, gone when it closes).

import { HostedLogin } from "./hosted.js";

const STORAGE_KEY = "jobs-console.session";
const REFRESH_MARGIN_SECONDS = 60; // renew a token this long before it expires

export class AuthError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "AuthError";
    this.code = code;
  }
}

/** The claims of a JWT (not verified: the API verifies; this only reads names and expiry). */
export function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "="));
    return JSON.parse(decodeURIComponent(escape(text)));
  } catch {
    return {};
  }
}

export class Auth {
  constructor(config, storage = window.sessionStorage) {
    this.config = config;
    this.storage = storage;
    this.refreshing = null;
    this.hosted = config.oauth_domain ? new HostedLogin(config, storage) : null;
  }

  /** The stored session: {idToken, accessToken, refreshToken, expiresAt (epoch s), username}. */
  get session() {
    try {
      return JSON.parse(this.storage.getItem(STORAGE_KEY) || "null");
    } catch {
      return null;
    }
  }

  set session(value) {
    if (value) this.storage.setItem(STORAGE_KEY, JSON.stringify(value));
    else this.storage.removeItem(STORAGE_KEY);
  }

  get signedIn() {
    return Boolean(this.session?.refreshToken || this.session?.idToken);
  }

  get username() {
    return this.session?.username || "";
  }

  async call(target, body) {
    let response;
    try {
      response = await fetch(this.config.cognito_endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": `AWSCognitoIdentityProviderService.${target}`,
        },
        body: JSON.stringify(body),
      });
    } catch (err) {
      throw new AuthError(`Could not reach the sign-in service (${err.message}).`, "network");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const code = String(data.__type || "").split("#").pop() || `http_${response.status}`;
      throw new AuthError(data.message || data.Message || `Sign-in failed (${code}).`, code);
    }
    return data;
  }

  store(result, previous = {}) {
    const idToken = result.IdToken;
    const claims = claimsOf(idToken);
    const expiresIn = Number(result.ExpiresIn) || 3600;
    this.session = {
      idToken,
      accessToken: result.AccessToken,
      // REFRESH_TOKEN_AUTH answers no new refresh token: keep the one we have.
      refreshToken: result.RefreshToken || previous.refreshToken,
      expiresAt: Math.min(Math.floor(Date.now() / 1000) + expiresIn, Number(claims.exp) || Infinity),
      username: claims.email || claims["cognito:username"] || previous.username || "",
      via: previous.via || "password",
    };
  }

  /** The OAuth token endpoint's answer (id_token, access_token, refresh_token, expires_in). */
  storeOAuth(result, previous = {}) {
    if (!result.id_token && !result.access_token) {
      throw new AuthError("The login service answered without tokens.", "no_tokens");
    }
    this.store(
      {
        IdToken: result.id_token,
        AccessToken: result.access_token,
        RefreshToken: result.refresh_token,
        ExpiresIn: result.expires_in,
      },
      { ...previous, via: "hosted" },
    );
  }

  /** Go to the hosted login page (authorization code + PKCE); the page comes back with a code. */
  async signInHosted() {
    if (!this.hosted) throw new AuthError("This console has no hosted login configured.", "no_hosted_login");
    await this.hosted.begin({ hash: window.location.hash });
  }

  /** The hosted login page's answer in the address bar: check it, exchange its code for tokens. */
  async completeHosted() {
    if (!this.hosted) throw new AuthError("This console has no hosted login configured.", "no_hosted_login");
    this.session = null;
    this.storeOAuth(await this.hosted.complete());
  }

  async signIn(username, password) {
    const data = await this.call("InitiateAuth", {
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: this.config.client_id,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    if (!data.AuthenticationResult) {
      // e.g. NEW_PASSWORD_REQUIRED for a user an administrator created with a temporary password
      throw new AuthError(
        `Cognito asks for a further step (${data.ChallengeName || "unknown"}), which this console does not handle: ` +
          "set a permanent password for the user first.",
        data.ChallengeName || "challenge",
      );
    }
    this.store(data.AuthenticationResult, { username });
  }

  /** Renew the ID and access tokens with the refresh token (once at a time). */
  async refresh() {
    const previous = this.session;
    if (!previous?.refreshToken) throw new AuthError("Your session has ended. Sign in again.", "no_session");
    if (!this.refreshing) {
      const renewed =
        previous.via === "hosted" && this.hosted
          ? this.hosted.refresh(previous.refreshToken).then((data) => this.storeOAuth(data, previous))
          : this.call("InitiateAuth", {
              AuthFlow: "REFRESH_TOKEN_AUTH",
              ClientId: this.config.client_id,
              AuthParameters: { REFRESH_TOKEN: previous.refreshToken },
            }).then((data) => this.store(data.AuthenticationResult || {}, previous));
      this.refreshing = renewed
        .catch((err) => {
          if (err.code !== "network") this.session = null; // a refused refresh token is of no further use
          throw err;
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  /** The token the API takes (ID token, or access token when the API requires scopes), fresh. */
  async token() {
    let session = this.session;
    if (!session) throw new AuthError("Sign in first.", "no_session");
    if (session.expiresAt - REFRESH_MARGIN_SECONDS <= Date.now() / 1000) {
      await this.refresh();
      session = this.session;
    }
    return this.config.token_use === "access" ? session.accessToken : session.idToken;
  }

  /** Sign out: GlobalSignOut revokes this user's refresh tokens at Cognito (every device),
   * then the tokens are forgotten here whatever Cognito answered. A hosted-login session
   * revokes its refresh token at the domain's /oauth2/revoke instead, and returns true: the
   * caller then leaves through the domain's /logout (which ends the login page's session). */
  async signOut() {
    const session = this.session;
    this.session = null;
    if (session?.via === "hosted" && this.hosted) {
      if (session.refreshToken) {
        try {
          await this.hosted.revoke(session.refreshToken);
        } catch {
          // already revoked or expired: forgetting the tokens is all that is left to do
        }
      }
      return true;
    }
    if (!session?.accessToken) return false;
    try {
      await this.call("GlobalSignOut", { AccessToken: session.accessToken });
    } catch {
      // already expired or revoked: forgetting the tokens is all that is left to do
    }
    return false;
  }
}
