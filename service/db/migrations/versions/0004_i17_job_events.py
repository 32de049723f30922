"""job events: triggers NOTIFY ganserve_job_event with the job id when a job's state, metrics, snapshots or
Figure 1 data change, so an API process LISTENs once for every event stream instead of polling per stream

Revision ID: 0004_i17
Revises: 0003_i17
Create Date: 2026-12-06 03:40:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0004_i17'
down_revision: str | None = '0003_i17'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "ganserve_job_event"  # service/db/notify.py JOB_EVENT


def upgrade() -> None:
    # NOTIFY is delivered on commit, and identical payloads within one transaction are sent once.
    op.execute(f"""
        CREATE FUNCTION ganserve_notify_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'jobs' THEN
                PERFORM pg_notify('{CHANNEL}', NEW.id::text);
            ELSIF TG_TABLE_NAME = 'blobs' THEN
                PERFORM pg_notify('{CHANNEL}', split_part(NEW.key, '/', 2));
            ELSE
                PERFORM pg_notify('{CHANNEL}', NEW.job_id::text);
            END IF;
            RETURN NULL;
        END $$
    """)
    # Not on heartbeats: only what a stream shows.
    op.execute("""
        CREATE TRIGGER jobs_event AFTER UPDATE ON jobs FOR EACH ROW
        WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.progress IS DISTINCT FROM NEW.progress
              OR OLD.iteration IS DISTINCT FROM NEW.iteration OR OLD.error IS DISTINCT FROM NEW.error
              OR OLD.cancel_requested IS DISTINCT FROM NEW.cancel_requested)
        EXECUTE FUNCTION ganserve_notify_job_event()
    """)
    op.execute("CREATE TRIGGER job_metrics_event AFTER INSERT ON job_metrics FOR EACH ROW "
               "EXECUTE FUNCTION ganserve_notify_job_event()")
    op.execute("CREATE TRIGGER job_snapshots_event AFTER INSERT ON job_snapshots FOR EACH ROW "
               "EXECUTE FUNCTION ganserve_notify_job_event()")
    op.execute("CREATE TRIGGER figure1_event AFTER INSERT OR UPDATE ON blobs FOR EACH ROW "
               "WHEN (NEW.key LIKE 'figure1/%') EXECUTE FUNCTION ganserve_notify_job_event()")


def downgrade() -> None:
    for trigger, table in (("jobs_event", "jobs"), ("job_metrics_event", "job_metrics"),
                           ("job_snapshots_event", "job_snapshots"), ("figure1_event", "blobs")):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    op.execute("DROP FUNCTION ganserve_notify_job_event()")
