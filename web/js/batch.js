// Reading a file of jobs for POST /jobs/batch: JSON (a list, or {"jobs": [...]}) or CSV with
// a header row naming the fields. The API validates every item; this only reads the file.

export const MAX_BATCH = 100;

/** RFC 4180 CSV: commas, quoted fields ("" inside quotes is a quote), CRLF or LF rows. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  const src = text.replace(/^\uFEFF/, "");
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"' && field === "") {
      quoted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && src[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (quoted) throw new Error("the CSV ends inside a quoted field");
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((cell) => cell.trim() !== ""));
}

function jobsFromCsv(text) {
  const rows = parseCsv(text);
  if (rows.length < 2) throw new Error("the CSV needs a header row and at least one job");
  const header = rows[0].map((h) => h.trim());
  return rows.slice(1).map((cells, n) => {
    if (cells.length > header.length) throw new Error(`row ${n + 2} has more cells than the header`);
    const job = {};
    header.forEach((name, i) => {
      const value = cells[i] ?? "";
      if (name && value !== "") {
        job[name] = name === "delay_seconds" && /^\d+$/.test(value.trim()) ? Number(value.trim()) : value;
      }
    });
    return job;
  });
}

function jobsFromJson(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`the file is not valid JSON (${err.message})`);
  }
  const jobs = Array.isArray(data) ? data : data?.jobs;
  if (!Array.isArray(jobs)) throw new Error('the JSON must be a list of jobs or {"jobs": [...]}');
  return jobs;
}

/** The jobs of a file: by its name's extension, else by its first character. */
export function parseJobsFile(name, text) {
  const lower = String(name).toLowerCase();
  const json = lower.endsWith(".json") || (!lower.endsWith(".csv") && /^\s*[[{]/.test(text));
  const jobs = json ? jobsFromJson(text) : jobsFromCsv(text);
  if (jobs.length === 0) throw new Error("the file holds no jobs");
  if (jobs.length > MAX_BATCH) throw new Error(`the file holds ${jobs.length} jobs; a batch takes at most ${MAX_BATCH}`);
  return jobs;
}
