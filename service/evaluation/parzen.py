"""Parzen-window scores on the API side: the protocol, queueing the evaluation job, stored results, Table 1.

The score itself is computed by service/evaluation/scoring.py, on a worker (worker/scoring.py) or in
`ganserve parzen`; this module only touches the database and the broker. Torch-free: the API imports it.

Stored rows (table `evaluations`, kind "parzen"): one per model version (reference ""), and one per dataset
with reference "real-train": the same estimator with the first 10,000 real training images as centres,
i.e. what a sampler that returns real digits would score under this protocol.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import datasets
from models.parzen import PAPER_SIGMA_GRID
from service.db.engine import session_scope
from service.db.tables import Evaluation, Job, ModelVersion
from service.errors import InvalidParameter
from service.evaluation import stored_results
from service.jobs import store as jobs
from service.settings import get_settings
from service.versions.refs import VersionRef

log = logging.getLogger(__name__)

KIND = "parzen"
REAL_TRAIN = "real-train"
# The authors' parzen_ll.py: 10,000 samples of G, sigma from logspace(-1, 0, 10) chosen on 1000 validation
# images. The seed is ours: it pins which 10,000 z are drawn, so a re-run scores the same samples.
N_SAMPLES = 10_000
N_VALID = 1000
SEED = 2014
REFERENCE_CENTRES = 10_000

# Goodfellow et al. 2014, Table 1: MNIST = mean test log-likelihood ± standard error; TFD = across folds.
PAPER_TABLE_1: list[dict[str, Any]] = [
    {"model": "DBN", "mnist": (138.0, 2.0), "tfd": (1909.0, 66.0)},
    {"model": "Stacked CAE", "mnist": (121.0, 1.6), "tfd": (2110.0, 50.0)},
    {"model": "Deep GSN", "mnist": (214.0, 1.1), "tfd": (1890.0, 29.0)},
    {"model": "Adversarial nets", "mnist": (225.0, 2.0), "tfd": (2057.0, 26.0)},
]
TABLE_1_SOURCE = "Goodfellow et al. 2014, Table 1"

CAVEAT = (
    "A Gaussian Parzen window fitted to generated samples is a weak likelihood estimate: the paper itself notes "
    "that it has high variance and does not work well in high-dimensional spaces (\"the best method available "
    "to our knowledge\" in 2014). Theis, van den Oord and Bethge (2016, \"A note on the evaluation of generative "
    "models\") show that Parzen estimates can be far from the true log-likelihood even with very many samples, "
    "and can rank models differently from both likelihood and sample quality: a k-means model whose cluster "
    "centres serve as samples outscores the GANs and even the real data. See the real-train reference "
    "row: it is what real digits score under the very same estimator. Compare numbers only under the same "
    "protocol (sigma grid, number of samples, test set)."
)


def protocol_config(sigmas: Any = PAPER_SIGMA_GRID, n_valid: int | None = N_VALID,
                    n_samples: int = N_SAMPLES, seed: int = SEED) -> dict[str, Any]:
    """The job config of an evaluation: everything the worker needs to reproduce the score."""
    return {"n_samples": n_samples, "sigmas": [float(s) for s in sigmas], "n_valid": n_valid, "seed": seed,
            "reference_centres": REFERENCE_CENTRES}


def is_paper_protocol(config: dict[str, Any]) -> bool:
    """Only results of the default protocol are stored: one row per version means one comparable number."""
    return config == protocol_config()


def describe_protocol(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """What the numbers mean, for the response body (the split names are the paper's MNIST ones)."""
    n_valid = config.get("n_valid")
    return {
        "name": "Goodfellow et al. 2014 (the authors' parzen_ll.py)",
        "centres": f"{config['n_samples']} samples of G (no dropout), z from the version's noise prior, "
                   f"seed {config['seed']}",
        "sigmas": config["sigmas"],
        "sigma_selection": "the sigma with the highest mean log-likelihood on "
                           + (f"the first {n_valid} validation images" if n_valid else "the validation split")
                           + (" (MNIST train[50000:51000])" if dataset == "mnist" and n_valid == 1000 else ""),
        "log_p": "logsumexp_i(-||x - mu_i||^2 / 2 sigma^2) - log N - d log(sigma sqrt(2 pi))",
        "reported": "mean log p(x) over the whole test split ± its standard error std/sqrt(n)",
        "reference": f"{REAL_TRAIN}: the same estimator with real training images "
                     f"train[0:{config.get('reference_centres', REFERENCE_CENTRES)}] as centres",
    }


def table_1(dataset: str) -> list[dict[str, Any]]:
    """The paper's rows for `dataset`'s column (none for a dataset the paper did not report)."""
    return [{"label": row["model"], "ll": row[dataset][0], "se": row[dataset][1], "source": TABLE_1_SOURCE}
            for row in PAPER_TABLE_1 if dataset in row]


# -- lookups ---------------------------------------------------------------------------------------------

_splits_checked: dict[str, str | None] = {}  # dataset -> problem (None: fine), per process


def dataset_problem(dataset: str) -> str | None:
    """Why `dataset` cannot be scored, or None. Registered datasets are loaded once per process to look at
    their splits (no fetch); data absent here is left to the worker, which fetches it and checks again."""
    if dataset in _splits_checked:
        return _splits_checked[dataset]
    if dataset not in datasets.dataset_names():
        return (f"dataset {dataset!r} is not a registered dataset, so it has no validation or test split; "
                f"the Parzen protocol needs both (registered: {', '.join(datasets.dataset_names())})")
    try:
        splits = datasets.load(dataset, get_settings().resolved_data_dir)
    except datasets.DatasetUnavailable:
        return None
    problem = _splits_checked[dataset] = split_problem(splits)
    return problem


def split_problem(splits: datasets.Splits) -> str | None:
    """What the protocol misses in the dataset's splits, or None."""
    missing = [name for name, part in (("validation", splits.valid), ("test", splits.test)) if part is None]
    return (f"dataset {splits.name!r} has no {' or '.join(missing)} split; the Parzen protocol chooses sigma "
            f"on validation images and scores test images") if missing else None


def check_dataset(row: ModelVersion, field: str) -> None:
    problem = dataset_problem(row.dataset)
    if problem:
        raise InvalidParameter(field, f"{row.name} v{row.version}: {problem}")


def latest_job(row: ModelVersion) -> Job | None:
    """The newest parzen job of this version, whatever its status."""
    return stored_results.latest_job(KIND, row)


# -- queueing --------------------------------------------------------------------------------------------

def _new_job(row: ModelVersion, idempotency_key: str | None) -> tuple[Job, bool]:
    return jobs.create(jobs.NewJob(kind=KIND, model_name=row.name, dataset=row.dataset, config=protocol_config(),
                                   target_version=row.version, idempotency_key=idempotency_key))


def submit(model: str, version: VersionRef, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """POST /jobs {"kind": "parzen"}: always a new evaluation (a re-run replaces the stored score)."""
    row = stored_results.find_version(model, version)
    check_dataset(row, "version" if version is not None else "model")
    return _new_job(row, idempotency_key)


def ensure_queued(row: ModelVersion) -> Job:
    """The queued/running evaluation of `row`, or a newly queued one (idempotent under concurrency)."""
    return stored_results.ensure_queued(KIND, row, _new_job)


def queue_for_version(name: str, version: int) -> Job | None:
    """Called by a training job right after it registered `version`: queue its Parzen score (GET /parzen
    queues it later if this could not)."""
    return stored_results.queue_after_training("Parzen evaluation", get_settings().parzen_after_training, name, version,
                                       lambda row: dataset_problem(row.dataset), ensure_queued)


# -- results ---------------------------------------------------------------------------------------------

def reference_result(session: Session, dataset: str) -> dict[str, Any] | None:
    found = stored_results.evaluation(session, KIND, None, dataset, REAL_TRAIN)
    return dict(found.result) if found else None


def references(dataset: str) -> list[dict[str, Any]]:
    """Table 1's rows for the dataset, then the stored real-train row when it has been computed."""
    rows = table_1(dataset)
    with session_scope() as session:
        real = reference_result(session, dataset)
    if real is not None:
        n = real.get("n_samples", REFERENCE_CENTRES)
        rows.append({"label": f"Real training images (train[0:{n}]) as centres", "reference": REAL_TRAIN,
                     "source": "this server, same estimator and protocol",
                     **{k: real[k] for k in ("ll", "se", "sigma", "grid", "n_samples", "n_test") if k in real}})
    return rows


def result(model: str, version: VersionRef) -> dict[str, Any] | None:
    """The stored score of the version (404 if the version is unknown), or None when none is stored yet."""
    return result_for(stored_results.find_version(model, version))


def result_for(row: ModelVersion) -> dict[str, Any] | None:
    with session_scope() as session:
        found = stored_results.evaluation(session, KIND, row.id, row.dataset, "")
        if found is None:
            return None
        saved, job_id, at = dict(found.result), found.job_id, found.created_at
    return compose(row, saved, job_id, at)


def compose(row: ModelVersion, stored: dict[str, Any], job_id: Any = None, at: Any = None) -> dict[str, Any]:
    """The GET /parzen body (evaluation_schemas.ParzenOut) from a stored score."""
    config = stored.get("config") or protocol_config()
    return {"model": row.name, "version": row.version, "dataset": row.dataset,
            **{k: stored[k] for k in ("ll", "se", "sigma", "grid", "n_samples", "n_test", "n_valid", "seconds")},
            "protocol": describe_protocol(config, row.dataset),
            "references": references(row.dataset), "caveat": CAVEAT,
            "job_id": str(job_id) if job_id else None, "evaluated_at": at.isoformat() if at else None,
            "artifact_sha256": stored.get("artifact_sha256")}


def store(session: Session, version_id: int, dataset: str, job_id: Any, stored: dict[str, Any]) -> None:
    """Upsert the version's score inside the caller's transaction (a re-run replaces it)."""
    stmt = insert(Evaluation).values(kind=KIND, model_version_id=version_id, dataset=dataset, reference="",
                                     job_id=job_id, result=stored)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["kind", "model_version_id", "dataset", "reference"],
        set_={"job_id": job_id, "result": stored, "created_at": text("now()")}))


def store_reference(session: Session, dataset: str, job_id: Any, stored: dict[str, Any]) -> bool:
    """Insert the dataset's real-train row unless one exists; False when another writer got there first.

    model_version_id is NULL here and NULLs never collide in a UNIQUE constraint, so ON CONFLICT cannot
    guard it: a transaction-scoped advisory lock per dataset serializes the check and the insert instead."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"parzen-reference:{dataset}"})
    if stored_results.evaluation(session, KIND, None, dataset, REAL_TRAIN) is not None:
        return False
    session.add(Evaluation(kind=KIND, model_version_id=None, dataset=dataset, reference=REAL_TRAIN,
                           job_id=job_id, result=stored))
    return True


def has_reference(dataset: str) -> bool:
    with session_scope() as session:
        return stored_results.evaluation(session, KIND, None, dataset, REAL_TRAIN) is not None
