"""lane workers: what each one was given (its device, its threads), for the health page

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lane_workers") as batch:
        batch.add_column(sa.Column("resources", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lane_workers") as batch:
        batch.drop_column("resources")
