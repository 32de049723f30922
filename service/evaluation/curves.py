"""A training job's curves as a file to keep: CSV of every metrics row, or an SVG chart.

The SVG has three panels sharing the iteration axis: mean D(x) and D(G(z)) (with ½, where Proposition 1 puts
both at the game's optimum), the D and G losses, and the minibatch estimate of the Jensen–Shannon divergence
(eq. 6); a fourth, the Parzen log-likelihood of the validation split, when the job scored G (score_every). Plain SVG text built here: no plotting library in the API image, and it renders anywhere (browsers,
GitHub READMEs).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from html import escape

METRIC_COLUMNS = ("iteration", "epoch", "lr", "momentum", "d_loss", "g_loss", "d_real", "d_fake", "value", "jsd",
                  "it_per_s", "valid_ll", "valid_ll_se", "valid_sigma")

# (title, [(metric key, label, colour)], fixed y range or None for the data's range)
PANELS: tuple[tuple[str, tuple[tuple[str, str, str], ...], tuple[float, float] | None], ...] = (
    ("mean D(x) and D(G(z))", (("d_real", "D(x)", "#1f77b4"), ("d_fake", "D(G(z))", "#d62728")), (0.0, 1.0)),
    ("losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#d62728")), None),
    ("JSD estimate (V + log 4) / 2", (("jsd", "JSD", "#2ca02c"),), None),
)
# Only on the rows of the iterations G was scored at (worker/validation.py).
VALID_PANEL = ("Parzen log-likelihood of the validation images (nats)", (("valid_ll", "valid LL", "#9467bd"),), None)
WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, GAP = 760, 170, 60, 20, 30, 46
MAX_POINTS = 800          # per line: enough for the eye, keeps a 125,000-iteration run's SVG small


def to_csv(rows: Sequence[dict[str, float]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
    return out.getvalue()


def _thin(rows: Sequence[dict[str, float]]) -> list[dict[str, float]]:
    """At most MAX_POINTS rows, evenly spaced, always keeping the last."""
    if len(rows) <= MAX_POINTS:
        return list(rows)
    step = len(rows) / MAX_POINTS
    return [rows[int(i * step)] for i in range(MAX_POINTS - 1)] + [rows[-1]]


def _nice_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    return low - pad, high + pad


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}".rstrip("0").rstrip(".") if v else "0"


def to_svg(rows: Sequence[dict[str, float]], title: str) -> str:
    """The chart of `rows` (the job's metrics, oldest first): three panels, four when G was scored."""
    points = _thin(rows)
    scored = _thin([r for r in rows if "valid_ll" in r])
    panels = PANELS + ((VALID_PANEL,) if scored else ())
    height = TOP + len(panels) * (PANEL_HEIGHT + GAP)
    plot_w = WIDTH - LEFT - RIGHT
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">'),
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>']
    if not points:
        out.append(f'<text x="{LEFT}" y="{TOP + 20}">no metrics yet</text></svg>')
        return "\n".join(out)
    x0, x1 = points[0]["iteration"], points[-1]["iteration"]
    x1 = x1 if x1 > x0 else x0 + 1

    def px(it: float) -> float:
        return LEFT + (it - x0) / (x1 - x0) * plot_w

    for p, (panel_title, lines, fixed) in enumerate(panels):
        top = TOP + p * (PANEL_HEIGHT + GAP) + 14
        series = scored if lines[0][0] == "valid_ll" else points
        values = [r[k] for r in series for k, _, _ in lines if math.isfinite(r.get(k, math.nan))]
        low, high = fixed if fixed else _nice_range(values or [0.0])

        def py(v: float, low: float = low, high: float = high, top: float = top) -> float:
            return top + (1.0 - (min(max(v, low), high) - low) / (high - low)) * PANEL_HEIGHT

        out.append(f'<text x="{LEFT}" y="{top - 4}" font-weight="bold">{escape(panel_title)}</text>')
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_HEIGHT}" fill="none" '
                   f'stroke="#999"/>')
        for v in (low, (low + high) / 2, high):
            out.append(f'<text x="{LEFT - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
        if fixed == (0.0, 1.0):
            out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(0.5):.1f}" y2="{py(0.5):.1f}" '
                       f'stroke="#999" stroke-dasharray="4 3"/>')
        for i, (key, label, colour) in enumerate(lines):
            coords = " ".join(f"{px(r['iteration']):.1f},{py(r[key]):.1f}" for r in series
                              if math.isfinite(r.get(key, math.nan)))
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.3" points="{coords}"/>')
            out.append(f'<text x="{LEFT + plot_w - 90 * (len(lines) - i)}" y="{top - 4}" fill="{colour}">'
                       f'{escape(label)}</text>')
        bottom = top + PANEL_HEIGHT + 13
        for it in (x0, (x0 + x1) / 2, x1):
            out.append(f'<text x="{px(it):.1f}" y="{bottom}" text-anchor="middle">{it:,.0f}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{height - 4}" text-anchor="middle">iteration</text>')
    out.append("</svg>")
    return "\n".join(out)


__all__ = ["METRIC_COLUMNS", "to_csv", "to_svg"]
