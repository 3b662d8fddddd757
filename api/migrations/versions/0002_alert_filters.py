"""Alert filters: one row per user filter (condition, output topic, enabled).

Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_alert_filters"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_filters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("where_sql", sa.Text(), nullable=False),
        sa.Column("spark_sql", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("output_format", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name"),
    )
    with op.batch_alter_table("alert_filters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_filters_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_filters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_filters_owner_id"))
    op.drop_table("alert_filters")
