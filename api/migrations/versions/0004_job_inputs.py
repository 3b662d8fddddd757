"""Jobs remember their file inputs as submitted (space:// references), so a rerun
checks access again exactly as a new submission does.

Revises: 0003_dashboard_presets
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_job_inputs"
down_revision = "0003_dashboard_presets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=False,
                                   server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("inputs")
