"""`ganserve parzen --model mnist [--version N]`: a version's Parzen score beside Table 1, in the terminal.

Prints the stored score when there is one. Otherwise it runs the same evaluation as the worker's job
in-process (numpy + onnxruntime, no torch, no broker: it works with the worker stopped) and stores it, so
GET /parzen and the gallery show it too. `--recompute` scores again and replaces the stored row.

Other protocols (`--fine-grid`: 28 σ from logspace(-1, 0, 28), which contains the paper's 10;
`--full-validation`: σ chosen on the whole validation split) are computed and printed, never stored: the
stored row of a version is always the paper's protocol, so stored numbers stay comparable with Table 1.

Database: GANSERVE_DATABASE_URL, or the embedded PostgreSQL under GANSERVE_HOME that `ganserve up` uses
(started for the duration of the command if it is not running).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from models.parzen import PAPER_SIGMA_GRID
from service.cli.embedded import EmbeddedPostgres
from service.db.engine import migrate, session_scope
from service.errors import NotFound
from service.evaluation import parzen, stored_results
from service.settings import get_settings

FINE_SIGMA_GRID = np.logspace(-1, 0, 28)  # 27 steps = 3 x the paper's 9: every paper sigma is on it


def _database() -> Callable[[], None]:
    """Make sure a database URL is set; returns how to undo what was started here."""
    settings = get_settings()
    if settings.database_url:
        return lambda: None
    already_running = (settings.home / "postgres" / "postmaster.pid").exists()
    pg = EmbeddedPostgres(settings.home)
    os.environ["GANSERVE_DATABASE_URL"] = pg.url
    get_settings.cache_clear()  # nothing has connected yet: the engine is created from the new URL
    return (lambda: None) if already_running else pg.stop


def _row(label: str, ll: float, se: float, width: int) -> str:
    return f"  {label:<{width}} {ll:>9.1f} ± {se:.1f}"


def render(body: dict[str, Any]) -> str:
    """A small text table: Table 1's rows, the real-data row and this version, then σ and the caveat."""
    ours = f"{body['model']} v{body['version']} (this server)"
    rows = [(r["label"], r["ll"], r["se"]) for r in body["references"]] + [(ours, body["ll"], body["se"])]
    width = max(len(label) for label, _, _ in rows)
    lines = [f"Parzen window log-likelihood on {body['dataset']} test ({body['n_test']} images, mean ± s.e.)",
             "", f"  {'model':<{width}} {body['dataset'].upper():>9}"]
    lines += [_row(label, ll, se, width) for label, ll, se in rows]
    grid = "  ".join(f"{g['sigma']:.3f}: {g['ll']:.1f}" for g in body["grid"])
    chosen = (f"σ = {body['sigma']:.4f}, chosen on {body['n_valid']} validation images from "
              f"{len(body['grid'])} values; centres: {body['n_samples']} samples of G")
    lines += ["", chosen, f"validation LL per σ: {grid}", "", f"Caveat: {body['caveat']}"]
    return "\n".join(lines)


def _compute(row: Any, config: dict[str, Any], store: bool) -> dict[str, Any]:
    from service.evaluation.scoring import evaluate_version  # lazy: onnxruntime, only when a score is computed

    with_reference = store and not parzen.has_reference(row.dataset)
    t0 = time.perf_counter()
    print(f"scoring {row.name} v{row.version} on {row.dataset} in-process"
          f"{' (and the real-train reference row)' if with_reference else ''}…", file=sys.stderr)
    stored, reference = evaluate_version(row, config, with_reference)
    print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if not store:
        return parzen.compose(row, stored)
    with session_scope() as session:
        parzen.store(session, row.id, row.dataset, None, stored)
        if reference is not None:
            parzen.store_reference(session, row.dataset, None, reference)
    body = parzen.result_for(row)
    assert body is not None
    return body


def main(args: argparse.Namespace) -> int:
    recompute = bool(getattr(args, "recompute", False))
    sigmas = FINE_SIGMA_GRID if getattr(args, "fine_grid", False) else PAPER_SIGMA_GRID
    n_valid = None if getattr(args, "full_validation", False) else parzen.N_VALID
    config = parzen.protocol_config(sigmas, n_valid)
    default = parzen.is_paper_protocol(config)
    stop = _database()
    try:
        migrate()
        try:
            row = stored_results.find_version(args.model, args.version)
        except NotFound as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        problem = parzen.dataset_problem(row.dataset)
        if problem:
            print(f"error: {row.name} v{row.version}: {problem}", file=sys.stderr)
            return 2
        body = parzen.result_for(row) if default and not recompute else None
        if body is None:
            body = _compute(row, config, store=default)
        if not default:
            print("note: not the paper's protocol; printed only, not stored", file=sys.stderr)
        print(json.dumps(body) if getattr(args, "json", False) else render(body))
        return 0
    finally:
        stop()
