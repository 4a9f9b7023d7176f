"""Review page (AppTest): first run creates the admin, password sign-in, OIDC sign-in mapped to a role, what each role
sees, an approver deciding (and losing a race with a clear message), a reject's reason and its undo, bulk mode (one
form, with each image's products), export (enabled only when it can run, with its count), a marketer's submissions
(thumbnails, full feedback), the audit view in plain words with filters."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench import auth
from workbench.auth import get_user
from workbench.review import decide, get_item, history, record_check
from helpers.review import PASSWORD, make_generation, make_users, page_text
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "6_Review.py")


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


def _page(user: str = "", run: bool = True) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run() if run else at


def _keys(at: AppTest, kind: str) -> set[str]:
    return {w.key for w in getattr(at, kind) if w.key}


def _can_decide(at: AppTest) -> bool:
    """Whether the page shows the decision buttons (keyed by the image they decide)."""
    return any(k.startswith("review_approve_") for k in _keys(at, "button"))


def test_first_run_asks_for_an_admin_then_signs_them_in(workspace):
    at = _page()
    assert not at.exception and "Create the first admin" in [s.value for s in at.subheader]
    at.text_input(key="auth_setup_username").input("boss")
    at.text_input(key="auth_setup_password").input("first admin pw")
    at.text_input(key="auth_setup_password2").input("first admin pw!")
    at.button(key="auth_setup_create").click().run()
    assert "The two passwords differ." in page_text(at)
    at.text_input(key="auth_setup_password2").input("first admin pw")
    at.button(key="auth_setup_create").click().run()
    assert not at.exception and at.session_state[StateKeys.USER] == "boss"
    assert get_user("boss").role == "admin"
    assert [t.label for t in at.tabs] == ["Queue", "Bulk", "Audit", "Users"]


def test_password_sign_in_and_sign_out(workspace):
    make_users()
    at = _page()
    assert "Sign in" in [s.value for s in at.subheader] and "auth_oidc_login" not in _keys(at, "button")
    at.text_input(key="auth_username").input("ana")
    at.text_input(key="auth_password").input("wrong password")
    at.button(key="auth_login").click().run()
    assert "wrong username or password" in page_text(at) and not at.session_state[StateKeys.USER]
    at.text_input(key="auth_password").input(PASSWORD)
    at.button(key="auth_login").click().run()
    assert at.session_state[StateKeys.USER] == "ana" and "Signed in as **Ana (approver)**" in page_text(at)
    at.button(key="auth_logout").click().run()
    assert not at.session_state[StateKeys.USER] and "Sign in" in [s.value for s in at.subheader]


def test_the_sign_in_form_is_throttled(workspace):
    make_users()
    at = _page()
    at.text_input(key="auth_username").input("ana")
    for _ in range(5):
        at.text_input(key="auth_password").input("wrong password")
        at.button(key="auth_login").click().run()
    at.text_input(key="auth_password").input(PASSWORD)
    at.button(key="auth_login").click().run()
    assert "or the account is locked for 15 minutes" in page_text(at) and not at.session_state[StateKeys.USER]


def test_oidc_identity_is_mapped_to_a_role(workspace):
    make_users()
    make_generation()
    at = _page(run=False)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "secret",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    at.secrets["workbench_roles"] = {"@northwind.example": "approver"}
    at.user = {"is_logged_in": True, "email": "Zoe@Northwind.example", "email_verified": True,
               "name": "Zoe"}
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[StateKeys.USER] == "zoe@northwind.example"
    assert get_user("zoe@northwind.example").role == "approver" and _can_decide(at)

    stranger = _page(run=False)
    stranger.secrets["auth"] = dict(at.secrets["auth"])
    stranger.user = {"is_logged_in": True, "email": "eve@elsewhere.example", "email_verified": True}
    stranger.run()
    assert "no role in this workspace" in page_text(stranger) and not _can_decide(stranger)


# The role x page matrix: which controls each role gets (the library refuses the rest anyway: test_review_auth).
EXPECTED = {
    "marketer": {"tabs": [], "decide": False, "submissions": True},
    "analyst": {"tabs": ["Queue", "Bulk", "Audit"], "decide": False, "submissions": False},
    "approver": {"tabs": ["Queue", "Bulk", "Export", "Audit"], "decide": True, "submissions": False},
    "admin": {"tabs": ["Queue", "Bulk", "Audit", "Users"], "decide": False, "submissions": False},
}


def test_each_role_sees_exactly_its_controls(workspace):
    users = make_users()
    make_generation(created_by="mia")
    for role, name in users.items():
        at = _page(name)
        assert not at.exception, (role, at.exception)
        want = EXPECTED[role]
        assert [t.label for t in at.tabs] == want["tabs"], role
        assert _can_decide(at) is want["decide"], role
        assert ("My submissions" in [s.value for s in at.subheader]) is want["submissions"], role


def test_approver_decides_with_tags_and_moves_on(workspace):
    make_users()
    first = make_generation(prompt="nwo_style navy tee, studio")
    second = make_generation(prompt="nwo_style olive tee, street")
    at = _page("ana")
    assert "Image 1 of 2" in page_text(at) and "nwo_style navy tee, studio" in [c.value for c in at.code]
    at.text_input(key=f"review_tags_{first}").input("hero, homepage")
    _decision_button(at, "approve").click().run()
    assert not at.exception and f"Image {first} approved." in page_text(at)
    (d,) = history("ana", first)
    assert (d.decision, d.tags, d.reviewer) == ("approved", ("hero", "homepage"), "ana")
    assert "Image 1 of 1" in page_text(at) and "nwo_style olive tee, street" in [c.value for c in at.code]
    _decision_button(at, "request_changes").click().run()  # no comment
    assert "Say what should change" in page_text(at) and get_item("ana", second).review_status == "pending"


def test_a_second_approver_is_told_the_current_decision(workspace):
    make_users()
    gen = make_generation()
    at = _page("ana")
    auth.add_user(auth.system_actor("t"), "bea", "approver")
    decide("bea", gen, "reject", comment="colour is off")  # while ana looks at it
    _decision_button(at, "approve").click().run()
    assert f"image {gen} changed while you looked at it: it is now rejected by bea" in page_text(at)
    assert [d.decision for d in history("ana", gen)] == ["rejected"]


def test_request_changes_with_a_new_prompt_from_the_page(workspace):
    make_users()
    gen = make_generation(prompt="nwo_style navy tee, studio")
    at = _page("ana")
    at.text_area(key=f"review_comment_{gen}").input("logo too small")
    at.text_area(key=f"review_new_prompt_{gen}").input("nwo_style navy tee, large logo, studio")
    _decision_button(at, "request_changes").click().run()
    assert not at.exception and "Prompt version 2 saved." in page_text(at)
    (d,) = history("ana", gen)
    assert d.decision == "changes_requested" and d.prompt_version_id is not None


def test_held_images_and_bulk_mode(workspace):
    make_users()
    a, b, c = (make_generation() for _ in range(3))
    record_check("ari", c, "ocr", False, {"expected": "NORTHWIND", "read": "NORTH"})
    at = _page("ana")
    assert "Image 1 of 2" in page_text(at)  # c is held back
    at.selectbox(key="review_f_gate").set_value("held").run()
    assert "OCR read 'NORTH', expected 'NORTHWIND'" in page_text(at)
    _decision_button(at, "approve").click().run()
    assert "held back by its gates" in page_text(at)
    at.checkbox(key=f"review_override_{c}").check().run()
    _decision_button(at, "approve").click().run()
    assert get_item("ana", c).review_status == "approved"

    at.selectbox(key="review_f_gate").set_value(None).run()
    at.checkbox(key=f"review_bulk_pick_{a}").check()
    at.checkbox(key=f"review_bulk_pick_{b}").check()
    at.selectbox(key="review_bulk_decision").set_value("reject")
    at.text_input(key="review_bulk_comment").input("off-brand")
    decide("ana", b, "approve")  # someone decides b between the page showing it and the click
    at.button(key="review_bulk_apply").click().run()
    assert "1 decided, 1 changed by someone else meanwhile, 0 refused" in page_text(at)
    assert get_item("ana", a).review_status == "rejected" and get_item("ana", b).review_status == "approved"


def test_export_from_the_page(workspace):
    make_users()
    decide("ana", make_generation(), "approve")
    at = _page("ana")
    at.tabs[2].selectbox(key="review_export_brand").set_value("northwind").run()  # the button enables
    at.button(key="review_export_go").click().run()
    assert not at.exception and "1 image exported to" in page_text(at)


def test_marketer_sees_their_submissions_and_feedback(workspace):
    make_users()
    auth.add_user(auth.system_actor("t"), "max", "marketer")
    mine = make_generation(created_by="mia")
    other = make_generation(created_by="max")
    feedback = ("needs a bigger logo: the wordmark should span the chest, centred, and the navy must match the "
                "swatch; keep the studio light as it is")  # longer than a table cell shows
    decide("ana", mine, "request_changes", comment=feedback)
    at = _page("mia")
    assert not at.exception
    text = page_text(at)
    assert f"Image {mine}** · ✏️ changes requested" in text and f"Image {other}" not in text
    assert f"> {feedback}" in text  # the whole feedback, not cut off
    assert len(at.get("image")) == 1  # a thumbnail of the image
    assert not _can_decide(at) and not at.tabs


def test_a_reject_needs_a_reason_and_can_be_undone_right_after(workspace):
    make_users()
    gen = make_generation()
    at = _page("ana")
    _decision_button(at, "reject").click().run()
    assert "Say why you reject the image" in page_text(at) and get_item("ana", gen).review_status == "pending"
    assert "review_undo" not in _keys(at, "button")
    at.text_area(key=f"review_comment_{gen}").input("the logo is cut off")
    _decision_button(at, "reject").click().run()
    assert f"Image {gen} rejected." in page_text(at) and get_item("ana", gen).review_status == "rejected"
    at.button(key="review_undo").click().run()
    assert not at.exception, at.exception
    assert f"Undone: image {gen} back as before." in page_text(at)
    assert get_item("ana", gen).review_status == "pending" and "review_undo" not in _keys(at, "button")
    assert [d.decision for d in history("ana", gen)] == ["rejected", "withdrawn"]


def test_an_admin_makes_the_reason_to_reject_optional_for_a_brand(workspace):
    from workbench.review import get_policy

    make_users()
    make_generation(brand="northwind")
    at = _page("adam")
    assert at.button(key="review_policy_save").disabled  # nothing changed yet
    at.selectbox(key="review_policy_reason_northwind").set_value("optional").run()
    at.button(key="review_policy_save").click().run()
    assert not at.exception and "Review policy of northwind saved." in page_text(at)
    assert get_policy("northwind").reject_reason == "optional"


def test_bulk_mode_is_one_form_and_lists_each_images_products(workspace):
    from helpers.data import CURATOR
    from helpers.review import as_role
    from workbench.products import create_product, link_generation

    make_users()
    a, b = make_generation(), make_generation()
    create_product(CURATOR, "AUR-1001", "Aurelo Red Jacket", price="129.00", currency="EUR",
                   url="https://shop.example/p/aur-1001")
    link_generation(as_role("marketer"), a, ["AUR-1001"])
    at = _page("ana")
    pick = at.checkbox(key=f"review_bulk_pick_{a}")
    assert pick.proto.form_id == "review_bulk_form"  # ticking sends nothing until the form is applied
    text = page_text(at)
    line = "Aurelo Red Jacket** · SKU `AUR-1001` · 129 EUR · generated for · [product page](https://shop.example/"
    assert text.count(line) == 2, text  # in the Queue's card and beside the image in the Bulk form
    pick.check()
    at.checkbox(key=f"review_bulk_pick_{b}").check()
    at.selectbox(key="review_bulk_decision").set_value("reject")
    at.button(key="review_bulk_apply").click().run()  # no reason: each image refused, with why
    assert "0 decided" in page_text(at) and "Say why you reject the image" in page_text(at)
    at.checkbox(key=f"review_bulk_pick_{a}").check()
    at.checkbox(key=f"review_bulk_pick_{b}").check()
    at.text_input(key="review_bulk_comment").input("off-brand")
    at.button(key="review_bulk_apply").click().run()
    assert "2 decided, 0 changed by someone else meanwhile, 0 refused" in page_text(at)
    at.button(key="review_undo").click().run()  # the bulk decision can be undone too
    assert get_item("ana", a).review_status == "pending" and get_item("ana", b).review_status == "pending"


def test_export_is_enabled_only_when_it_can_run_and_says_how_many(workspace):
    make_users()
    decide("ana", make_generation(batch="ss26"), "approve")
    decide("ana", make_generation(batch="aw26"), "approve")
    make_generation(batch="ss26")  # pending: not exported
    at = _page("ana")
    go = at.button(key="review_export_go")
    assert go.disabled and "Pick a brand or a campaign" in page_text(at)  # (any) / (any) would be refused
    at.selectbox(key="review_export_brand").set_value("northwind").run()
    go = at.button(key="review_export_go")
    assert not go.disabled and go.label == "Export 2 approved images"
    at.selectbox(key="review_export_batch").set_value("ss26").run()
    assert at.button(key="review_export_go").label == "Export 1 approved image"
    at.button(key="review_export_go").click().run()
    text = page_text(at)
    assert "1 image exported to" in text and str(workspace) not in text  # a file name, not a server path


def test_the_audit_view_speaks_plain_words_with_filters(workspace):
    from workbench.review import export_approved, set_policy

    make_users()
    gen = make_generation()
    decide("ana", gen, "approve")
    set_policy("adam", "northwind", on_clip_fail="hold")
    export_approved("ana", brand="northwind")
    at = _page("ana")
    table = at.tabs[3].dataframe[0].value
    assert {"approved an image", "changed a review policy", "exported approved images"} <= set(table["what"])
    assert not table.isin(["None", None]).any().any()  # no None cells
    row = table[table["what"] == "approved an image"].iloc[0]
    assert (row["who"], row["object"]) == ("ana", f"image {gen}") and "status: pending → approved" in row["change"]
    everything = table.to_string()
    assert "review." not in everything and str(workspace) not in everything  # no raw keys, no server paths
    at.multiselect(key="review_audit_who").set_value(["adam"]).run()
    table = at.tabs[3].dataframe[0].value
    assert list(table["what"]) == ["changed a review policy"]
    diff = at.tabs[3].dataframe[1].value  # the chosen entry's before and after, field by field
    row = diff[diff["field"] == "when CLIP fails"].iloc[0]
    assert (row["before"], row["after"], row["changed"]) == ("flag", "hold", "✏️")


def test_an_image_held_by_the_fidelity_gate_shows_the_reason_and_the_products_reference_photo(workspace, tmp_path):
    from helpers.data import CURATOR, image_bytes, write
    from helpers.review import as_role
    from workbench.products import create_product, link_generation, record_fidelity
    from workbench.products.importing import import_catalog

    make_users()
    write(tmp_path / "photos" / "1.png", image_bytes((48, 48)))
    report = import_catalog(CURATOR, tmp_path / "photos", workers=1)
    from workbench.data.tables import Item
    from workbench.db import session_scope

    with session_scope() as s:
        ids = [i.id for i in s.query(Item).filter(Item.dataset_id == report.dataset_id)]
    create_product(CURATOR, "AUR-1001", "Aurelo Red Jacket", item_ids=ids)
    gid = make_generation()
    link_generation(as_role("marketer"), gid, ["AUR-1001"])
    reason = "colour ΔE 7.9 vs AUR-1001 reference, limit 5"
    record_fidelity(as_role("marketer"), gid, "AUR-1001", {"delta_e": 7.9}, False, reason)
    at = _page("ana")
    assert "Image 1 of" not in page_text(at)  # held: not in the default queue
    at.selectbox(key="review_f_gate").set_value("held").run()
    assert not at.exception, at.exception
    assert f"fidelity: {reason}" in page_text(at)
    assert "reference: **AUR-1001** Aurelo Red Jacket · 🔴 fidelity failed" in page_text(at)
    assert len(at.get("image")) >= 2  # the generated image and the product's reference thumbnail


def _decision_button(at: AppTest, action: str):
    """The page's Approve / Reject / Request changes button (one set, for the image shown)."""
    return next(b for b in at.button if b.key and b.key.startswith(f"review_{action}_"))


def test_a_click_meant_for_an_image_no_longer_shown_decides_nothing(workspace):
    """Found by the served-app load test: a click sent by a browser still showing image A, arriving after the server
    moved the page on to image B (A was decided by someone else meanwhile), approved B — an image its approver never
    saw. The decision buttons belong to the image they were drawn with, so such a click decides nothing."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    make_users()
    a, b = make_generation(), make_generation()
    at = _page("ana")
    assert "Image 1 of 2" in page_text(at) and not at.exception
    stale = _decision_button(at, "approve").id  # the button the approver's (lagging) browser still shows, for A
    auth.add_user(auth.system_actor("test"), "bo", "approver", password=PASSWORD)
    decide("bo", a, "reject", comment="off-brand")  # another approver decides A meanwhile
    at.run()  # any rerun of this session (a flash, a refresh): the page now shows B
    assert "Image 1 of 1" in page_text(at)
    states = WidgetStates()
    states.CopyFrom(at._tree.get_widget_states())
    click = states.widgets.add()
    click.id, click.trigger_value = stale, True  # the stale click arrives
    at._run(states)
    assert get_item("ana", b).review_status == "pending", "a click meant for image A approved image B"
    assert get_item("ana", a).review_status == "rejected"
