"""sweeps, classifiers; jobs.sweep_id and jobs.restarts

Revision ID: 0003_i16
Revises: 0002
Create Date: 2026-12-06 03:35:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003_i16'
down_revision: str | None = '0004_i17'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sweeps',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('model_name', sa.String(length=64), nullable=False),
    sa.Column('seeds', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('keep', sa.String(length=16), nullable=False),
    sa.Column('results', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('best_job_id', sa.UUID(), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.add_column('jobs', sa.Column('sweep_id', sa.UUID(), nullable=True))
    op.add_column('jobs', sa.Column('restarts', postgresql.JSONB(astext_type=sa.Text()),
                                    server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.alter_column('jobs', 'restarts', server_default=None)
    op.create_index(op.f('ix_jobs_sweep_id'), 'jobs', ['sweep_id'], unique=False)
    op.create_foreign_key('jobs_sweep_id_fkey', 'jobs', 'sweeps', ['sweep_id'], ['id'])
    op.create_table('classifiers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.UUID(), nullable=False),
    sa.Column('artifact_key', sa.String(length=300), nullable=False),
    sa.Column('artifact_sha256', sa.String(length=64), nullable=False),
    sa.Column('dataset_sha256', sa.String(length=64), nullable=False),
    sa.Column('n_classes', sa.Integer(), nullable=False),
    sa.Column('features', sa.Integer(), nullable=False),
    sa.Column('test_accuracy', sa.Float(), nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset', 'version')
    )
    op.create_index(op.f('ix_classifiers_dataset'), 'classifiers', ['dataset'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_classifiers_dataset'), table_name='classifiers')
    op.drop_table('classifiers')
    op.drop_constraint('jobs_sweep_id_fkey', 'jobs', type_='foreignkey')
    op.drop_index(op.f('ix_jobs_sweep_id'), table_name='jobs')
    op.drop_column('jobs', 'restarts')
    op.drop_column('jobs', 'sweep_id')
    op.drop_table('sweeps')
