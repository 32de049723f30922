// The gallery: pick a model and version, see an 8x8 grid (a plot of points for a toy model) and its seed,
// interpolate between two samples, compare the Parzen score with Table 1, and train. The URL
// (?model=&version=&seed=&n=&job=; n for toys only) reproduces the page.

import { describe, features, getJSON, query } from "./api.js";
import * as interp from "./interp.js";
import * as jobs from "./jobs.js";
import * as parzen from "./parzen.js";
import * as samples from "./samples.js";
import * as scores from "./scores.js";

const $ = (id) => document.getElementById(id);

const state = { models: [], model: "", version: "", seed: "", n: "", neighbors: false, job: "", features: {} };
// A toy's samples are points: enough of them for a histogram or a scatter to show G's density.
const TOY_POINTS = 512;
let options = null;  // GET /gallery/options: toy definitions and request limits, when the server has it
let loadToken = 0;
let lastParzen = "";
let lastScores = "";

function readUrl() {
  const p = new URLSearchParams(location.search);
  state.model = p.get("model") || "";
  state.version = p.get("version") || "";
  // Seeds stay strings: they go up to 2^63 - 1, beyond a JavaScript number's exact integers.
  state.seed = /^\d+$/.test(p.get("seed") || "") ? p.get("seed") : "";
  state.n = /^\d+$/.test(p.get("n") || "") ? p.get("n") : "";
  state.neighbors = p.get("neighbors") === "1";
  state.job = p.get("job") || "";
}

function writeUrl(push) {
  const q = query({ model: state.model, version: state.version, seed: state.seed, n: toyOf() ? state.n : "",
                    neighbors: state.neighbors ? "1" : "", job: state.job });
  const url = `${location.pathname}${q ? `?${q}` : ""}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function selectedVersion() {
  const model = state.models.find((m) => m.name === state.model);
  return model && model.versions.find((v) => String(v.version) === state.version);
}

// null for an image model; {dim, definition} for a toy (its samples are points). The server says which
// datasets are toys; a server without /gallery/options is judged by the shape toys have, (1, 1, d).
function toyOf(info = selectedVersion()) {
  if (!info) return null;
  const [c, h, d] = info.image_shape;
  const known = options && options.dataset_info;
  if (!(known ? known[info.dataset]?.kind === "toy" : c === 1 && h === 1)) return null;
  return { dim: d, definition: (options && options.toys && options.toys[info.dataset]) || null };
}

// The toy's sample count: the URL's or the input's, within the server's limit.
function pointCount() {
  const max = (options && options.limits && options.limits.max_samples) || 1024;
  const n = Number(state.n) || TOY_POINTS;
  return String(Math.max(1, Math.min(max, n)));
}

function option(value, label) {
  return Object.assign(document.createElement("option"), { value, textContent: label });
}

function fillModels() {
  $("model").replaceChildren(...state.models.map((m) => option(m.name, m.name)));
  if (!state.models.some((m) => m.name === state.model)) state.model = state.models[0]?.name || "";
  $("model").value = state.model;
  fillVersions();
}

function fillVersions() {
  const model = state.models.find((m) => m.name === state.model);
  const versions = model ? [...model.versions].reverse() : [];
  $("version").replaceChildren(...versions.map((v) => option(String(v.version),
    `v${v.version}${v.version === model.latest ? " (latest)" : ""} · ${v.dataset}`)));
  if (!versions.some((v) => String(v.version) === state.version)) state.version = model ? String(model.latest) : "";
  $("version").value = state.version;
  $("n-label").hidden = !toyOf();
}

async function loadModels() {
  try {
    state.models = await getJSON("/models");
  } catch (error) {
    $("samples-status").textContent = `Could not list models: ${describe(error)}`;
    state.models = [];
  }
  const none = state.models.length === 0;
  $("samples-note").hidden = !none;
  $("samples-note").textContent = none ? "No trained model yet: start a training job below; its samples appear here when it succeeds." : "";
  for (const id of ["model", "version", "seed", "n", "new-seed", "neighbors"]) $(id).disabled = none;
  fillModels();
}

// Draw the grid for the current state; seed "" asks the server for a new one (read back from X-Seed).
async function loadSamples(push) {
  if (!state.model) {
    samples.clear();
    return;
  }
  const token = ++loadToken;
  $("samples-status").textContent = "Generating…";
  const toy = toyOf();
  if (toy) state.n = pointCount();
  $("n-label").hidden = !toy;
  try {
    const shown = await samples.load(state, state.features, toy);
    if (token !== loadToken) return;
    state.seed = shown.seed;
    state.version = shown.version;
    $("seed").value = state.seed;
    $("version").value = state.version;
    if (toy) $("n").value = state.n = shown.n;
    const points = toy ? `, ${state.n} points` : "";
    $("samples-status").textContent = `${state.model} v${state.version}, seed ${state.seed}${points}.`;
    writeUrl(push);
    const key = `${state.model}@${state.version}`;
    if (state.features.parzen && key !== lastParzen) {  // a new seed does not change the score
      lastParzen = key;
      const info = selectedVersion();
      const dims = info ? info.image_shape.reduce((a, b) => a * b, 1) : 784;
      parzen.show(state.model, state.version, dims);
    }
    if (state.features.scores && key !== lastScores) {
      lastScores = key;
      scores.show(state.model, selectedVersion());
    }
  } catch (error) {
    if (token !== loadToken) return;
    $("samples-status").textContent = `Could not generate samples: ${describe(error)}`;
  }
}

// ---- interpolation -------------------------------------------------------------------------------------

async function interpolate(event) {
  if (event) event.preventDefault();
  if (!state.model) return;
  const params = { model: state.model, version: state.version, z0: $("z0").value.trim(),
                   z1: $("z1").value.trim(), steps: $("steps").value, method: $("method").value };
  $("interp-status").textContent = "Interpolating…";
  try {
    await interp.show(params, toyOf());
    $("interp-status").textContent = "";
  } catch (error) {
    $("interp-status").textContent = `Could not interpolate: ${describe(error)}`;
  }
}

function onPicked(pair) {
  $("z0").value = pair[0];
  $("z1").value = pair[1];
  interpolate();
}

// ---- wiring --------------------------------------------------------------------------------------------

function degrade(panel, note, reason) {
  $(note).textContent = reason;
  $(note).hidden = false;
  for (const node of $(panel).querySelectorAll("form")) node.hidden = true;
}

function applyLimits() {
  const limits = (options && options.limits) || {};
  if (limits.max_samples) $("n").max = limits.max_samples;
  if (limits.max_interpolation_steps) $("steps").max = limits.max_interpolation_steps;
}

async function init() {
  readUrl();
  state.features = await features();
  const f = state.features;
  if (!f.interpolate) degrade("interp-panel", "interp-note", "This server has no /interpolate endpoint yet.");
  if (!f.neighbors) {
    $("neighbors").closest("label").hidden = true;
    state.neighbors = false;
  }
  if (!f.scores) $("scores-panel").hidden = true;
  if (f.parzen) parzen.idle();
  else parzen.disable("This server has no /parzen endpoint yet: only the paper's rows are shown.");
  $("neighbors").checked = state.neighbors;
  samples.init({ onPicked: f.interpolate ? onPicked : null });

  $("model").addEventListener("change", () => {
    state.model = $("model").value;
    state.version = "";
    fillVersions();
    loadSamples(true);
  });
  $("version").addEventListener("change", () => { state.version = $("version").value; loadSamples(true); });
  $("sample-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.seed = /^\d+$/.test($("seed").value.trim()) ? $("seed").value.trim() : "";
    state.n = /^\d+$/.test($("n").value.trim()) ? $("n").value.trim() : "";
    loadSamples(true);
  });
  $("new-seed").addEventListener("click", () => { state.seed = ""; loadSamples(true); });
  $("neighbors").addEventListener("change", () => { state.neighbors = $("neighbors").checked; loadSamples(true); });
  $("interp-form").addEventListener("submit", interpolate);
  window.addEventListener("popstate", async () => {
    readUrl();
    fillModels();
    $("neighbors").checked = state.neighbors;
    await loadSamples(false);
    if (state.job) jobs.openJob(state.job); else jobs.closeJob();
  });

  options = f.options ? await getJSON("/gallery/options").catch(() => null) : null;
  applyLimits();
  await jobs.init(options, {
    onJobOpened: (id) => { state.job = id || ""; writeUrl(false); },
    onJobFinished: async () => {
      // A finished training job may have registered a version: offer it without a reload.
      await loadModels();
      if (!$("grid").childElementCount) await loadSamples(false);
    },
  });
  await loadModels();
  await loadSamples(false);
  if (state.job) jobs.openJob(state.job);
  document.body.dataset.ready = "1"; // for the browser tests: the first render is done
}

init();
