// The gallery: pick a model and version, see an 8x8 grid and its seed, interpolate between two samples,
// compare the Parzen score with Table 1, and train. The URL (?model=&version=&seed=&job=) reproduces the page.

import { describe, features, getImage, getJSON, query } from "./api.js";
import * as jobs from "./jobs.js";
import * as parzen from "./parzen.js";
import * as samples from "./samples.js";

const $ = (id) => document.getElementById(id);

const state = { models: [], model: "", version: "", seed: "", neighbors: false, job: "", features: {} };
let loadToken = 0;
let lastParzen = "";

function readUrl() {
  const p = new URLSearchParams(location.search);
  state.model = p.get("model") || "";
  state.version = p.get("version") || "";
  // Seeds stay strings: they go up to 2^63 - 1, beyond a JavaScript number's exact integers.
  state.seed = /^\d+$/.test(p.get("seed") || "") ? p.get("seed") : "";
  state.neighbors = p.get("neighbors") === "1";
  state.job = p.get("job") || "";
}

function writeUrl(push) {
  const q = query({ model: state.model, version: state.version, seed: state.seed,
                    neighbors: state.neighbors ? "1" : "", job: state.job });
  const url = `${location.pathname}${q ? `?${q}` : ""}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
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
  for (const id of ["model", "version", "seed", "new-seed", "neighbors"]) $(id).disabled = none;
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
  try {
    const shown = await samples.load(state, state.features);
    if (token !== loadToken) return;
    state.seed = shown.seed;
    state.version = shown.version;
    $("seed").value = state.seed;
    $("version").value = state.version;
    $("samples-status").textContent = `${state.model} v${state.version}, seed ${state.seed}.`;
    writeUrl(push);
    const key = `${state.model}@${state.version}`;
    if (state.features.parzen && key !== lastParzen) {  // a new seed does not change the score
      lastParzen = key;
      const model = state.models.find((m) => m.name === state.model);
      const info = model && model.versions.find((v) => String(v.version) === state.version);
      const dims = info ? info.image_shape.reduce((a, b) => a * b, 1) : 784;
      parzen.show(state.model, state.version, dims);
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
    const [strip, anim] = await Promise.all([
      getImage(`/interpolate?${query({ ...params, format: "png" })}`),
      getImage(`/interpolate?${query({ ...params, format: "gif" })}`),
    ]);
    for (const img of [$("interp-strip"), $("interp-anim")]) {
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    }
    $("interp-strip").src = strip.url;
    $("interp-anim").src = anim.url;
    const how = params.method === "slerp" ? "spherical" : "linear";
    $("interp-caption").textContent = `${how} interpolation in ${params.steps} steps, ${state.model} v${state.version}`;
    $("interp-out").hidden = false;
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

async function init() {
  readUrl();
  state.features = await features();
  const f = state.features;
  if (!f.interpolate) degrade("interp-panel", "interp-note", "This server has no /interpolate endpoint yet.");
  if (!f.neighbors) {
    $("neighbors").closest("label").hidden = true;
    state.neighbors = false;
  }
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

  const options = f.options ? await getJSON("/gallery/options").catch(() => null) : null;
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
