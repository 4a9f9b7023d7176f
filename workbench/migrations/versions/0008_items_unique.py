"""One row per photo in a dataset: (dataset_id, sha256) becomes unique (issue #17 item 5).

Concurrent imports into one dataset each stored every photo, because each read the known hashes before writing.
Existing duplicates are merged first: the oldest row (smallest id) of each (dataset_id, sha256) is kept, and takes a
duplicate's caption when it has none (and loses its ``no_caption`` flag then); the ``exact_duplicate`` flag goes,
and a duplicate group left with one member is dissolved. No table refers to ``items.id`` (preprocessing manifests
on disk name item ids: the kept ids are the oldest, which older manifests most likely used).

Revision ID: 0008
Revises: 0002
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0002"
branch_labels = None
depends_on = None


def _flags(value) -> list:
    if isinstance(value, str):
        value = json.loads(value or "[]")
    return list(value or [])


def _merge_duplicates(conn) -> None:
    items = sa.table("items", sa.column("id", sa.Integer), sa.column("dataset_id", sa.Integer),
                     sa.column("sha256", sa.String), sa.column("caption", sa.Text),
                     sa.column("caption_source", sa.String), sa.column("flags", sa.JSON),
                     sa.column("dup_group", sa.Integer))
    dups = conn.execute(sa.select(items.c.dataset_id, items.c.sha256).group_by(items.c.dataset_id, items.c.sha256)
                        .having(sa.func.count() > 1)).all()
    touched = set()
    for dataset_id, sha in dups:
        rows = conn.execute(sa.select(items).where(items.c.dataset_id == dataset_id, items.c.sha256 == sha)
                            .order_by(items.c.id)).all()
        keep, drop = rows[0], rows[1:]
        caption, source = keep.caption, keep.caption_source
        if not (caption or "").strip():
            donor = next((r for r in drop if (r.caption or "").strip()), None)
            if donor is not None:
                caption, source = donor.caption, donor.caption_source
        flags = [f for f in _flags(keep.flags) if f != "exact_duplicate" and not (f == "no_caption" and caption)]
        conn.execute(sa.update(items).where(items.c.id == keep.id)
                     .values(caption=caption, caption_source=source, flags=sorted(flags)))
        conn.execute(sa.delete(items).where(items.c.id.in_([r.id for r in drop])))
        touched.add(dataset_id)
    for dataset_id in touched:  # groups of one are no groups
        for group, n in conn.execute(sa.select(items.c.dup_group, sa.func.count())
                                     .where(items.c.dataset_id == dataset_id, items.c.dup_group.is_not(None))
                                     .group_by(items.c.dup_group)).all():
            if n == 1:
                for row in conn.execute(sa.select(items.c.id, items.c.flags)
                                        .where(items.c.dataset_id == dataset_id, items.c.dup_group == group)).all():
                    flags = [f for f in _flags(row.flags) if f not in ("exact_duplicate", "near_duplicate")]
                    conn.execute(sa.update(items).where(items.c.id == row.id).values(dup_group=None, flags=flags))


def upgrade() -> None:
    _merge_duplicates(op.get_bind())
    # A unique index rather than a table constraint: the same guarantee (and ON CONFLICT target) on SQLite and
    # PostgreSQL, without SQLite's copy-the-table ALTER.
    op.drop_index("ix_items_dataset_sha", table_name="items")
    op.create_index("uq_items_dataset_sha", "items", ["dataset_id", "sha256"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_items_dataset_sha", table_name="items")
    op.create_index("ix_items_dataset_sha", "items", ["dataset_id", "sha256"])
