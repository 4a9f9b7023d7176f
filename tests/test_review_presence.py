"""Approvers working one queue at once are steered apart: each lands on an image no other approver has open, and one
who goes to such an image anyway is told who else has it open (issue #23 item 5's load run: 20 approvers met 33
conflicts for 13 decisions, most of them on the same first images)."""
import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench import auth
from workbench.auth import PermissionDenied
from workbench.db import utcnow
from workbench.review import presence
from helpers.review import PASSWORD, as_role, make_generation, make_users
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "6_Review.py")


def test_who_has_which_image_open_is_one_image_per_approver_and_expires(db_backend):
    ana, ava = as_role("approver", "ana"), as_role("approver", "ava")
    t0 = utcnow()
    presence.touch(ana, 12, now=t0)
    presence.touch(ava, 12, now=t0)
    assert presence.others_viewing(ava, [11, 12, 13], now=t0) == {12: ["ana"]}  # not themself
    assert presence.others_viewing(as_role("analyst", "ari"), [12], now=t0) == {12: ["ana", "ava"]}
    presence.touch(ana, 13, now=t0 + dt.timedelta(seconds=5))  # ana moved on: 12 is no longer hers
    assert presence.others_viewing(ava, [11, 12, 13], now=t0 + dt.timedelta(seconds=5)) == {13: ["ana"]}
    later = t0 + dt.timedelta(seconds=5 + presence.PRESENCE_SECONDS + 1)  # a closed tab counts for nothing
    assert presence.others_viewing(ava, [11, 12, 13], now=later) == {}
    with pytest.raises(PermissionDenied):  # only approvers steer each other: an analyst looking blocks nobody
        presence.touch(as_role("analyst", "ari"), 12)


def _page(user: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run()


def _shown(at: AppTest) -> int:
    (key,) = [b.key for b in at.button if b.key and b.key.startswith("review_approve_")]
    return int(key.rsplit("_", 1)[1])


def test_a_second_approver_lands_on_another_image_and_is_told_when_they_go_to_one_in_use(workspace, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()
    auth.add_user(auth.system_actor("test"), "ava", "approver", password=PASSWORD)
    first, second, third = (make_generation(seed=i) for i in range(3))
    ana = _page("ana")
    assert not ana.exception and _shown(ana) == first and not ana.warning
    ava = _page("ava")
    assert _shown(ava) == second  # image 1 is open on ana's page
    assert not ava.warning
    ava.button(key="review_prev").click().run()  # ava goes to it anyway: her choice, with a word of warning
    assert _shown(ava) == first
    assert "ana also has this image open" in ava.warning[0].value
    ava.button(key=f"review_approve_{first}").click().run()  # ava decides it first: the queue moves her on
    assert not ava.exception and _shown(ava) in (second, third)
    ana.button(key=f"review_approve_{first}").click().run()  # ana's click meets the decision, as before
    assert any("changed while you looked" in e.value or "decided" in e.value for e in ana.error), \
        [e.value for e in ana.error]
