// Small DOM and formatting helpers (no framework).

export const $ = (id) => document.getElementById(id);

export const UNFINISHED = new Set(["PENDING", "SCHEDULED", "PROCESSING"]);

/** Create an element: el("td", {className: "x"}, "text", child). Text is never parsed as HTML. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function statusBadge(status) {
  return el("span", { className: `status status-${status}` }, status);
}

/** An ISO time as the reader's local date and time (the ISO value kept in the title). */
export function localTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return el("time", { dateTime: iso, title: iso }, date.toLocaleString());
}

export function show(node, message) {
  node.textContent = message ?? "";
  node.hidden = !message;
}

let announceTimer;
/** Tell screen readers (aria-live region) about something that happened. */
export function announce(message) {
  const region = $("announce");
  region.textContent = "";
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/** An error's text for a person: the API's message, with its code. */
export function describe(err) {
  if (err?.name === "ApiError" && err.code && !err.code.startsWith("http_") && err.code !== "network") {
    return `${err.message} (${err.code})`;
  }
  return err?.message || String(err);
}
