"""Alert filters keep why the stream disabled them, for their owner to read.

Revises: 0004_job_inputs
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_filter_disabled_reason"
down_revision = "0004_job_inputs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_filters") as batch:
        batch.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_filters") as batch:
        batch.drop_column("disabled_reason")
