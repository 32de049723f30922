"""model registry: aliases (name -> version) and the numbers of retired versions

Revision ID: 0003_i18
Revises: 0003_i16
Create Date: 2026-12-06 03:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_i18'
down_revision: str | None = '0003_i15'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('model_aliases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['name', 'version'], ['model_versions.name', 'model_versions.version']),
    sa.PrimaryKeyConstraint('name', 'alias')
    )
    op.create_table('retired_versions',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name', 'version')
    )


def downgrade() -> None:
    op.drop_table('retired_versions')
    op.drop_table('model_aliases')
