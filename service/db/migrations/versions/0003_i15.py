"""model_versions.encoder: a version's learned inference net E(x) -> z, beside its generator (key, sha256, size);
datasets.label_names: the class folders of a labelled upload

Revision ID: 0003_i15
Revises: 0002
Create Date: 2026-12-06 03:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003_i15'
down_revision: str | None = '0003_i16'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the version has no encoder. The ONNX bytes live in `blobs` under `key`, pinned by sha256.
    op.add_column('model_versions', sa.Column('encoder', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('datasets', sa.Column('label_names', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('datasets', 'label_names')
    op.drop_column('model_versions', 'encoder')
