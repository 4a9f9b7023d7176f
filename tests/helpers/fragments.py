"""What a browser shows after a page's self-refreshing fragments (``st.fragment(run_every=...)``) rerun on their own.

AppTest's ``run()`` reruns the whole page, so a part of the page drawn once outside a fragment looks fresh in a test
while the browser keeps showing it stale. ``refresh_fragments(at)`` reruns only the fragments, as the browser's timer
does, and returns the page as the browser then shows it: the last full run's elements outside the fragments, and
what the fragments drew now.
"""
from __future__ import annotations

import dataclasses
from unittest import mock

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import local_script_runner as lsr


def full_run(at: AppTest) -> AppTest:
    """``at.run()``, keeping the messages the page sent (``refresh_fragments`` lays the fragments' over them)."""
    sent: list = []
    parse = lsr.parse_tree_from_messages

    def keep(messages):
        sent[:] = list(messages)
        return parse(messages)

    with mock.patch.object(lsr, "parse_tree_from_messages", keep):
        at.run()
    at._sent_by_full_run = sent
    return at


def refresh_fragments(at: AppTest) -> AppTest:
    """Rerun the page's fragments alone (an auto-rerun, as their ``run_every`` timer asks the server for)."""
    ids = list(at._fragment_storage._fragments)
    assert ids, "the page has no fragment"
    before = getattr(at, "_sent_by_full_run", None)
    assert before is not None, "draw the page with full_run(at) first"
    rerun_data = lsr.RerunData
    parse = lsr.parse_tree_from_messages

    def fragment_rerun(**kwargs):
        return dataclasses.replace(rerun_data(**kwargs), fragment_id_queue=ids, is_auto_rerun=True)

    # the browser drops what the fragments drew last time and keeps everything else
    kept = [m for m in before if not (m.HasField("delta") and m.delta.fragment_id in ids)]
    with mock.patch.object(lsr, "RerunData", fragment_rerun), \
            mock.patch.object(lsr, "parse_tree_from_messages", lambda messages: parse(kept + list(messages))):
        at.run()
    return at
