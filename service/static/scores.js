// The selected version's sample-quality scores (GET /scores) beside the real-train floor, and its class
// histogram as bars against the test set's. GET /scores answers 404 for a version never scored, so the panel
// asks only when GET /models says the version has scores (its `scores` field); otherwise it says how to ask.

import { describe, query, request } from "./api.js";
import { COLORS, el } from "./charts.js";

const $ = (id) => document.getElementById(id);
const ROWS = [
  ["fd", "FD (Fréchet distance)"], ["kid", "KID"], ["precision", "Precision (k = 3)"], ["recall", "Recall (k = 3)"],
  ["classes_covered", "Classes covered"], ["class_kl", "Class KL to test"], ["modes_covered", "Modes covered"],
];
let generation = 0;
let pending = null;

const num = (v) => (Number.isFinite(v) ? String(+v.toPrecision(4)) : "–");

function table(body) {
  const ref = body ? body.reference || {} : {};
  const rows = ROWS.filter(([key]) => body && body[key] !== undefined && body[key] !== null).map(([key, label]) => {
    const tr = document.createElement("tr");
    const mine = key === "kid" && Number.isFinite(body.kid_std) ? `${num(body.kid)} ± ${num(body.kid_std)}` : num(body[key]);
    tr.append(Object.assign(document.createElement("th"), { scope: "row", textContent: label }),
              Object.assign(document.createElement("td"), { textContent: mine }),
              Object.assign(document.createElement("td"), { textContent: num(ref[key]) }));
    return tr;
  });
  $("scores-table").tBodies[0].replaceChildren(...rows);
}

function histogram(samples, test) {
  const W = 360, H = 140, pad = 20, n = samples.length;
  const top = Math.max(...samples, ...test, 1e-9);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "class histogram" });
  const slot = (W - 2 * pad) / n;
  samples.forEach((v, i) => {
    for (const [k, value] of [[0, v], [1, test[i]]]) {
      const h = ((H - 2 * pad) * value) / top;
      svg.append(el("rect", { x: pad + i * slot + 2 + k * (slot / 2 - 2), y: H - pad - h, width: slot / 2 - 2,
                              height: h, fill: COLORS[k], class: k ? "test-bar" : "sample-bar" }));
    }
    svg.append(el("text", { x: pad + (i + 0.5) * slot, y: H - 5, "text-anchor": "middle", "font-size": 10 }, i));
  });
  $("scores-histogram").replaceChildren(svg);
  $("scores-histogram-figure").hidden = false;
}

// info: the version's entry from GET /models (or undefined).
export async function show(model, info) {
  clearTimeout(pending);
  const mine = ++generation;
  table(null);
  $("scores-histogram-figure").hidden = true;
  if (!info || !info.scores) {
    $("scores-status").textContent = info
      ? `${model} v${info.version} has no sample-quality scores yet (POST /scores?model=${model}&version=${info.version} asks for them).`
      : "";
    return;
  }
  $("scores-status").textContent = "Loading the scores…";
  try {
    const response = await request(`/scores?${query({ model, version: info.version })}`);
    if (mine !== generation) return;
    if (response.status === 202) {
      $("scores-status").textContent = `Scoring ${model} v${info.version}…`;
      pending = setTimeout(() => show(model, info), (Number(response.headers.get("Retry-After")) || 5) * 1000);
      return;
    }
    const body = response.data;
    table(body);
    if (Array.isArray(body.class_histogram) && Array.isArray(body.test_histogram)) {
      histogram(body.class_histogram, body.test_histogram);
    }
    $("scores-status").textContent = `${body.n_samples} samples against ${body.n_test} test rows; ${body.space}.`;
  } catch (error) {
    if (mine !== generation) return;
    $("scores-status").textContent = `Scores unavailable: ${describe(error)}`;
  }
}
