"""lanes: training, light and inference queues; supervised lane workers

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = {"gpu": "training", "cpu": "light"}


def upgrade() -> None:
    op.create_table(
        "lane_workers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lane", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("last_exit", sa.Text(), nullable=True),
        sa.Column("started_at", backend.db.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("exited_at", backend.db.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", backend.db.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_lane_workers_lane", "lane_workers", ["lane"], unique=False)
    jobs = sa.table("jobs", sa.column("queue", sa.String))
    sightings = sa.table("worker_sightings", sa.column("queue", sa.String))
    for old, new in RENAMES.items():
        op.execute(jobs.update().where(jobs.c.queue == old).values(queue=new))
    # Sightings of workers on the old queues say nothing about the new ones.
    op.execute(sightings.delete())


def downgrade() -> None:
    jobs = sa.table("jobs", sa.column("queue", sa.String))
    for old, new in RENAMES.items():
        op.execute(jobs.update().where(jobs.c.queue == new).values(queue=old))
    op.drop_index("ix_lane_workers_lane", table_name="lane_workers")
    op.drop_table("lane_workers")
