"""Product fidelity on the generation links (issue #20 item 6): ``generation_products`` gains ``fidelity`` (the
FidelityResult as JSON: DINO, CLIP-I, ΔE, shape IoU, what was unavailable), ``fidelity_passed`` (the brand gate's
verdict, null when not checked) and ``fidelity_reason`` (e.g. "colour ΔE 7.9 vs AUR-1001 reference, limit 5").

Revision ID: 0012
Revises: 0010 (the products branch)
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generation_products") as t:
        t.add_column(sa.Column("fidelity", sa.JSON, nullable=True))
        t.add_column(sa.Column("fidelity_passed", sa.Boolean, nullable=True))
        t.add_column(sa.Column("fidelity_reason", sa.Text, nullable=False, server_default=""))
        t.add_column(sa.Column("fidelity_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generation_products") as t:
        for name in ("fidelity_at", "fidelity_reason", "fidelity_passed", "fidelity"):
            t.drop_column(name)
