"""Async TAP (UWS) jobs: the request while PENDING, then the platform job that runs it.

Revises: 0006_job_lane
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_tap_jobs"
down_revision = "0006_job_lane"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tap_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("job_id", sa.Integer, nullable=True),
        sa.Column("execution_duration_s", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destruction_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tap_jobs")
