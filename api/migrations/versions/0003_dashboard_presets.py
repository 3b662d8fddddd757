"""Dashboard presets: named grids of AVI views per user; operators may publish them.

Revises: 0002_alert_filters
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_dashboard_presets"
down_revision = "0002_alert_filters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_presets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name"),
    )
    with op.batch_alter_table("dashboard_presets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboard_presets_owner_id"), ["owner_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_dashboard_presets_published"), ["published"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dashboard_presets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboard_presets_published"))
        batch_op.drop_index(batch_op.f("ix_dashboard_presets_owner_id"))
    op.drop_table("dashboard_presets")
