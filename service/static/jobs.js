// Training: the job form (with the API key), the jobs list, and one job watched live over
// Server-Sent Events (GET /jobs/{id}/events): progress, iterations/s, curves, snapshots, Figure 1.

import { apiKey, describe, getJSON, rememberKey, request, setApiKey } from "./api.js";
import { COLORS, figure1, lineChart } from "./charts.js";
import * as sweeps from "./sweeps.js";

const $ = (id) => document.getElementById(id);
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const LIST_EVERY_MS = 5000;

// Used when the server does not describe its presets (GET /gallery/options).
const FALLBACK_OPTIONS = {
  presets: { quick: { dataset: "mnist", iterations: 3000, k: 1 } },
  datasets: ["mnist"],
};

let hooks = { onJobOpened: () => {}, onJobFinished: () => {} };
let options = FALLBACK_OPTIONS;
let watched = null; // {id, source, rows, snapshots: Set, dataset, finished}
let drawQueued = false;

function option(value, label = value) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = label;
  return node;
}

// "flowers (upload, 3×32×32)": the kind and sample shape from GET /gallery/options, when it sends them.
function datasetLabel(name) {
  const info = (options.dataset_info || {})[name];
  return info ? `${name} (${info.kind}, ${info.image_shape.join("×")})` : name;
}

function fillForm() {
  $("job-preset").replaceChildren(...Object.keys(options.presets).map((p) => option(p)));
  $("job-dataset").replaceChildren(option("", "preset's default"),
    ...options.datasets.map((d) => option(d, datasetLabel(d))));
  // The few-minute preset by default; the paper's recipes take hours on a CPU.
  if (options.presets.quick) $("job-preset").value = "quick";
  presetChanged();
}

function presetChanged() {
  const preset = options.presets[$("job-preset").value];
  if (!preset) return;
  $("job-iterations").value = preset.iterations;
  $("job-k").value = preset.k;
  $("job-dataset").value = "";
}

function clearFieldErrors() {
  for (const node of $("train-form").querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

async function submitJob(event) {
  event.preventDefault();
  clearFieldErrors();
  setApiKey($("api-key").value.trim());
  const form = new FormData($("train-form"));
  const body = { model: form.get("model"), preset: form.get("preset") };
  if (form.get("dataset")) body.dataset = form.get("dataset");
  for (const name of ["k", "iterations"]) {
    if (form.get(name) !== "") body[name] = Number(form.get(name));
  }
  $("train-status").textContent = "Submitting…";
  try {
    const job = await getJSON("/jobs", { method: "POST", body });
    $("train-status").textContent = `Queued job ${job.id.slice(0, 8)} for ${job.model}.`;
    await refreshList();
    openJob(job.id);
  } catch (error) {
    for (const f of error.fields || []) {
      const input = $("train-form").elements[f.field];
      if (input) input.setAttribute("aria-invalid", "true");
    }
    if (error.status === 401) $("api-key").setAttribute("aria-invalid", "true");
    $("train-status").textContent = `Not started: ${describe(error)}`;
  }
}

function progressCell(job) {
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = job.progress;
  bar.setAttribute("aria-label", `progress of ${job.model}`);
  return bar;
}

function jobRow(job) {
  const tr = document.createElement("tr");
  tr.dataset.jobId = job.id;
  const name = document.createElement("td");
  name.textContent = job.model;
  if (job.kind !== "train") {  // e.g. a Parzen evaluation of that model
    name.append(" ", Object.assign(document.createElement("span"), { className: "kind", textContent: job.kind }));
  }
  const status = Object.assign(document.createElement("td"), { textContent: job.status,
                                                               className: `st st-${job.status}` });
  tr.append(name, status);
  const td = document.createElement("td");
  td.append(progressCell(job));
  tr.append(td);
  const created = job.created_at ? new Date(job.created_at).toLocaleString() : "";
  const iterations = job.kind === "train" ? `${job.iteration} / ${job.config.iterations ?? "?"}` : "";
  tr.append(Object.assign(document.createElement("td"), { textContent: iterations, className: "iters" }));
  tr.append(Object.assign(document.createElement("td"), { textContent: created, className: "created" }));
  const open = Object.assign(document.createElement("button"), { type: "button", textContent: "Open" });
  open.setAttribute("aria-label", `Open job ${job.model} ${job.id.slice(0, 8)}`);
  open.addEventListener("click", () => openJob(job.id));
  const action = document.createElement("td");
  action.append(open);
  tr.append(action);
  return tr;
}

export async function refreshList() {
  try {
    const jobs = await getJSON("/jobs?limit=20");
    $("jobs-table").tBodies[0].replaceChildren(...jobs.map(jobRow));
  } catch (error) {
    $("train-status").textContent = `Could not list jobs: ${describe(error)}`;
  }
}

function showJob(job) {
  const what = job.kind === "train" ? `${job.dataset}, ${job.config.preset}` : `${job.kind}, ${job.dataset}`;
  $("job-title").textContent = `Job ${job.id.slice(0, 8)}: ${job.model} (${what})`;
  $("job-progress").value = job.progress;
  const total = job.config.iterations || 0;
  const percent = `${Math.round(job.progress * 100)}%`;
  const counted = job.kind === "train" ? `${job.iteration} / ${total}` : "";
  $("job-progress-text").textContent = counted ? `${counted} iterations (${percent})` : percent;
  const extra = job.cancel_requested && !FINISHED.has(job.status) ? ", cancelling" : "";
  $("job-status").textContent = `Status: ${job.status}${extra}${job.error ? ` — ${job.error}` : ""}`;
  const restarts = (job.restarts || []).map((r) => `seed ${r.seed} lost at iteration ${r.iteration}, restarted with ${r.next_seed}`);
  const note = [job.warning, ...restarts].filter(Boolean).join("; ");
  $("job-warning").hidden = !note;
  $("job-warning").textContent = note ? `Warning: ${note}.` : "";
  $("job-cancel").disabled = FINISHED.has(job.status) || job.cancel_requested;
  const row = document.querySelector(`#jobs-table tr[data-job-id="${job.id}"]`);
  if (row) {
    row.querySelector(".st").textContent = job.status;
    row.querySelector(".st").className = `st st-${job.status}`;
    row.querySelector("progress").value = job.progress;
    row.querySelector(".iters").textContent = counted;
  }
}

function drawCharts() {
  drawQueued = false;
  if (!watched) return;
  const rows = watched.rows;
  const series = (key) => rows.map((r) => [r.iteration, r[key]]);
  lineChart($("chart-loss"), [
    { label: "D loss", color: COLORS[0], points: series("d_loss") },
    { label: "G loss", color: COLORS[1], points: series("g_loss") },
  ], { title: "D and G loss" });
  lineChart($("chart-d"), [
    { label: "D(x)", color: COLORS[0], points: series("d_real") },
    { label: "D(G(z))", color: COLORS[1], points: series("d_fake") },
  ], { title: "Mean D(x) and D(G(z))", yDomain: [0, 1] });
  lineChart($("chart-jsd"), [{ label: "JSD", color: COLORS[2], points: series("jsd") }],
            { title: "JSD estimate" });
  // Rows of scored iterations carry valid_ll (worker/validation.py); the panel shows only for such jobs.
  const scored = rows.filter((r) => Number.isFinite(r.valid_ll));
  $("figure-valid").hidden = !scored.length;
  if (scored.length) {
    lineChart($("chart-valid"), [{ label: "valid LL", color: COLORS[3], points: scored.map((r) => [r.iteration, r.valid_ll]) }],
              { title: "Validation log-likelihood (nats)" });
  }
  const last = rows.at(-1);
  $("job-rate").textContent = last && Number.isFinite(last.it_per_s) ? `${last.it_per_s.toFixed(1)} it/s` : "";
}

function addMetrics(rows) {
  const after = watched.rows.length ? watched.rows.at(-1).iteration : -1;
  watched.rows.push(...rows.filter((r) => r.iteration > after));
  if (!drawQueued) {
    drawQueued = true;
    requestAnimationFrame(drawCharts);
  }
}

function addSnapshot(snap) {
  if (watched.snapshots.has(snap.iteration)) return;
  watched.snapshots.add(snap.iteration);
  const fig = document.createElement("figure");
  fig.dataset.iteration = snap.iteration;
  const img = Object.assign(document.createElement("img"), {
    src: snap.url, alt: `samples from the fixed z at iteration ${snap.iteration}`, className: "pixel",
  });
  fig.append(img, Object.assign(document.createElement("figcaption"), { textContent: `it ${snap.iteration}` }));
  // Newest first, so the latest snapshot is visible without scrolling.
  const box = $("snapshots");
  const later = [...box.children].find((c) => Number(c.dataset.iteration) < snap.iteration);
  box.insertBefore(fig, later || null);
}

// Figure 1 at one of the paper's stages (a)-(d), from the figures the job stored (GET /jobs/{id}/toy), or live.
function pressStage(stage) {
  for (const button of $("figure1-stages").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.stage === stage));
  }
}

async function showStage(stage) {
  if (!watched) return;
  const id = watched.id;
  watched.stage = stage;
  pressStage(stage);
  if (stage === "live") {
    if (watched.figure) figure1($("chart-fig1"), watched.figure);
    return;
  }
  try {
    const figures = await getJSON(`/jobs/${id}/toy`);
    const fig = figures.find((f) => f.stage === stage);
    if (!watched || watched.id !== id || watched.stage !== stage) return;
    if (fig) figure1($("chart-fig1"), fig);
    else $("job-status").textContent = stage === "end" ? "The end panel appears when the job finishes."
      : "This job stored no figure for that stage (it started before stages were recorded).";
  } catch (error) {
    $("job-status").textContent = `Could not load Figure 1: ${describe(error)}`;
  }
}

function closeStream() {
  if (watched && watched.source) watched.source.close();
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function openJob(id) {
  if (!UUID.test(id)) return;
  closeStream();
  watched = { id, source: null, rows: [], snapshots: new Set(), finished: false, stage: "live", figure: null };
  pressStage("live");
  $("job-panel").hidden = false;
  $("snapshots").replaceChildren();
  $("figure1").hidden = true;
  sweeps.hide();
  $("job-metrics-csv").href = `/jobs/${id}/metrics?format=csv`;
  $("job-metrics-svg").href = `/jobs/${id}/metrics?format=svg`;
  drawCharts();
  const source = new EventSource(`/jobs/${id}/events`);
  watched.source = source;
  const mine = (fn) => (event) => { if (watched && watched.id === id) fn(JSON.parse(event.data)); };
  source.addEventListener("job", mine((job) => {
    showJob(job);
    $("figure1").hidden = job.dataset !== "toy-1d";
    $("job-training").hidden = job.kind !== "train";  // an evaluation job has no curves or snapshots
    if (job.sweep_id && !watched.sweepId) {
      watched.sweepId = job.sweep_id;
      sweeps.show(job.sweep_id);
    }
  }));
  source.addEventListener("metrics", mine(addMetrics));
  source.addEventListener("snapshot", mine(addSnapshot));
  source.addEventListener("figure1", mine((fig) => {
    watched.figure = fig;
    if (watched.stage === "live") figure1($("chart-fig1"), fig);
  }));
  source.addEventListener("end", mine(() => {
    source.close();
    if (watched.sweepId) sweeps.show(watched.sweepId);   // the members' final curves and the best
    watched.finished = true;
    hooks.onJobFinished(id);
    refreshList();
  }));
  source.addEventListener("error", () => {
    if (!watched || watched.id !== id || watched.finished) return;
    // CONNECTING: EventSource retries by itself and resumes from Last-Event-ID. CLOSED: it gave up
    // (e.g. a 404 for an unknown job).
    $("job-status").textContent = source.readyState === EventSource.CLOSED
      ? "Could not follow this job (unknown job, or the server refused the stream)."
      : "Connection lost; reconnecting…";
  });
  hooks.onJobOpened(id);
  $("job-panel").scrollIntoView({ block: "start" });
}

export function closeJob() {
  closeStream();
  watched = null;
  $("job-panel").hidden = true;
  hooks.onJobOpened(null);
}

async function cancelJob() {
  if (!watched) return;
  setApiKey($("api-key").value.trim());
  try {
    const job = (await request(`/jobs/${watched.id}/cancel`, { method: "POST" })).data;
    showJob(job);
  } catch (error) {
    $("job-status").textContent = `Cancel failed: ${describe(error)}`;
  }
}

export async function init(serverOptions, callbacks) {
  hooks = { ...hooks, ...callbacks };
  options = serverOptions || FALLBACK_OPTIONS;
  $("api-key").value = apiKey();
  $("api-key").addEventListener("change", async () => {
    const accepted = await rememberKey($("api-key").value.trim());
    if (accepted) $("api-key").removeAttribute("aria-invalid");
    else $("api-key").setAttribute("aria-invalid", "true");
  });
  fillForm();
  $("job-preset").addEventListener("change", presetChanged);
  $("train-form").addEventListener("submit", submitJob);
  $("job-cancel").addEventListener("click", cancelJob);
  $("job-close").addEventListener("click", closeJob);
  for (const button of $("figure1-stages").querySelectorAll("button")) {
    button.addEventListener("click", () => showStage(button.dataset.stage));
  }
  await refreshList();
  setInterval(() => { if (!document.hidden) refreshList(); }, LIST_EVERY_MS);
}
