"""The Review page's Audit tab: who did what to which object, when, in plain words (``ACTIONS``, ``OBJECTS``,
``FIELDS`` turn the audit log's names into words; server paths show as a file name), filtered by who, actions,
dates and object, with the chosen entry's before and after as a table. Widget keys start with ``review_audit_``.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import streamlit as st

from workbench.auth import UserInfo
from workbench.review import audit_options, audit_trail

ANY = "(any)"

ACTIONS = {  # what the audit log records -> what a person reads
    "review.approve": "approved an image", "review.reject": "rejected an image",
    "review.request_changes": "requested changes", "review.undo": "undid a decision",
    "review.feedback": "turned feedback into a new prompt", "review.export": "exported approved images",
    "review.set_policy": "changed a review policy", "review.check.ocr": "checked a logo (OCR)",
    "user.create": "added a user", "user.set_role": "changed a role", "user.activate": "reactivated a user",
    "user.deactivate": "deactivated a user", "user.login": "signed in", "user.login_failed": "failed to sign in",
    "user.locked": "account locked", "user.reset_password": "reset a password",
    "signin.client_locked": "sign-in blocked for a client", "dataset.import": "imported a dataset",
    "dataset.delete": "deleted a dataset", "dataset.split": "split a dataset",
    "dataset.caption_batch": "captioned a dataset", "item.caption": "edited a caption",
    "item.exclude": "excluded an item", "item.include": "included an item", "prompt.create": "saved a prompt",
    "prompt.refine": "refined a prompt", "prompt_batch.save": "saved a prompt batch",
    "product.create": "created a product", "product.edit": "edited a product", "product.merge": "merged products",
    "product.link_items": "linked photos to a product", "product.unlink_items": "unlinked photos from a product",
    "product.token": "set a product token", "product.train": "trained a product",
    "products.index": "indexed the catalog",
    "products.fidelity": "checked product fidelity",
}
OBJECTS = {"generation": "image", "review_policy": "review policy", "export": "export", "user": "user",
           "dataset": "dataset", "item": "dataset item", "prompt": "prompt", "prompt_batch": "prompt batch",
           "product": "product", "client": "client"}
FIELDS = {"review_status": "status", "seq": "decision number", "review_id": "decision record",
          "override_gate": "gate overridden", "on_clip_fail": "when CLIP fails",
          "on_ocr_fail": "when the logo check fails", "reject_reason": "reason to reject", "generation_ids": "images",
          "sha256": "checksum", "undid": "undid decision", "product_feed": "product feed",
          "feed_rows": "product feed rows", "path": "file"}
PATHLIKE = ("path", "file", "dir", "folder", "log")  # field names whose values are server paths: shown as a file name


def action_words(action: str) -> str:
    return ACTIONS.get(action) or action.replace(".", " ").replace("_", " ")


def object_words(entity: str, entity_id: str) -> str:
    kind = OBJECTS.get(entity) or entity.replace("_", " ")
    return f"{kind} {entity_id}".strip()


def field_words(key: str) -> str:
    return FIELDS.get(key) or key.replace("_", " ")


def value_words(key: str, value) -> str:
    """A recorded value as a person reads it: no None, no JSON, no server paths."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(value_words(key, v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{field_words(k)}: {value_words(k, v)}" for k, v in value.items())
    text = str(value)
    if any(p in key.lower() for p in PATHLIKE) and ("/" in text or "\\" in text):
        return Path(text).name
    if key in ("review_status", "decision"):
        return text.replace("_", " ")
    return text


def changes(before: dict | None, after: dict | None) -> list[dict[str, str]]:
    """Field by field: before, after, and whether it changed (a diff as a table)."""
    before, after = before or {}, after or {}
    rows = []
    for key in dict.fromkeys([*before, *after]):
        b, a = before.get(key), after.get(key)
        rows.append({"field": field_words(key), "before": value_words(key, b) if key in before else "—",
                     "after": value_words(key, a) if key in after else "—",
                     "changed": "✏️" if key in before and key in after and b != a else
                                "➕" if key not in before else "➖" if key not in after else ""})
    return rows


def change_summary(before: dict | None, after: dict | None, limit: int = 140) -> str:
    parts = []
    for row in changes(before, after):
        if row["changed"] == "✏️":
            parts.append(f"{row['field']}: {row['before']} → {row['after']}")
        elif row["changed"] == "➕" and row["after"] != "—":
            parts.append(f"{row['field']}: {row['after']}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def audit_view(user: UserInfo) -> None:
    """Who did what to which object, when: filters (who, what, dates, object), plain words, and the chosen entry's
    before and after as a table."""
    opts = audit_options(user.username)
    if not opts["action"]:
        st.caption("Nothing recorded yet.")
        return
    c1, c2, c3 = st.columns([2, 3, 2])
    who = c1.multiselect("Who", opts["who"], key="review_audit_who", placeholder="anyone")
    actions = c2.multiselect("What", opts["action"], format_func=action_words, key="review_audit_action",
                             placeholder="anything")
    today = dt.date.today()
    dates = c3.date_input("Between", (today - dt.timedelta(days=30), today), key="review_audit_dates")
    c4, c5, _ = st.columns([2, 2, 3])
    kind = c4.selectbox("Object", [ANY, *opts["entity"]], key="review_audit_entity",
                        format_func=lambda e: e if e == ANY else OBJECTS.get(e, e.replace("_", " ")))
    number = c5.text_input("Its number or name", key="review_audit_object", placeholder="e.g. 12",
                           disabled=kind == ANY)
    since = until = None
    if isinstance(dates, (tuple, list)) and dates:
        since = dt.datetime.combine(dates[0], dt.time())
        until = dt.datetime.combine(dates[-1], dt.time()) + dt.timedelta(days=1)
    entries = audit_trail(user.username, entity=None if kind == ANY else kind,
                          entity_id=number.strip() if kind != ANY and number.strip() else None, limit=300,
                          who=who or None, actions=actions or None, since=since, until=until)
    if not entries:
        st.caption("Nothing matches these filters.")
        return
    n = len(entries)
    st.caption(f"{n} entr{'y' if n == 1 else 'ies'}, newest first" + (" (the latest 300)" if n == 300 else "") + ".")
    st.dataframe([{"when": e.at.strftime("%Y-%m-%d %H:%M:%S"), "who": e.actor or "—", "what": action_words(e.action),
                   "object": object_words(e.entity, e.entity_id), "change": change_summary(e.before, e.after) or "—"}
                  for e in entries], width="stretch", hide_index=True, key="review_audit_table",
                 column_config={"change": st.column_config.TextColumn(width="large")})
    pick = st.selectbox("Before and after of", range(n), key="review_audit_pick",
                        format_func=lambda i: f"{entries[i].at:%Y-%m-%d %H:%M:%S} · {entries[i].actor} · "
                                              f"{action_words(entries[i].action)} · "
                                              f"{object_words(entries[i].entity, entries[i].entity_id)}")
    st.dataframe(changes(entries[pick].before, entries[pick].after), width="stretch", hide_index=True,
                 key="review_audit_diff")
