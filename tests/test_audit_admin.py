"""Every admin action writes an audit row under the admin's name (issue #23 item 3): users (add, role, password,
deactivate), settings (brand profiles, their logos, review policies) and the trash (delete, restore, purge are in
tests/test_trash.py). One pass over the whole list, so an action added without its row shows here."""
from sqlalchemy import select

from workbench import auth
from workbench.db import AuditLog, session_scope
from helpers.review import make_users

LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20" viewBox="0 0 60 20">'
        '<rect width="60" height="20" fill="#123456"/></svg>')


def test_each_admin_action_is_audited_with_before_and_after(monkeypatch):
    from workbench.generate.scenes.logo import save_brand_logo
    from workbench.prompts import load_library, save_brand_text
    from workbench.prompts.library import source_text
    from workbench.review.queue import set_policy

    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    users = make_users()
    admin = users["admin"]
    with session_scope() as s:
        first = s.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()))
    auth.add_user(admin, "zoe", "marketer", password="a long enough password")
    auth.set_role(admin, "zoe", "analyst")
    auth.reset_password(admin, "zoe", "another long password")
    auth.set_active(admin, "zoe", False)
    save_brand_text(admin, "name: northwind\n" + source_text(load_library().brands["northwind"].path)
                    .split("\n", 1)[1])
    save_brand_logo(admin, "northwind", LOGO)
    save_brand_logo(admin, "northwind", LOGO.replace("123456", "654321"))  # a replaced logo names the old one
    set_policy(admin, "northwind", on_clip_fail="hold")

    with session_scope() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.id > first).order_by(AuditLog.id)))
    assert [r.action for r in rows] == [
        "user.create", "user.set_role", "user.reset_password", "user.deactivate", "prompts.save_brand",
        "prompts.save_brand_logo", "prompts.save_brand_logo", "review.set_policy"]
    assert {r.actor for r in rows} == {"adam"}
    assert rows[1].before == {"role": "marketer"} and rows[1].after == {"role": "analyst"}
    first_logo, second_logo = rows[5], rows[6]
    assert first_logo.before is None and first_logo.after["chars"] == len(LOGO)
    assert second_logo.before["sha256"] == first_logo.after["sha256"] != second_logo.after["sha256"]
