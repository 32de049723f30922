"""blob_chunks: a blob's bytes in ordered chunks, so no artifact or checkpoint meets bytea's 1 GB limit

Revision ID: 0003_i17
Revises: 0002
Create Date: 2026-12-06 03:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_i17'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The chunk size existing blobs are split into (new ones use settings.blob_chunk_bytes).
CHUNK = 8 << 20


def upgrade() -> None:
    op.create_table('blob_chunks',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['key'], ['blobs.key'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', 'seq')
    )
    # Every existing blob keeps its bytes: split in place, then the column goes.
    op.execute(f"""
        INSERT INTO blob_chunks (key, seq, data)
        SELECT b.key, s.seq, substring(b.data FROM s.seq * {CHUNK} + 1 FOR {CHUNK})
        FROM blobs b
        CROSS JOIN LATERAL generate_series(0, greatest(0, (octet_length(b.data) - 1) / {CHUNK})) AS s(seq)
    """)
    op.drop_column('blobs', 'data')


def downgrade() -> None:
    op.add_column('blobs', sa.Column('data', sa.LargeBinary(), nullable=True))
    op.execute("UPDATE blobs b SET data = coalesce((SELECT string_agg(c.data, ''::bytea ORDER BY c.seq) "
               "FROM blob_chunks c WHERE c.key = b.key), ''::bytea)")
    op.alter_column('blobs', 'data', nullable=False)
    op.drop_table('blob_chunks')
