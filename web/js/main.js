// The console's entry point: read config.json (written by the deployment, never built in),
// then show the sign-in or the console. Routes live in the URL's hash: #/jobs, #/jobs/<id>.

import { Api } from "./api.js";
import { Auth } from "./auth.js";
import { HostedLogin } from "./hosted.js";
import { JobDetail } from "./detail.js";
import { JobsTable } from "./jobs.js";
import { SubmitForm } from "./submit.js";
import { $, describe, show } from "./util.js";

const REQUIRED = ["api_url", "region", "user_pool_id", "client_id", "cognito_endpoint"];

async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json could not be read (HTTP ${response.status})`);
  const config = await response.json();
  const missing = REQUIRED.filter((k) => !config[k]);
  if (missing.length) throw new Error(`config.json lacks ${missing.join(", ")}`);
  return config;
}

function describeRateLimit({ policy, state, retryAfter }) {
  const parts = [];
  if (policy.burst && state.burst) {
    const wait = state.burst.t ? `, one more in ${state.burst.t} s` : "";
    parts.push(`Submissions: ${state.burst.r} of ${policy.burst.q} available${wait}`);
  }
  if (policy.active && state.active) {
    parts.push(`active jobs: ${policy.active.q - state.active.r} of ${policy.active.q}`);
  }
  if (retryAfter) parts.push(`retry after ${retryAfter} s`);
  return parts.join("; ");
}

class Console {
  constructor(config) {
    this.config = config;
    this.auth = new Auth(config);
    this.api = new Api(config, this.auth, {
      onSessionEnded: () => this.sessionEnded(),
      onRateLimit: (info) => {
        const text = describeRateLimit(info);
        if (text) show($("ratelimit"), text);
      },
    });
    this.jobs = new JobsTable(this.api, { onOpen: (id) => (location.hash = `#/jobs/${encodeURIComponent(id)}`) });
    this.detail = new JobDetail(this.api, {
      onChanged: () => this.jobs.poke(),
      onClose: () => (location.hash = "#/jobs"),
    });
    this.form = new SubmitForm(this.api, {
      onSubmitted: () => {
        this.jobs.poke();
      },
    });
    // The open job refreshes with the table while it is unfinished.
    this.watchDetail = Object.assign(() => this.detail.refresh(), { unfinished: () => this.detail.unfinished });

    $("env-name").textContent = config.env ? `environment: ${config.env}` : "";
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.signIn();
    });
    $("sign-out").addEventListener("click", () => this.signOut());
    if (this.auth.hosted) {
      $("hosted-signin").hidden = false;
      $("hosted-submit").addEventListener("click", () => this.signInHosted());
    }
    window.addEventListener("hashchange", () => this.route());
  }

  start() {
    if (this.auth.hosted && HostedLogin.isCallback()) this.completeHosted();
    else if (this.auth.signedIn) this.enter({ focus: false });
    else this.showSignIn();
  }

  async signInHosted() {
    show($("signin-error"), "");
    $("hosted-submit").disabled = true;
    try {
      await this.auth.signInHosted(); // leaves the page
    } catch (err) {
      show($("signin-error"), describe(err));
      $("hosted-submit").disabled = false;
    }
  }

  /** Back from the hosted login page with a code (or an error): exchange it, or say why not. */
  async completeHosted() {
    try {
      await this.auth.completeHosted();
    } catch (err) {
      this.showSignIn();
      show($("signin-error"), describe(err));
      return;
    }
    await this.enter({ focus: true });
  }

  showSignIn(note = "") {
    $("app-view").hidden = true;
    $("user-area").hidden = true;
    $("signin-view").hidden = false;
    show($("signin-note"), note);
    const username = $("signin-username");
    if (!username.value && this.auth.username) username.value = this.auth.username;
    (username.value ? $("signin-password") : username).focus();
  }

  async signIn() {
    const form = $("signin-form").elements;
    const button = $("signin-submit");
    show($("signin-error"), "");
    button.disabled = true;
    try {
      await this.auth.signIn(form.username.value.trim(), form.password.value);
      form.password.value = ""; // never kept, not even in the DOM
      await this.enter({ focus: true });
    } catch (err) {
      show($("signin-error"), describe(err));
    } finally {
      button.disabled = false;
    }
  }

  /** The session ended (refresh refused, token revoked): back to sign-in; the forms keep their values. */
  sessionEnded() {
    if ($("signin-view").hidden === false) return;
    this.jobs.stop();
    this.detail.close();
    const username = this.auth.username;
    this.auth.session = null;
    if (!$("signin-username").value) $("signin-username").value = username;
    this.showSignIn("Your session has ended. Sign in again: what you typed in the forms is kept.");
  }

  async enter({ focus }) {
    $("signin-view").hidden = true;
    $("app-view").hidden = false;
    $("user-area").hidden = false;
    $("user-name").textContent = this.auth.username;
    try {
      await Promise.all([this.form.loadActions(), this.jobs.start(), this.route({ focus })]);
    } catch (err) {
      show($("submit-error"), `Could not load the actions: ${describe(err)}`);
    }
    if (focus && location.hash.startsWith("#/jobs/") === false) $("job-name").focus();
  }

  async route({ focus = true } = {}) {
    const match = /^#\/jobs\/(.+)$/.exec(location.hash);
    if (!this.auth.signedIn) return;
    if (match) {
      this.jobs.watchers.add(this.watchDetail);
      await this.detail.open(decodeURIComponent(match[1]), { focus });
      this.jobs.load({ reset: true }); // the open job refreshes with the table
    } else {
      this.jobs.watchers.delete(this.watchDetail);
      this.detail.close();
      if (focus && location.hash === "#/jobs") $("jobs-title").focus();
    }
  }

  async signOut() {
    this.jobs.stop();
    this.detail.close();
    const viaHostedLogin = await this.auth.signOut();
    // nothing of this user stays on screen for the next one
    for (const form of ["job-form", "batch-form", "signin-form"]) $(form).reset();
    for (const id of ["submit-error", "submit-result", "batch-error", "batch-summary", "ratelimit", "jobs-error"]) {
      show($(id), "");
    }
    $("batch-results").hidden = true;
    $("batch-submit").disabled = true;
    this.form.batchJobs = null;
    this.form.showWhen();
    history.replaceState(null, "", location.pathname);
    this.showSignIn("You are signed out.");
    // A hosted-login session also ends the login page's own session (else the next "Sign in
    // with the hosted login page" would sign this user in again without asking).
    if (viaHostedLogin) this.auth.hosted.logout();
  }
}

async function main() {
  try {
    const config = await loadConfig();
    window.jobsConsole = new Console(config);
    window.jobsConsole.start();
  } catch (err) {
    show($("fatal"), `The console cannot start: ${err.message}.`);
  }
}

main();
