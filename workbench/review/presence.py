"""Who has which image open on the Review page, so that approvers working one queue at once are steered apart.

    touch(ana, 12)                        # ana has image 12 open (one image per user: the latest replaces the last)
    others_viewing(ava, [11, 12, 13])     # {12: ["ana"]}: images someone else opened in the last PRESENCE_SECONDS

Soft by design: nothing is locked or refused. The page lands an approver on an image nobody else has open when there
is one, and says who else is looking when they go to one anyway; two approvers who still decide the same image are
settled by the decision's ``seq`` (``workbench.review.decisions``), as before. A presence older than
``PRESENCE_SECONDS`` (a closed tab, a long read without a click) counts for nothing.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workbench.auth import Actor, require
from workbench.db import session_scope, utcnow
from workbench.review.tables import ReviewPresenceRow

PRESENCE_SECONDS = 180  # a Streamlit page reruns only on a click: long enough for reading one image


def touch(actor: Actor, generation_id: int, now: dt.datetime | None = None) -> None:
    """Record that ``actor`` (an approver: someone who decides) has image ``generation_id`` open now."""
    now = now or utcnow()
    try:
        with session_scope() as s:
            who = require(actor, "decide", s)
            row = s.get(ReviewPresenceRow, who.username)
            if row is None:
                s.add(ReviewPresenceRow(username=who.username, generation_id=generation_id, seen_at=now))
            else:
                row.generation_id, row.seen_at = generation_id, now
    except IntegrityError:  # the same user's other tab inserted the row a moment before: theirs stands
        pass


def others_viewing(actor: Actor, generation_ids: Iterable[int],
                   now: dt.datetime | None = None) -> dict[int, list[str]]:
    """The images among ``generation_ids`` that other approvers had open within the last ``PRESENCE_SECONDS``,
    each with their names (sorted)."""
    ids = set(generation_ids)
    if not ids:
        return {}
    since = (now or utcnow()) - dt.timedelta(seconds=PRESENCE_SECONDS)
    with session_scope() as s:
        who = require(actor, "view_queue", s)
        # One row per user: read every fresh one and match the queue here (a long queue would otherwise be a bound
        # parameter per image on every page run).
        rows = s.execute(select(ReviewPresenceRow.generation_id, ReviewPresenceRow.username)
                         .where(ReviewPresenceRow.seen_at >= since, ReviewPresenceRow.username != who.username)
                         .order_by(ReviewPresenceRow.username)).all()
    out: dict[int, list[str]] = {}
    for gid, name in rows:
        if gid in ids:
            out.setdefault(gid, []).append(name)
    return out
