"""Regenerated images are linked to the image they replace by the generate job (config key ``replaces``), no longer
by the review queue while it lists images. This links, once, the images of regeneration batches that arrived before
that change and were not listed since: each image of a review's ``regen_batch`` without a ``replaces_id`` gets the
review's generation, exactly what the queue did on its next listing. Nothing else changes.

Revision ID: 0011
Revises: 0009 (the reviews branch: reviews name the regeneration batches)
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    reviews = sa.table("reviews", sa.column("generation_id", sa.Integer), sa.column("regen_batch", sa.String))
    generations = sa.table("generations", sa.column("id", sa.Integer), sa.column("batch", sa.String),
                           sa.column("replaces_id", sa.Integer))
    wanted = dict(conn.execute(sa.select(reviews.c.regen_batch, reviews.c.generation_id)
                               .where(reviews.c.regen_batch != "")).all())
    if not wanted:
        return
    unlinked = conn.execute(sa.select(generations.c.id, generations.c.batch)
                            .where(generations.c.batch.in_(list(wanted)), generations.c.replaces_id.is_(None))).all()
    for gen_id, batch in unlinked:
        conn.execute(sa.update(generations).where(generations.c.id == gen_id).values(replaces_id=wanted[batch]))


def downgrade() -> None:
    pass  # the links stay: they are what the queue would have written
