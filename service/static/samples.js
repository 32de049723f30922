// The 8x8 sample grid. With /samples?format=json each sample is its own button (select two to
// interpolate between their z), optionally beside its nearest training image (the paper's Figure 2).
// Without it, the PNG grid is shown as one image and selecting is off. A toy model's samples are points:
// a plot in data space (plots.js) whose marks are selected by clicking.

import { getImage, query, request } from "./api.js";
import * as plots from "./plots.js";

const $ = (id) => document.getElementById(id);
const N = 64;
const COLUMNS = 8;
const GRID_LABEL = "8 by 8 samples";

let onPicked = null;
let zs = [];         // per-sample z, as the comma-separated text /interpolate accepts
let classes = [];    // per-sample class name of a conditional model (else empty)
let picked = [];     // indices of the selected samples, oldest first
let objectUrl = null;

export function init(callbacks) {
  onPicked = callbacks.onPicked;
  $("grid").addEventListener("keydown", moveFocus);
}

export function clear() {
  $("grid").replaceChildren();
  $("grid-hint").hidden = true;
}

// float32 survives a round trip through 9 significant digits; shorter than the JSON's float64 digits.
// Number(...) then String drops the trailing zeros: the shortest text for that 9-digit decimal.
export const zText = (row) => row.map((v) => String(Number(Number(v).toPrecision(9)))).join(",");

// Load and draw; returns what the server actually used: {seed, version} (and n for toys) as strings.
// toy: null for an image model; {dim, definition} for a toy (definition: its mixture, or null if unknown).
export async function load(state, features, toy) {
  if (toy) return loadPoints(state, toy);
  // label "all": one row of COLUMNS samples per class; a class or "" (drawn from the seed): the 8x8 grid.
  const params = { model: state.model, version: state.version, seed: state.seed,
                   n: state.label === "all" ? COLUMNS : N, label: state.label };
  if (features.samplesJson) {
    const { data, headers } = await request(`/samples?${query({ ...params, format: "json",
                                                                 neighbors: state.neighbors ? "true" : "" })}`);
    drawTiles(data);
    // The seed from the header, not the body: JSON.parse rounds integers above 2^53.
    return { seed: headers.get("X-Seed"), version: headers.get("X-Model-Version") };
  }
  const { url, headers } = await getImage(`/samples?${query(params)}`);
  drawPng(url);
  return { seed: headers.get("X-Seed"), version: headers.get("X-Model-Version") };
}

async function loadPoints(state, toy) {
  const params = { model: state.model, version: state.version, seed: state.seed, n: state.n, format: "json",
                   neighbors: state.neighbors ? "true" : "" };
  const { data, headers } = await request(`/samples?${query(params)}`);
  const shown = { seed: headers.get("X-Seed"), version: headers.get("X-Model-Version"),
                  n: String(data.points.length) };
  drawPoints(data, toy, shown);
  return shown;
}

function drawPoints(body, toy, shown) {
  zs = body.z.map(zText);
  classes = [];
  picked = [];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("role", "img");
  svg.setAttribute("class", "plot");
  const neighbours = Array.isArray(body.neighbors) ? body.neighbors.map((nb) => nb.point) : null;
  const against = toy.definition ? " over the data's density" : "";
  const label = toy.dim === 1
    ? `Histogram of ${shown.n} samples of ${body.model} v${shown.version} (seed ${shown.seed})${against}`
    : `${shown.n} samples of ${body.model} v${shown.version} (seed ${shown.seed}) in the plane${against}`;
  if (toy.dim === 1) plots.histogram(svg, body.points.map((p) => p[0]), toy.definition, { neighbours, label });
  else plots.scatter(svg, body.points, toy.definition, { neighbours, label });
  svg.addEventListener("click", (event) => {
    const mark = event.target.closest("[data-index]");
    if (mark) pick(Number(mark.dataset.index));
  });
  $("grid").className = "grid plot";
  $("grid").setAttribute("aria-label", label);
  $("grid").replaceChildren(svg);
  $("grid-hint").hidden = !onPicked;
  $("grid-hint").textContent = !onPicked ? "" : toy.dim === 1
    ? "Click two ticks under the histogram (one per sample) to interpolate between their z."
    : "Click two points to interpolate between their z.";
}

function drawPng(url) {
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = url;
  const img = Object.assign(document.createElement("img"), { src: url, className: "pixel whole",
                                                             alt: "an 8 by 8 grid of generated samples" });
  $("grid").className = "grid whole";
  $("grid").setAttribute("aria-label", GRID_LABEL);
  $("grid").replaceChildren(img);
  $("grid-hint").hidden = true;
}

function drawTiles(body) {
  zs = body.z.map(zText);
  classes = body.labels || [];
  picked = [];
  const withNeighbors = Array.isArray(body.neighbors);
  const cells = body.images.map((src, i) => {
    const cell = document.createElement("div");
    cell.className = "cell";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "tile";
    button.dataset.index = i;
    button.tabIndex = i === 0 ? 0 : -1; // one tab stop; arrow keys move inside the grid
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `sample ${i + 1}, row ${Math.floor(i / COLUMNS) + 1}, ` +
                                      `column ${(i % COLUMNS) + 1}${classes[i] ? `, class ${classes[i]}` : ""}`);
    button.append(Object.assign(document.createElement("img"), { src, alt: "", className: "pixel" }));
    button.addEventListener("click", () => pick(i));
    cell.append(button);
    if (withNeighbors) {
      const nb = body.neighbors[i];
      const img = Object.assign(document.createElement("img"), {
        src: nb.image, className: "pixel neighbour",
        alt: `nearest training image to sample ${i + 1} (training row ${nb.index})`,
      });
      img.title = `training image ${nb.index}, squared distance ${nb.distance.toFixed(1)}`;
      cell.append(img);
    }
    return cell;
  });
  $("grid").className = `grid tiles${withNeighbors ? " with-neighbours" : ""}`;
  $("grid").setAttribute("aria-label", body.n === COLUMNS * new Set(classes).size && classes.length > COLUMNS
    ? `one row of ${COLUMNS} samples per class` : GRID_LABEL);
  $("grid").replaceChildren(...cells);
  $("grid-hint").hidden = !onPicked;
  $("grid-hint").textContent = onPicked ? "Select two samples to interpolate between them." : "";
}

function pick(i) {
  if (!onPicked) return;
  if (picked.includes(i)) picked = picked.filter((j) => j !== i);
  else picked = picked.length >= 2 ? [i] : [...picked, i];
  for (const mark of $("grid").querySelectorAll("[data-index]")) {  // tiles, or a plot's points
    const at = picked.indexOf(Number(mark.dataset.index));
    if (mark.classList.contains("tile")) mark.setAttribute("aria-pressed", String(at >= 0));
    mark.dataset.pick = at >= 0 ? (at === 0 ? "from" : "to") : "";
    if (at >= 0 && mark instanceof SVGElement) mark.parentNode.append(mark);  // drawn over its neighbours
  }
  if (picked.length === 2) {
    $("grid-hint").textContent = `Interpolating from sample ${picked[0] + 1} (A) to sample ${picked[1] + 1} (B).`;
    onPicked([zs[picked[0]], zs[picked[1]]], [classes[picked[0]], classes[picked[1]]]);
  } else {
    $("grid-hint").textContent = picked.length ? `Sample ${picked[0] + 1} selected (A); select one more.`
                                               : "Select two samples to interpolate between them.";
  }
}

// Arrow keys, Home and End move between samples (a roving tab stop, so Tab leaves the grid in one step).
function moveFocus(event) {
  const tiles = [...$("grid").querySelectorAll(".tile")];
  const at = tiles.indexOf(document.activeElement);
  if (at < 0) return;
  const delta = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -COLUMNS, ArrowDown: COLUMNS }[event.key];
  let next = at + (delta || 0);
  if (event.key === "Home") next = 0;
  else if (event.key === "End") next = tiles.length - 1;
  else if (!delta) return;
  event.preventDefault();
  next = Math.max(0, Math.min(tiles.length - 1, next));
  tiles[at].tabIndex = -1;
  tiles[next].tabIndex = 0;
  tiles[next].focus();
}
