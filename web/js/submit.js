// The submit form and the batch upload. Every submission carries an Idempotency-Key
// (crypto.randomUUID): the button is disabled while a request is out, and a retry of the same
// body (after a network error or an expired session) reuses its key, so a double click or a
// retry never makes a second job.

import { parseJobsFile } from "./batch.js";
import { $, announce, describe, el, show } from "./util.js";

/** Keys per body: the same body keeps its key until the API has accepted it. */
class Attempts {
  constructor() {
    this.current = null;
  }

  keyFor(body) {
    const text = JSON.stringify(body);
    if (!this.current || this.current.body !== text) this.current = { body: text, key: crypto.randomUUID() };
    return this.current.key;
  }

  done() {
    this.current = null;
  }
}

/** run_at from a datetime-local value (the reader's local time) as RFC 3339 UTC with seconds. */
export function toUtc(localValue) {
  const date = new Date(localValue);
  if (Number.isNaN(date.getTime())) return localValue; // the API says what is wrong
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export class SubmitForm {
  constructor(api, { onSubmitted }) {
    this.api = api;
    this.onSubmitted = onSubmitted;
    this.actions = [];
    this.single = new Attempts();
    this.batch = new Attempts();
    this.batchJobs = null;

    const form = $("job-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("job-action").addEventListener("change", () => this.describeAction());
    for (const radio of form.elements.when) radio.addEventListener("change", () => this.showWhen());
    $("batch-file").addEventListener("change", () => this.readFile());
    $("batch-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitBatch();
    });
  }

  async loadActions() {
    const { body } = await this.api.actions();
    this.actions = body || [];
    const select = $("job-action");
    const chosen = select.value;
    select.replaceChildren(...this.actions.map((a) => el("option", { value: a.name }, a.name)));
    if (this.actions.some((a) => a.name === chosen)) select.value = chosen;
    this.describeAction();
  }

  describeAction() {
    const action = this.actions.find((a) => a.name === $("job-action").value);
    $("job-action-help").textContent = action ? action.description : "";
    const format = $("job-format");
    const chosen = format.value || "text";
    const formats = action ? action.formats : ["text"];
    format.replaceChildren(...formats.map((f) => el("option", { value: f }, f)));
    format.value = formats.includes(chosen) ? chosen : formats[0];
  }

  showWhen() {
    const when = $("job-form").elements.when.value;
    $("when-at").hidden = when !== "at";
    $("when-in").hidden = when !== "in";
  }

  body() {
    const form = $("job-form").elements;
    const body = {
      name: form.name.value,
      action: form.action.value,
      context1: form.context1.value,
      context2: form.context2.value,
      format: form.format.value || "text",
      priority: form.priority.value || "normal",
    };
    const when = form.when.value;
    if (when === "at" && form.run_at.value) body.run_at = toUtc(form.run_at.value);
    if (when === "in" && form.delay_seconds.value !== "") {
      const delay = Number(form.delay_seconds.value);
      body.delay_seconds = Number.isFinite(delay) ? delay : form.delay_seconds.value;
    }
    const callback = form.callback_url.value.trim();
    if (callback) body.callback_url = callback; // only when filled: an API without webhooks refuses the field
    return body;
  }

  async submit() {
    const button = $("job-submit");
    if (button.disabled) return;
    const body = this.body();
    const key = this.single.keyFor(body);
    button.disabled = true;
    show($("submit-error"), "");
    show($("submit-result"), "");
    try {
      const { body: answer, headers } = await this.api.submit(body, key);
      this.single.done();
      const replayed = headers.get("Idempotent-Replayed") === "true";
      const message = `Submitted "${body.name}": job ${answer.job_id} is ${answer.status}${replayed ? " (already accepted)" : ""}.`;
      show($("submit-result"), message);
      announce(message);
      this.onSubmitted(answer);
    } catch (err) {
      show($("submit-error"), describe(err));
    } finally {
      button.disabled = false;
    }
  }

  async readFile() {
    const file = $("batch-file").files[0];
    this.batchJobs = null;
    $("batch-submit").disabled = true;
    show($("batch-error"), "");
    show($("batch-summary"), "");
    $("batch-results").hidden = true;
    if (!file) return;
    try {
      this.batchJobs = parseJobsFile(file.name, await file.text());
      show($("batch-summary"), `${this.batchJobs.length} job(s) read from ${file.name}.`);
      $("batch-submit").disabled = false;
    } catch (err) {
      show($("batch-error"), `Cannot use ${file.name}: ${err.message}.`);
    }
  }

  async submitBatch() {
    const button = $("batch-submit");
    if (button.disabled || !this.batchJobs) return;
    const jobs = this.batchJobs;
    const key = this.batch.keyFor(jobs);
    button.disabled = true;
    show($("batch-error"), "");
    const results = $("batch-results");
    try {
      const { body } = await this.api.submitBatch(jobs, key);
      this.batch.done();
      const items = body.jobs || [];
      results.replaceChildren(
        ...items.map((item, i) =>
          el("li", {}, `${jobs[i]?.name ?? "job"}: `, item.job_id ? `${item.job_id} ` : "", item.status, item.error ? ` (${item.error})` : ""),
        ),
      );
      results.hidden = false;
      const accepted = items.filter((i) => !i.error).length;
      announce(`${accepted} of ${items.length} jobs submitted.`);
      show($("batch-summary"), `${accepted} of ${items.length} job(s) submitted.`);
      this.onSubmitted(null);
    } catch (err) {
      const box = $("batch-error");
      box.replaceChildren(describe(err));
      if (Array.isArray(err.body?.items)) {
        box.append(
          el("ul", {}, ...err.body.items.map((it) => el("li", {}, `job ${it.index + 1}: ${it.message} (${it.error})`))),
        );
      }
      box.hidden = false;
      button.disabled = false;
      return;
    }
    button.disabled = false;
  }
}
