"""evaluation items: the images behind each cell of an evaluation's figures

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "evaluation_items",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("owner_id", BIG_ID, nullable=False),
        sa.Column("model_id", BIG_ID, nullable=False),
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("dataset_id", BIG_ID, nullable=False),
        sa.Column("split", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("true_index", sa.Integer(), nullable=True),
        sa.Column("pred_index", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("true_score", sa.Float(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evaluation_items_owner_id", "evaluation_items", ["owner_id"], unique=False)
    op.create_index("ix_evaluation_items_model_id", "evaluation_items", ["model_id"], unique=False)
    op.create_index(
        "ix_evaluation_items_cell", "evaluation_items", ["job_id", "kind", "true_index", "pred_index"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_evaluation_items_cell", table_name="evaluation_items")
    op.drop_index("ix_evaluation_items_model_id", table_name="evaluation_items")
    op.drop_index("ix_evaluation_items_owner_id", table_name="evaluation_items")
    op.drop_table("evaluation_items")
