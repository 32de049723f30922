"""Alembic environment: runs on the connection the caller passes in, or on the settings' URL."""

from alembic import context
from sqlalchemy import Connection

from service.db.tables import Base

target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from service.db.engine import get_engine

    with get_engine().connect() as conn:
        run(conn)
        conn.commit()
