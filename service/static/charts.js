// Small inline-SVG charts, drawn locally: line charts for the training curves and the paper's Figure 1
// (data density, generator density as a histogram, D(x)) on one axis. No library, no network.

const NS = "http://www.w3.org/2000/svg";
const SIZE = { W: 360, H: 190 };
export const PAD = { left: 44, right: 16, top: 24, bottom: 20 };

export const COLORS = ["#1f6feb", "#d4380d", "#389e0d", "#8250df"];

export function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// About five round tick values covering [lo, hi].
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

export function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(0);
  return String(+v.toPrecision(3));
}

function extent(values, fallback) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return fallback;
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  return [lo, hi];
}

// The x-axis is named in the figure's caption (iteration, or x for Figure 1), not drawn over the ticks.
// size: the viewBox; the sample plots (plots.js) draw on larger ones.
export function frame(svg, label, xDomain, yDomain, { W, H } = SIZE) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("aria-label", label);
  const sx = (x) => PAD.left + ((x - xDomain[0]) / (xDomain[1] - xDomain[0] || 1)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - yDomain[0]) / (yDomain[1] - yDomain[0] || 1)) * (H - PAD.top - PAD.bottom);
  const axes = el("g", { class: "axes" });
  for (const t of ticks(yDomain[0], yDomain[1], 4)) {
    axes.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(t), y2: sy(t), class: "gridline" }));
    axes.append(el("text", { x: PAD.left - 4, y: sy(t) + 3, "text-anchor": "end" }, fmt(t)));
  }
  for (const t of ticks(xDomain[0], xDomain[1], 4)) {
    axes.append(el("text", { x: sx(t), y: H - PAD.bottom + 13, "text-anchor": "middle" }, fmt(t)));
  }
  axes.append(el("rect", { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right,
                            height: H - PAD.top - PAD.bottom, class: "plot-border" }));
  svg.append(axes);
  return { sx, sy };
}

export function legend(svg, items) {
  let x = PAD.left;
  const g = el("g", { class: "legend" });
  for (const item of items) {
    g.append(el("line", { x1: x, x2: x + 14, y1: 10, y2: 10, stroke: item.color, "stroke-width": 2.5,
                          "stroke-dasharray": item.dash || "" }));
    const text = el("text", { x: x + 18, y: 14 }, item.label);
    g.append(text);
    x += 26 + item.label.length * 6.2;
  }
  svg.append(g);
}

export function path(points, sx, sy) {
  return points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
    .map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
}

// series: [{label, color, points: [[x, y], ...], dash}]; yDomain fixes the y range (e.g. [0, 1]).
export function lineChart(svg, series, { yDomain, title = "" } = {}) {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xDomain = extent(xs, [0, 1]);
  const { sx, sy } = frame(svg, title, xDomain, yDomain || extent(ys, [0, 1]));
  for (const s of series) {
    svg.append(el("path", { d: path(s.points, sx, sy), fill: "none", stroke: s.color, "stroke-width": 1.8,
                            "stroke-dasharray": s.dash || "", "vector-effect": "non-scaling-stroke" }));
  }
  legend(svg, series);
  // The latest values, readable by screen readers and in the tooltip.
  const lastOf = (s) => s.points.map((p) => p[1]).filter(Number.isFinite).at(-1);
  const last = series.map((s) => `${s.label} ${lastOf(s) === undefined ? "–" : fmt(lastOf(s))}`).join(", ");
  svg.setAttribute("aria-label", `${title}: ${last}`);
}

// The paper's panels (a)-(d), as the trainer labels the figures it stores at those moments.
const STAGE_NAMES = { start: "a: before any update", after_d: "b: after D's first update",
                      after_g: "c: after G's first update", end: "d: the end" };

// fig: {x: [grid], data_density: [...], d: [...], bins: [edges], g_density: [per bin]}; the paper's
// Figure 1 styles: data dotted black, generator solid green, discriminator dashed blue.
export function figure1(svg, fig) {
  const yMax = Math.max(1, ...fig.data_density, ...fig.g_density);
  const xDomain = extent([...fig.x, ...fig.bins], [0, 1]);
  const { sx, sy } = frame(svg, "Figure 1", xDomain, [0, yMax]);
  const steps = [];
  fig.g_density.forEach((h, i) => { steps.push([fig.bins[i], h], [fig.bins[i + 1], h]); });
  const hist = `M${sx(fig.bins[0])},${sy(0)}` + path(steps, sx, sy).replace(/^M/, "L") +
               `L${sx(fig.bins.at(-1))},${sy(0)}Z`;
  svg.append(el("path", { d: hist, fill: "rgba(56,158,13,0.25)", stroke: "#389e0d", "stroke-width": 1.5 }));
  const pts = (ys) => fig.x.map((x, i) => [x, ys[i]]);
  svg.append(el("path", { d: path(pts(fig.data_density), sx, sy), fill: "none", stroke: "#111",
                          "stroke-width": 2, "stroke-dasharray": "2 3" }));
  svg.append(el("path", { d: path(pts(fig.d), sx, sy), fill: "none", stroke: "#1f6feb",
                          "stroke-width": 2, "stroke-dasharray": "6 4" }));
  svg.append(el("line", { x1: sx(xDomain[0]), x2: sx(xDomain[1]), y1: sy(0.5), y2: sy(0.5),
                          class: "half" }));
  legend(svg, [{ label: "data", color: "#111", dash: "2 3" }, { label: "G", color: "#389e0d" },
               { label: "D(x)", color: "#1f6feb", dash: "6 4" }]);
  const stage = STAGE_NAMES[fig.stage] ? ` (${STAGE_NAMES[fig.stage]})` : "";
  svg.setAttribute("aria-label", `Figure 1 at iteration ${fig.iteration}${stage}: data density, generator ` +
                   `histogram and discriminator output D(x)`);
}
