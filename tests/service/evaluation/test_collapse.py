"""A lost game is flagged from the metrics; a game still being played is not."""

from __future__ import annotations

from service.evaluation.collapse import THRESHOLD, WINDOW, diagnose


def rows(d_fakes: list[float], every: int = 100) -> list[dict[str, float]]:
    return [{"iteration": float(every * (i + 1)), "d_fake": v} for i, v in enumerate(d_fakes)]


def test_a_long_streak_below_the_threshold_is_flagged_from_its_start() -> None:
    lost = rows([0.1, 0.05, 0.02] + [THRESHOLD / 10] * 12)          # lost from iteration 400 to 1,500
    warning = diagnose(lost)
    assert warning is not None and "since iteration 400" in warning and "another seed" in warning


def test_a_short_dip_or_a_recovery_is_not_flagged() -> None:
    assert diagnose(rows([0.1] * 5 + [THRESHOLD / 10] * (WINDOW // 100 - 1))) is None   # not yet WINDOW long
    assert diagnose(rows([THRESHOLD / 10] * 20 + [0.05])) is None                     # G came back
    assert diagnose(rows([0.3] * 30)) is None
    assert diagnose([]) is None


def test_a_run_lost_from_its_first_row_is_flagged_once_window_iterations_passed() -> None:
    assert diagnose(rows([0.001] * (WINDOW // 100 - 1))) is None
    assert diagnose(rows([0.001] * (WINDOW // 100))) is not None


def test_get_job_carries_the_warning(client) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from service.db.engine import session_scope
    from service.db.tables import Job, JobMetric

    ids = []
    for d_fake in (0.001, 0.3):                                     # a lost game, a game still on
        job = Job(id=uuid.uuid4(), kind="train", model_name="collapse", dataset="mnist",
                  config={"preset": "paper-mnist", "iterations": 3000}, status="cancelled", progress=0.5,
                  iteration=1500, attempts=1, cancel_requested=True)
        with session_scope() as session:
            session.add(job)
            session.flush()
            session.add_all(JobMetric(job_id=job.id, iteration=it, values={"iteration": it, "d_fake": d_fake})
                            for it in range(100, 1600, 100))
        ids.append(job.id)
    lost, fine = (client.get(f"/jobs/{i}").json() for i in ids)
    assert "discriminator has won" in lost["warning"] and "since iteration 100" in lost["warning"]
    assert fine["warning"] is None


def test_a_bf16_job_the_worker_ran_in_fp32_says_so(client) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from service.db.engine import session_scope
    from service.db.tables import Job, JobMetric
    from service.evaluation.collapse import BF16_FALLBACK

    job = Job(id=uuid.uuid4(), kind="train", model_name="bf16-fallback", dataset="mnist",
              config={"preset": "paper-mnist", "iterations": 300, "bf16": True}, status="succeeded", progress=1.0,
              iteration=300, attempts=1)
    with session_scope() as session:
        session.add(job)
        session.flush()
        session.add_all(JobMetric(job_id=job.id, iteration=it,
                                  values={"iteration": it, "d_fake": 0.3, "bf16_fallback": 1.0})
                        for it in (100, 200, 300))
    assert client.get(f"/jobs/{job.id}").json()["warning"] == BF16_FALLBACK
