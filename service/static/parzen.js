// The selected version's Parzen score beside the paper's Table 1 and the real-data reference row.
// GET /parzen: 200 with the score; 202 while its evaluation job runs (ask again after Retry-After);
// 409 when the last evaluation failed. Rows and the caveat come from the server when it sends them.

import { ApiError, apiKey, describe, getJSON, query, request } from "./api.js";

const $ = (id) => document.getElementById(id);

// Table 1 of the paper (MNIST column): shown before the server answers, or when it has no /parzen.
const TABLE1 = [
  { label: "DBN", ll: 138, se: 2 },
  { label: "Stacked CAE", ll: 121, se: 1.6 },
  { label: "Deep GSN", ll: 214, se: 1.1 },
  { label: "Adversarial nets", ll: 225, se: 2 },
];

let pending = null;
let generation = 0;

function row(label, value, className = "", note = "") {
  const tr = document.createElement("tr");
  tr.className = className;
  const th = Object.assign(document.createElement("th"), { scope: "row", textContent: label });
  if (note) th.title = note;
  tr.append(th, Object.assign(document.createElement("td"), { textContent: value }));
  return tr;
}

const score = (ll, se) => (Number.isFinite(ll) ? `${ll.toFixed(0)} ± ${Number.isFinite(se) ? se.toFixed(1) : "?"}`
                                                 : "–");

// ours: {label, value} for this server's row; body: the server's answer (references, caveat), if any.
function render(ours, body) {
  const refs = body && Array.isArray(body.references) ? body.references : null;
  const paper = refs ? refs.filter((r) => r.reference !== "real-train") : TABLE1;
  const real = refs ? refs.filter((r) => r.reference === "real-train") : [];
  const rows = paper.map((r) => row(r.label, score(r.ll, r.se), "", r.source || "Goodfellow et al. 2014, Table 1"));
  rows.push(row(ours.label, ours.value, "ours"));
  for (const r of real) rows.push(row(r.label, score(r.ll, r.se), "real", r.source || ""));
  $("parzen-table").tBodies[0].replaceChildren(...rows);
  $("parzen-table").tHead.rows[0].cells[1].textContent = ((body && body.dataset) || "mnist").toUpperCase();
  if (body && body.caveat) $("parzen-caveat").textContent = body.caveat;
}

function protocolText(body) {
  const p = body.protocol || {};
  const bits = [`σ = ${Number(body.sigma).toPrecision(3)}`, `${body.n_samples} samples of G`,
                `${body.n_test} test images`];
  if (p.sigma_selection) bits.push(`σ chosen as ${p.sigma_selection}`);
  return `Protocol: ${bits.join("; ")}.`;
}

// Before any model is selected: the paper's rows and an empty row for ours.
export function idle() {
  render({ label: "Selected version", value: "–" }, null);
}

export function disable(reason) {
  $("parzen-note").textContent = reason;
  $("parzen-note").hidden = false;
  $("parzen-status").textContent = "";
  render({ label: "Selected version", value: "not available" }, null);
}

async function evaluated(model, version) {
  const jobs = await getJSON(`/jobs?${query({ model, limit: 1000 })}`);
  return jobs.some((job) => job.kind === "parzen" && Number(job.target_version) === Number(version));
}

// Show the score of (model, version); called when the selection changes. `dims` is the data's size:
// a 1-D toy model has no test images to score.
export async function show(model, version, dims) {
  clearTimeout(pending);
  const mine = ++generation;
  const label = `${model} v${version}`;
  $("parzen-note").hidden = true;
  if (dims <= 1) {
    render({ label, value: "–" }, null);
    $("parzen-status").textContent = `${label} is a 1-D toy model: Parzen scores are for image datasets.`;
    return;
  }
  render({ label, value: "…" }, null);
  $("parzen-status").textContent = "Loading the score…";
  try {
    // Queuing an evaluation needs the key: without one, ask only when an evaluation of this version exists.
    if (!apiKey() && !(await evaluated(model, version))) {
      if (mine !== generation) return;
      render({ label, value: "no score yet" }, null);
      $("parzen-status").textContent = `${label} has no Parzen score yet: enter the API key to queue its evaluation.`;
      return;
    }
    const response = await request(`/parzen?${query({ model, version })}`);
    if (mine !== generation) return;
    const body = response.data;
    if (response.status === 202) {
      const job = body.job || {};
      render({ label, value: "scoring…" }, body);
      $("parzen-status").textContent = `Scoring ${label}: evaluation job ${String(job.id || "").slice(0, 8)} ` +
                                       `is ${job.status || "queued"}.`;
      const wait = Number(response.headers.get("Retry-After")) || 4;
      pending = setTimeout(() => show(model, version, dims), wait * 1000);
      return;
    }
    render({ label, value: score(body.ll, body.se) }, body);
    $("parzen-status").textContent = protocolText(body);
  } catch (error) {
    if (mine !== generation) return;
    render({ label, value: "no score" }, null);
    $("parzen-status").textContent = error instanceof ApiError && error.status === 409
      ? error.message : `Score unavailable: ${describe(error)}`;
  }
}
