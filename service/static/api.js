// Talking to the ganserve API: JSON and image fetches, problem+json errors, the API key, and which
// optional endpoints this server has (read from /openapi.json so a missing one is never a 404 in the console).

const KEY_STORAGE = "ganserve.apiKey";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    // [{field, message}] from a 422, so forms can point at the field.
    this.fields = problem.errors || [];
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(value) {
  // sessionStorage, not localStorage: the key leaves with the tab.
  if (value) sessionStorage.setItem(KEY_STORAGE, value);
  else sessionStorage.removeItem(KEY_STORAGE);
}

// The key typed into the form, also as the server's HttpOnly read cookie: a read-keyed server then lets
// through what cannot carry a header (a reload of the page, images, event streams). Resolves to whether
// the server accepted the key.
export async function rememberKey(value) {
  setApiKey(value);
  const response = await fetch("/gallery/key", { method: value ? "POST" : "DELETE", headers: keyHeader() });
  return response.ok;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText, status: response.status };
  }
}

// The key goes with every fetch once typed: a server with read_requires_key wants it on reads too.
function keyHeader() {
  return apiKey() ? { "X-API-Key": apiKey() } : {};
}

export async function request(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json", ...keyHeader() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return { status: response.status, headers: response.headers, data: await response.json() };
}

export async function getJSON(path, options) {
  return (await request(path, options)).data;
}

// Fetch an image, returning an object URL plus the response headers (X-Seed, X-Model-Version).
export async function getImage(path, signal) {
  const response = await fetch(path, { signal, headers: keyHeader() });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return { url: URL.createObjectURL(await response.blob()), headers: response.headers };
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  return q.toString();
}

// Which optional endpoints and parameters exist, from the OpenAPI document.
export async function features() {
  let paths = {};
  try {
    paths = (await getJSON("/openapi.json")).paths || {};
  } catch {
    // Without the document assume only the core API.
  }
  const params = (path) => new Set(((paths[path] || {}).get?.parameters || []).map((p) => p.name));
  const sampleParams = params("/samples");
  return {
    samplesJson: sampleParams.has("format"),
    neighbors: sampleParams.has("neighbors"),
    interpolate: "/interpolate" in paths,
    parzen: "/parzen" in paths,
    scores: "/scores" in paths,
    sweeps: "/sweeps/{sweep_id}" in paths,
    events: "/jobs/{job_id}/events" in paths,
    toy: "/jobs/{job_id}/toy" in paths,
    options: "/gallery/options" in paths,
  };
}

export function describe(error) {
  if (error instanceof ApiError) {
    const where = error.fields.map((f) => `${f.field}: ${f.message}`).join("; ");
    return `${error.status} ${error.problem.title || ""}: ${where || error.message}`;
  }
  return String(error && error.message ? error.message : error);
}
