"""Jobs record their lane: a warm worker's open Spark session, or their own application.

Revises: 0005_filter_disabled_reason
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_job_lane"
down_revision = "0005_filter_disabled_reason"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lane", sa.String(16), nullable=False,
                                   server_default="spark"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lane")
