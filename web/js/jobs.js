// The jobs table: newest first (the API's order), a status filter, pages through next_token,
// and a refresh that runs itself while a job on screen is unfinished: every second at first,
// backing off to every 30 s while nothing changes, paused while the tab is hidden.

import { $, UNFINISHED, announce, describe, el, localTime, show, statusBadge } from "./util.js";

const PAGE_SIZE = 20;
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const BACKOFF = 1.6;

export class JobsTable {
  constructor(api, { onOpen }) {
    this.api = api;
    this.onOpen = onOpen;
    this.tokens = [null]; // the next_token of each page seen (page 0 has none)
    this.page = 0;
    this.jobs = [];
    this.statuses = new Map();
    this.delay = FIRST_DELAY_MS;
    this.timer = null;
    this.loading = null;
    this.active = false;
    this.watchers = new Set(); // refreshed with the table: fn(), with fn.unfinished() (the open job)
    this.firstShown = null;

    $("status-filter").addEventListener("change", () => {
      this.tokens = [null];
      this.page = 0;
      this.load({ reset: true });
    });
    $("jobs-refresh").addEventListener("click", () => this.load({ reset: true }));
    $("page-next").addEventListener("click", () => {
      this.page += 1;
      this.load({ reset: true, focus: true });
    });
    $("page-prev").addEventListener("click", () => {
      this.page = Math.max(0, this.page - 1);
      this.load({ reset: true, focus: true });
    });
    document.addEventListener("visibilitychange", () => {
      if (!this.active) return;
      if (document.hidden) this.stopTimer("Auto-refresh paused while this tab is hidden.");
      else this.load({ reset: true }); // catch up at once, then back to the fast pace
    });
  }

  start() {
    this.active = true;
    return this.load({ reset: true });
  }

  stop() {
    this.active = false;
    this.stopTimer("");
    this.jobs = [];
    this.tokens = [null];
    this.page = 0;
    $("jobs-body").replaceChildren();
  }

  stopTimer(note) {
    clearTimeout(this.timer);
    this.timer = null;
    if (note !== undefined) $("refresh-state").textContent = note;
  }

  /** Something changed (a submission, a cancel): refresh now and at the fast pace again. */
  poke() {
    this.load({ reset: true });
  }

  async load({ reset = false, focus = false } = {}) {
    if (!this.active) return;
    if (reset) this.delay = FIRST_DELAY_MS;
    this.stopTimer();
    const status = $("status-filter").value;
    const token = this.tokens[this.page];
    const request = this.api.listJobs({ status, limit: PAGE_SIZE, nextToken: token || undefined });
    this.loading = request;
    $("jobs-panel").setAttribute("aria-busy", "true");
    let changed = false;
    try {
      const { body, headers } = await request;
      if (this.loading !== request) return; // a newer load superseded this one
      const next = headers.get("X-Next-Token");
      this.tokens[this.page + 1] = next || null;
      this.tokens.length = this.page + 2;
      changed = this.render(body || []);
      show($("jobs-error"), "");
    } catch (err) {
      if (this.loading !== request) return;
      show($("jobs-error"), `Could not load your jobs: ${describe(err)}`);
      if (err.name === "AuthError" || err.status === 401) return; // back to sign-in: no timer
    } finally {
      if (this.loading === request) $("jobs-panel").removeAttribute("aria-busy");
    }
    // The open job refreshes with the table; its change (status, or a new progress figure)
    // keeps the fast pace too, so a running job's progress bar moves about once a second.
    const watched = await Promise.all([...this.watchers].map((watcher) => watcher()));
    if (!this.active || this.loading !== request) return; // stopped, or a newer load took over
    changed = changed || watched.some(Boolean);
    if (focus) $("jobs-title").focus();
    this.schedule(changed);
  }

  schedule(changed) {
    if (!this.active) return;
    const unfinished =
      this.jobs.some((j) => UNFINISHED.has(j.status)) || [...this.watchers].some((w) => w.unfinished?.());
    if (document.hidden) {
      this.stopTimer("Auto-refresh paused while this tab is hidden.");
      return;
    }
    if (!unfinished) {
      this.stopTimer("Up to date: every job on this page has finished.");
      return;
    }
    if (changed) this.delay = FIRST_DELAY_MS;
    const seconds = Math.round(this.delay / 100) / 10;
    $("refresh-state").textContent = `Unfinished jobs: refreshing in ${seconds} s.`;
    this.timer = setTimeout(() => this.load(), this.delay);
    this.delay = Math.min(MAX_DELAY_MS, this.delay * BACKOFF);
  }

  /** Draw the page; true when a job's status differs from the last time it was drawn. */
  render(jobs) {
    let changed = false;
    const finishedNow = [];
    for (const job of jobs) {
      const before = this.statuses.get(job.job_id);
      if (before !== undefined && before !== job.status) {
        changed = true;
        if (!UNFINISHED.has(job.status)) finishedNow.push(job);
      }
      this.statuses.set(job.job_id, job.status);
    }
    this.jobs = jobs;
    const rows = jobs.map((job) =>
      el(
        "tr",
        { dataset: { jobId: job.job_id, status: job.status } },
        el("td", {}, localTime(job.createdAt)),
        el("td", {}, job.name),
        el("td", {}, job.action),
        el("td", {}, statusBadge(job.status)),
        el(
          "td",
          {},
          el(
            "button",
            {
              type: "button",
              className: "secondary mono",
              title: job.job_id,
              "aria-label": `Open job ${job.name} (${job.job_id})`,
              onclick: () => this.onOpen(job.job_id),
            },
            job.job_id.slice(-12),
          ),
        ),
      ),
    );
    $("jobs-body").replaceChildren(...rows);
    $("jobs-empty").hidden = jobs.length > 0;
    $("page-prev").disabled = this.page === 0;
    $("page-next").disabled = !this.tokens[this.page + 1];
    $("page-label").textContent = `Page ${this.page + 1}`;
    if (this.firstShown === null) {
      this.firstShown = performance.now();
      performance.mark("jobs-shown");
      document.body.dataset.jobsShownMs = String(Math.round(this.firstShown));
    }
    for (const job of finishedNow) announce(`Job ${job.name} is ${job.status}.`);
    return changed;
  }
}
