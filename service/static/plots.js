// Toy models generate points, not images: these plots draw them in data space. Samples: a histogram of G's
// 1-D samples under the data's density, or G's 2-D samples over the data's modes. Interpolation: the path of
// G(z) from A to B. The data's density is the toy's exact mixture of Gaussians (its means and std come from
// GET /gallery/options), not an estimate; without it only G's points are drawn.

import { PAD, el, frame, legend, path } from "./charts.js";

const WIDE = { W: 360, H: 220 };    // 1-D: x across, density or t up
const SQUARE = { W: 360, H: 360 };  // 2-D: the same scale on both axes
const G_COLOR = "#389e0d";
const DATA_COLOR = "#111";
const NEIGHBOUR_COLOR = "#8250df";

// p_data(x) of a toy {dim, means, std}: the mean of its isotropic Gaussians (models/datasets/toys.py).
export function density(toy, x) {
  const s2 = toy.std ** 2;
  let sum = 0;
  for (const m of toy.means) {
    let sq = 0;
    for (let i = 0; i < toy.dim; i += 1) sq += (x[i] - m[i]) ** 2;
    sum += Math.exp(-0.5 * sq / s2);
  }
  return sum / toy.means.length / (2 * Math.PI * s2) ** (toy.dim / 2);
}

// [lo, hi] covering the values and the data's modes within 3 std, with a margin.
function span(values, toy, axis) {
  const all = values.filter(Number.isFinite);
  if (toy) for (const m of toy.means) all.push(m[axis] - 3 * toy.std, m[axis] + 3 * toy.std);
  let lo = all.length ? Math.min(...all) : -1;
  let hi = all.length ? Math.max(...all) : 1;
  if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const margin = (hi - lo) * 0.05;
  return [lo - margin, hi + margin];
}

// Domains for a 2-D plot with the same units per pixel on both axes, so circles stay circles.
function squareDomains(points, toy) {
  const x = span(points.map((p) => p[0]), toy, 0);
  const y = span(points.map((p) => p[1]), toy, 1);
  const [w, h] = [SQUARE.W - PAD.left - PAD.right, SQUARE.H - PAD.top - PAD.bottom];
  const perPixel = Math.max((x[1] - x[0]) / w, (y[1] - y[0]) / h);
  const around = (d, pixels) => {
    const centre = (d[0] + d[1]) / 2;
    return [centre - (perPixel * pixels) / 2, centre + (perPixel * pixels) / 2];
  };
  return [around(x, w), around(y, h)];
}

// The data's modes as shaded discs at 1, 2 and 3 std (their overlap darkens the centre), under the points.
function modeDiscs(svg, toy, sx, sy) {
  const scale = Math.abs(sx(1) - sx(0));
  const g = el("g", { class: "mode-discs" });
  for (const m of toy.means) {
    for (const k of [3, 2, 1]) {
      g.append(el("circle", { cx: sx(m[0]), cy: sy(m[1]), r: k * toy.std * scale, fill: "rgba(17,17,17,0.12)" }));
    }
  }
  svg.append(g);
}

// A cross on each mode's mean, over the points, so modes narrower than a point stay visible.
function modeCrosses(svg, toy, sx, sy) {
  const g = el("g", { class: "modes" });
  for (const m of toy.means) {
    const [cx, cy] = [sx(m[0]), sy(m[1])];
    g.append(el("path", { d: `M${cx - 5},${cy}H${cx + 5}M${cx},${cy - 5}V${cy + 5}`, stroke: DATA_COLOR,
                          "stroke-width": 1.2 }));
  }
  svg.append(g);
}

// G's 1-D samples as a density histogram (area 1) with p_data dotted over it, as in the paper's Figure 1,
// and a rug of the samples (each tick selectable) at the bottom. neighbours: their nearest training points.
export function histogram(svg, xs, toy, { neighbours = null, label = "" } = {}) {
  const xDomain = span(xs, toy, 0);
  const bins = Math.max(10, Math.min(40, Math.round(Math.sqrt(xs.length))));
  const width = (xDomain[1] - xDomain[0]) / bins;
  const counts = new Array(bins).fill(0);
  for (const x of xs) counts[Math.min(bins - 1, Math.max(0, Math.floor((x - xDomain[0]) / width)))] += 1;
  const heights = counts.map((c) => c / (xs.length * width));
  const grid = Array.from({ length: 241 }, (_, i) => xDomain[0] + (i / 240) * (xDomain[1] - xDomain[0]));
  const data = toy ? grid.map((x) => [x, density(toy, [x])]) : [];
  const yMax = Math.max(...heights, ...data.map((p) => p[1])) * 1.1 || 1;
  const { sx, sy } = frame(svg, label, xDomain, [0, yMax], WIDE);
  const steps = heights.flatMap((h, i) => [[xDomain[0] + i * width, h], [xDomain[0] + (i + 1) * width, h]]);
  svg.append(el("path", { d: `M${sx(xDomain[0])},${sy(0)}${path(steps, sx, sy).replace(/^M/, "L")}` +
                              `L${sx(xDomain[1])},${sy(0)}Z`,
                          fill: "rgba(56,158,13,0.25)", stroke: G_COLOR, "stroke-width": 1.5, class: "g-hist" }));
  if (toy) {
    svg.append(el("path", { d: path(data, sx, sy), fill: "none", stroke: DATA_COLOR, "stroke-width": 2,
                            "stroke-dasharray": "2 3", class: "data-density" }));
  }
  const rug = el("g", { class: "rug" });
  const base = sy(0);
  (neighbours || []).forEach((p) => {
    rug.append(el("line", { x1: sx(p[0]), x2: sx(p[0]), y1: base - 16, y2: base - 10, class: "neighbour" }));
  });
  xs.forEach((x, i) => {
    rug.append(el("line", { x1: sx(x), x2: sx(x), y1: base - 9, y2: base, class: "sample", "data-index": i }));
  });
  svg.append(rug);
  legend(svg, [...(toy ? [{ label: "data density", color: DATA_COLOR, dash: "2 3" }] : []),
               { label: "G(z)", color: G_COLOR },
               ...(neighbours ? [{ label: "nearest training point", color: NEIGHBOUR_COLOR }] : [])]);
}

// G's 2-D samples (each selectable) over the data's modes; neighbours: a segment to each one's nearest
// training point. Points with more than two coordinates are drawn by their first two.
export function scatter(svg, points, toy, { neighbours = null, label = "" } = {}) {
  const [xDomain, yDomain] = squareDomains([...points, ...(neighbours || [])], toy);
  const { sx, sy } = frame(svg, label, xDomain, yDomain, SQUARE);
  if (toy) modeDiscs(svg, toy, sx, sy);
  if (neighbours) {
    const links = el("g", { class: "neighbours" });
    neighbours.forEach((q, i) => {
      const p = points[i];
      links.append(el("line", { x1: sx(p[0]), y1: sy(p[1]), x2: sx(q[0]), y2: sy(q[1]), class: "link" }));
      links.append(el("circle", { cx: sx(q[0]), cy: sy(q[1]), r: 2, class: "neighbour" }));
    });
    svg.append(links);
  }
  const dots = el("g", { class: "samples" });
  points.forEach((p, i) => {
    dots.append(el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, class: "sample", "data-index": i }));
  });
  svg.append(dots);
  if (toy) modeCrosses(svg, toy, sx, sy);
  legend(svg, [...(toy ? [{ label: "data modes", color: DATA_COLOR }] : []),
               { label: "G(z)", color: G_COLOR },
               ...(neighbours ? [{ label: "nearest training point", color: NEIGHBOUR_COLOR }] : [])]);
}

function ends(svg, first, last) {
  for (const [[x, y], text, cls] of [[first, "A", "from"], [last, "B", "to"]]) {
    svg.append(el("circle", { cx: x, cy: y, r: 6, class: `end ${cls}` }));
    svg.append(el("text", { x: x + 8, y: y + 4, class: `end-label ${cls}` }, text));
  }
}

function drawPath(svg, xy) {
  svg.append(el("path", { d: path(xy, (v) => v, (v) => v), class: "interp-path", fill: "none" }));
  const dots = el("g", { class: "steps" });
  for (const [x, y] of xy) dots.append(el("circle", { cx: x, cy: y, r: 3, class: "step" }));
  svg.append(dots);
  ends(svg, xy[0], xy.at(-1));
}

// The path of G(z) along a 1-D interpolation: each step's x (across) at its t (up, A at t = 0), over the
// data's modes as bands of 1 std around dotted means.
export function path1d(svg, xs, t, toy, label = "") {
  const { sx, sy } = frame(svg, label, span(xs, toy, 0), [-0.05, 1.05], WIDE);
  if (toy) {
    const g = el("g", { class: "modes" });
    for (const [m] of toy.means) {
      const bottom = WIDE.H - PAD.bottom;
      g.append(el("rect", { x: sx(m - toy.std), y: PAD.top, width: sx(m + toy.std) - sx(m - toy.std),
                            height: bottom - PAD.top, fill: "rgba(17,17,17,0.1)" }));
      g.append(el("line", { x1: sx(m), x2: sx(m), y1: PAD.top, y2: bottom, stroke: DATA_COLOR,
                            "stroke-dasharray": "2 3" }));
    }
    svg.append(g);
  }
  drawPath(svg, xs.map((x, i) => [sx(x), sy(t[i])]));
  legend(svg, [...(toy ? [{ label: "data: mean ± 1 std", color: DATA_COLOR, dash: "2 3" }] : []),
               { label: "G(z) along the path", color: G_COLOR }]);
}

// The path of G(z) along a 2-D interpolation, as a polyline through each step's point over the data's modes.
export function path2d(svg, points, toy, label = "") {
  const [xDomain, yDomain] = squareDomains(points, toy);
  const { sx, sy } = frame(svg, label, xDomain, yDomain, SQUARE);
  if (toy) modeDiscs(svg, toy, sx, sy);
  if (toy) modeCrosses(svg, toy, sx, sy);
  drawPath(svg, points.map((p) => [sx(p[0]), sy(p[1])]));
  legend(svg, [...(toy ? [{ label: "data modes", color: DATA_COLOR }] : []),
               { label: "G(z) along the path", color: G_COLOR }]);
}
