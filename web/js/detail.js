// One job: every field the API returns, its progress when it reports one, its error, a preview
// of its result (the first few KB, as text) and a download link, and a cancel button where
// cancelling is allowed.

import { $, UNFINISHED, announce, describe, el, localTime, show, statusBadge } from "./util.js";

const PREVIEW_BYTES = 4096;
const CANCELLABLE = new Set(["PENDING", "SCHEDULED"]);
// Fields shown in their own place rather than in the list of fields.
const SHOWN_APART = new Set(["result_url", "progress", "error"]);
const TIME_FIELDS = new Set([
  "createdAt", "updatedAt", "startedAt", "completedAt", "run_at", "cancel_requested_at",
]);

/** The first `limit` bytes of a URL's body as text, and whether there was more. */
export async function readPreview(url, limit = PREVIEW_BYTES) {
  const response = await fetch(url); // a simple GET: no preflight, the presigned URL is its own credential
  if (!response.ok) throw new Error(`the result could not be read (HTTP ${response.status})`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  let text = "";
  let received = 0;
  let more = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const room = limit - received;
    if (value.length > room) {
      text += decoder.decode(value.subarray(0, room), { stream: true });
      more = true;
      break;
    }
    text += decoder.decode(value, { stream: true });
    received += value.length;
  }
  text += decoder.decode();
  if (more) await reader.cancel().catch(() => {});
  const size = Number(response.headers.get("Content-Length")) || null;
  return { text, more, size };
}

export class JobDetail {
  constructor(api, { onChanged, onClose }) {
    this.api = api;
    this.onChanged = onChanged;
    this.onClose = onClose;
    this.jobId = null;
    this.job = null;
    this.previewFor = null;
    // null: not known yet; false: the API refused to cancel a PROCESSING job (409), so the
    // button is not offered for running jobs any more in this session.
    this.runningCancel = null;
    $("detail-close").addEventListener("click", () => this.onClose());
  }

  get unfinished() {
    return this.job !== null && UNFINISHED.has(this.job.status);
  }

  async open(jobId, { focus = true } = {}) {
    if (this.jobId !== jobId) {
      this.jobId = jobId;
      this.job = null;
      this.previewFor = null;
      $("detail-body").replaceChildren(el("p", { className: "note" }, "Loading..."));
    }
    $("detail-panel").hidden = false;
    await this.refresh();
    if (focus) $("detail-title").focus();
  }

  close() {
    this.jobId = null;
    this.job = null;
    $("detail-panel").hidden = true;
  }

  /** Read the open job again; true when its status or its progress changed since last time. */
  async refresh() {
    const jobId = this.jobId;
    if (!jobId) return false;
    try {
      const { body } = await this.api.getJob(jobId);
      if (this.jobId !== jobId) return false;
      const previous = this.job;
      const before = previous?.status;
      this.job = body;
      show($("detail-error"), "");
      this.render();
      if (before && before !== body.status) announce(`Job ${body.name} is ${body.status}.`);
      return (
        previous !== null &&
        (before !== body.status || previous.progress?.updatedAt !== body.progress?.updatedAt)
      );
    } catch (err) {
      if (this.jobId === jobId) show($("detail-error"), describe(err));
      return false;
    }
  }

  canCancel(job) {
    if (CANCELLABLE.has(job.status)) return true;
    // Cancelling a running job: an API that supports it answers 202 and shows
    // cancel_requested_at; one that does not answers 409 not_cancellable (then we stop offering).
    return job.status === "PROCESSING" && !job.cancel_requested_at && this.runningCancel !== false;
  }

  async cancel() {
    const job = this.job;
    const button = $("detail-cancel");
    button.disabled = true;
    try {
      const { status, body } = await this.api.cancelJob(job.job_id);
      if (job.status === "PROCESSING") this.runningCancel = true;
      announce(status === 202 ? "Cancel requested." : `Job ${job.name} is cancelled.`);
      if (body && body.job_id === job.job_id && this.jobId === job.job_id) {
        this.job = { ...this.job, ...body };
      }
      await this.refresh();
      this.onChanged();
    } catch (err) {
      if (err.status === 409 && job.status === "PROCESSING") this.runningCancel = false;
      show($("detail-error"), `Could not cancel: ${describe(err)}`);
      button.disabled = false;
      await this.refresh();
    }
  }

  render() {
    const job = this.job;
    $("detail-title").replaceChildren(`Job ${job.name} `, statusBadge(job.status));
    const parts = [];

    if (job.progress && typeof job.progress === "object") {
      const fraction = Math.max(0, Math.min(1, Number(job.progress.fraction) || 0));
      parts.push(
        el(
          "div",
          { className: "progress" },
          el("label", { htmlFor: "detail-progress" }, "Progress"),
          el("progress", { id: "detail-progress", max: 1, value: fraction }, `${Math.round(fraction * 100)}%`),
          el("span", {}, `${Math.round(fraction * 100)}%`),
          job.progress.message ? el("span", { className: "note" }, job.progress.message) : null,
        ),
      );
    }
    if (job.cancel_requested_at && job.status === "PROCESSING") {
      parts.push(el("p", { className: "note" }, "Cancel requested at ", localTime(job.cancel_requested_at), "."));
    }
    if (job.error) {
      parts.push(el("div", { className: "alert", id: "detail-job-error" }, el("strong", {}, "Error: "), job.error));
    }

    const fields = el("dl", { className: "fields", id: "detail-fields" });
    for (const [key, value] of Object.entries(job)) {
      if (SHOWN_APART.has(key)) continue;
      let shown;
      if (value !== null && typeof value === "object") shown = el("pre", {}, JSON.stringify(value, null, 2));
      else if (TIME_FIELDS.has(key)) shown = [localTime(value), el("span", { className: "note mono" }, ` ${value}`)];
      else shown = String(value);
      fields.append(el("dt", {}, key), el("dd", { dataset: { field: key } }, shown));
    }
    parts.push(fields);

    const actions = el("div", { className: "actions" });
    if (this.canCancel(job)) {
      const label = job.status === "PROCESSING" ? "Request cancel" : "Cancel job";
      actions.append(
        el("button", { type: "button", id: "detail-cancel", className: "danger", onclick: () => this.cancel() }, label),
      );
    }
    if (job.result_url) {
      actions.append(
        el("a", { href: job.result_url, id: "detail-download", download: `${job.job_id}` }, "Download the result"),
      );
    }
    if (actions.childElementCount) parts.push(actions);

    if (job.result_url) {
      const preview = el("pre", { className: "preview", id: "detail-preview", tabIndex: 0, "aria-label": "Result preview" });
      const caption = el("p", { className: "help", id: "detail-preview-note" }, "Loading the result...");
      parts.push(el("h3", {}, "Result"), caption, preview);
      this.loadPreview(job, preview, caption);
    }
    $("detail-body").replaceChildren(...parts);
  }

  async loadPreview(job, preview, caption) {
    // Read once per job (the URL is presigned anew on every GET /job); reuse what was read.
    if (this.previewFor?.jobId === job.job_id) {
      preview.textContent = this.previewFor.text;
      caption.textContent = this.previewFor.note;
      return;
    }
    try {
      const { text, more, size } = await readPreview(job.result_url);
      const note = more
        ? `The first ${PREVIEW_BYTES / 1024} KB${size ? ` of ${size.toLocaleString()} bytes` : ""}; download it for the rest.`
        : "The whole result.";
      this.previewFor = { jobId: job.job_id, text, note };
      preview.textContent = text;
      caption.textContent = note;
    } catch (err) {
      caption.textContent = `No preview: ${err.message}. The download link may still work.`;
    }
  }
}
