// A seed sweep's members on one chart: each member's mean D(G(z)) by iteration (its validation log-likelihood
// when the members score while training), from GET /sweeps/{id} and each member's GET /jobs/{id}/metrics.

import { describe, getJSON } from "./api.js";
import { COLORS, lineChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
let shown = "";

export function hide() {
  shown = "";
  $("figure-sweep").hidden = true;
}

export async function show(sweepId) {
  shown = sweepId;
  $("figure-sweep").hidden = false;
  try {
    const sweep = await getJSON(`/sweeps/${sweepId}`);
    const rows = await Promise.all(sweep.members.map((m) => getJSON(`/jobs/${m.job_id}/metrics`)));
    if (shown !== sweepId) return;
    const scored = rows.some((r) => r.some((row) => Number.isFinite(row.valid_ll)));
    const key = scored ? "valid_ll" : "d_fake";
    const series = sweep.members.map((m, i) => ({
      label: `seed ${m.seed}${sweep.best && sweep.best.job_id === m.job_id ? " (best)" : ""}`,
      color: COLORS[i % COLORS.length], dash: i >= COLORS.length ? "4 3" : "",
      points: rows[i].filter((r) => Number.isFinite(r[key])).map((r) => [r.iteration, r[key]]),
    }));
    lineChart($("chart-sweep"), series, { title: scored ? "Validation log-likelihood by seed" : "Mean D(G(z)) by seed" });
    const best = sweep.best ? `best: seed ${sweep.best.seed} (valid LL ${Number(sweep.best.valid_ll).toFixed(1)})` : "";
    $("sweep-caption").textContent = `Sweep ${sweepId.slice(0, 8)}: ${sweep.members.length} seeds, ${sweep.status}. ${best}`;
  } catch (error) {
    if (shown === sweepId) $("sweep-caption").textContent = `Could not load the sweep: ${describe(error)}`;
  }
}
