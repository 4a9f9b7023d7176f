"""Widgets of the Review page: filters, the one-image view with keyboard shortcuts (A approve, X reject, E request
changes, J/K next/previous), bulk mode, export, the audit trail, a marketer's submissions, and user admin.

Every action calls a ``workbench.review`` function with the signed-in username; the library checks the role again.
Widget keys start with ``review_``.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import streamlit as st

from workbench.auth import ROLES, AuthError, UserInfo, add_user, list_users, set_active, set_role
from workbench.review import (DECISIONS, QueueFilter, QueueItem, ReviewError, audit_trail, bulk_decide, decide,
                              export_approved, filter_options, history, list_queue, request_changes)
from workbench.ui.common import code_span, plain

POS = "review_pos"  # index of the image shown (page-private state, not a widget)
FLASH = "review_flash"  # (kind, message) shown once after a rerun
ANY = "(any)"
STATUS_LABELS = {"pending": "pending", "approved": "approved", "rejected": "rejected",
                 "changes_requested": "changes requested", None: "all"}
BUTTONS = (("approve", "✅ Approve", "A"), ("reject", "❌ Reject", "X"),
           ("request_changes", "✏️ Request changes", "E"))  # (action, label, keyboard shortcut)


def flash(kind: str, message: str) -> None:
    st.session_state[FLASH] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop(FLASH, (None, None))
    if kind:
        getattr(st, kind)(message)  # built by this page; user text in it went through plain()


def filters(user: UserInfo) -> QueueFilter:
    opts = filter_options(user.username)
    c1, c2, c3, c4 = st.columns(4)
    brand = c1.selectbox("Brand", [ANY, *opts["brand"]], key="review_f_brand")
    batch = c2.selectbox("Batch", [ANY, *opts["batch"]], key="review_f_batch")
    status = c3.selectbox("Status", list(STATUS_LABELS), format_func=STATUS_LABELS.get, key="review_f_status")
    gate = c4.selectbox("Gate", [None, "passed", "flagged", "held"],
                        format_func=lambda g: g or "passed + flagged", key="review_f_gate")
    return QueueFilter(brand=None if brand == ANY else brand, batch=None if batch == ANY else batch, status=status,
                       gate=gate)


def provenance_panel(item: QueueItem) -> None:
    gate = item.gate
    icon = {"passed": "🟢", "flagged": "🟠", "held": "🔴"}[gate.state]
    st.markdown(f"**Image {item.generation_id}** · {item.review_status.replace('_', ' ')} · gate {icon} {gate.state}")
    for flag in gate.flags:
        st.warning(plain(flag))
    clip = "—" if item.clip_score is None else f"{item.clip_score:.3f}"
    threshold = "" if gate.clip_threshold is None else f" (threshold {gate.clip_threshold:.3f})"
    ocr = {None: "not checked", True: "passed", False: "failed"}[gate.ocr_passed]
    st.markdown(f"CLIP **{clip}**{threshold} · OCR **{ocr}**" +
                (f" (read {plain(repr(gate.ocr_detail.get('read', '')))})" if gate.ocr_detail else ""))
    st.code(item.prompt, language=None, wrap_lines=True)
    loras = ", ".join(f"{plain(l.get('name') or l.get('path'))} × {plain(l.get('scale'))}"
                      for l in item.loras) or "none"
    st.markdown(
        f"- **Model** {code_span(item.model)}{' 🧪 demo model' if item.demo_model else ''}\n"
        f"- **LoRAs** {loras}\n- **Quantization** {plain(item.quantization)} · **Scheduler** {plain(item.scheduler)}\n"
        f"- **Seed** {item.seed} · **Steps** {item.steps} · **Guidance** {item.guidance} · "
        f"{item.width}×{item.height}\n- **Negative** {plain(item.negative_prompt) or '—'}\n"
        f"- **Batch** {plain(item.batch)} · **Brand** {plain(item.brand) or '—'} · "
        f"**By** {plain(item.created_by) or '—'} · "
        f"attempt {item.attempt}" + (f"\n- **Replaces** image {item.replaces_id}" if item.replaces_id else ""))


def product_url(url: str) -> str | None:
    """A product URL fit for a markdown link: http(s) with a host (``products.fields.check_url``), with the characters
    that could end the link's target percent-encoded; None for anything else."""
    from workbench.products.fields import ProductError, check_url

    try:
        url = check_url(url)
    except ProductError:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~") if url else None


def products_panel(links: list) -> None:
    """Products in this image (shop-the-look; ``products_of_generation`` rows): the SKU(s) it was generated for and
    the similar catalog products retrieval found, each with its price and a link to its product page."""
    if not links:
        return
    lines = []
    for p in links:
        kind = "generated for" if p.source == "generated_for" else f"similar ({(p.score or 0.0):.2f})"
        price = f" · {p.price:f} {plain(p.currency)}".rstrip() if p.price is not None else ""
        url = product_url(p.url)
        link = f" · [product page]({url})" if url else ""
        lines.append(f"- **{plain(p.name or p.sku)}** · SKU {code_span(p.sku)}{price} · {kind}{link}")
    st.markdown("**Products in this image**  \n" + "\n".join(lines))


def product_references(links: list) -> None:
    """Beside an image generated for a product: the product's reference photo (a thumbnail with its SKU) and the
    fidelity verdict, so the reviewer compares garment, colour and print with the real thing."""
    from workbench.products import ProductError, get_product

    links = [link for link in links if link.source == "generated_for"]
    if not links:
        return
    cols = st.columns(min(len(links), 4))
    for col, link in zip(cols, links):
        try:
            product = get_product(link.sku)
        except ProductError:
            continue
        photo = next((p for p in [*product.thumbnails, *product.images] if Path(p).is_file()), None)
        verdict = {True: "✅ fidelity passed", False: "🔴 fidelity failed", None: "fidelity not checked"}[
            link.fidelity_passed]
        with col:
            if photo is not None:
                st.image(str(photo), width=120)
            st.caption(f"reference: **{plain(link.sku)}** {plain(product.name)} · {verdict}")


def history_panel(user: UserInfo, item: QueueItem) -> None:
    decisions = history(user.username, item.generation_id)
    if not decisions:
        st.caption("No decisions yet.")
    for d in decisions:
        tags = f" · tags: {plain(', '.join(d.tags))}" if d.tags else ""
        extra = f" · prompt v{d.prompt_version_id}" if d.prompt_version_id else ""
        extra += f" · regeneration job {d.regen_job_id}" if d.regen_job_id else ""
        st.markdown(f"#{d.seq} **{d.decision.replace('_', ' ')}** by {plain(d.reviewer)} · "
                    f"{d.created_at:%Y-%m-%d %H:%M}"
                    f"{tags}{extra}" + (f"  \n> {plain(d.comment)}" if d.comment else ""))


def decision_controls(user: UserInfo, item: QueueItem) -> None:
    gid = item.generation_id
    st.text_area("Comment", key=f"review_comment_{gid}",
                 placeholder="What is good, what should change (required for request changes)")
    st.text_input("Tags (comma-separated)", key=f"review_tags_{gid}")
    if item.gate.held:
        st.checkbox("I checked it: approve although a gate held it back", key=f"review_override_{gid}")
    with st.expander("Request changes: new prompt and regeneration"):
        st.text_area("New prompt (a new version of the prompt, linked to your comment)", value=item.prompt,
                     key=f"review_new_prompt_{gid}")
        st.checkbox("Regenerate with it", key=f"review_regenerate_{gid}")
    # Approve and Reject side by side, Request changes under them: three in a row cut its label short.
    cols = st.columns(2)
    for slot, (action, label, key) in zip([*cols, st.container()], BUTTONS):
        # The callback gets the decision count shown now, not the one a rerun reads after the click: that is
        # what makes a decision made meanwhile by someone else a conflict instead of an overwrite.
        slot.button(label, key=f"review_{action}", shortcut=key, width="stretch", on_click=_apply,
                    args=(user.username, gid, item.review_seq, item.prompt, action))


def _apply(username: str, gid: int, seen: int, prompt: str, action: str) -> None:
    state = st.session_state
    comment = state.get(f"review_comment_{gid}", "")
    tags = [t.strip() for t in state.get(f"review_tags_{gid}", "").split(",") if t.strip()]
    try:
        if action == "request_changes":
            new_prompt = state.get(f"review_new_prompt_{gid}", prompt)
            changed = " ".join(new_prompt.split()) != prompt
            fb = request_changes(username, gid, comment, expected_seq=seen, tags=tags,
                                 new_prompt=new_prompt if changed else None,
                                 regenerate=bool(state.get(f"review_regenerate_{gid}")))
            msg = f"Changes requested on image {gid}."
            msg += f" Prompt version {fb.prompt.version} saved." if fb.prompt else ""
            msg += f" Regeneration job {fb.job_id} queued." if fb.job_id else ""
        else:
            d = decide(username, gid, action, comment=comment, tags=tags, expected_seq=seen,
                       override_gate=bool(state.get(f"review_override_{gid}")))
            msg = f"Image {gid} {plain(d.decision)}."
    except (AuthError, ReviewError) as exc:  # DecisionConflict included: its message names the current decision
        flash("error", plain(exc))
        return
    flash("success", msg)


def single_view(user: UserInfo, items: list[QueueItem]) -> None:
    from workbench.generate.video import video_for
    from workbench.products.links import products_of_generation

    pos = min(st.session_state.get(POS, 0), len(items) - 1)
    nav1, nav2, nav3 = st.columns([1, 4, 1])
    if nav1.button("◀ Previous", key="review_prev", shortcut="K", disabled=pos == 0):
        pos -= 1
    if nav3.button("Next ▶", key="review_next", shortcut="J", disabled=pos >= len(items) - 1):
        pos += 1
    st.session_state[POS] = pos
    item = items[pos]
    products = products_of_generation(item.generation_id)  # read once: the reference photos and the product list
    nav2.caption(f"Image {pos + 1} of {len(items)} · shortcuts: A approve, X reject, E request changes, J/K next/prev")
    left, right = st.columns([3, 2])
    with left:
        if Path(item.image_path).is_file():
            st.image(item.image_path, width="stretch")
        else:
            st.error(f"The image file is missing: {plain(item.image_path)}")
        video = video_for(item.generation_id)  # a spin video: the image above is its first frame
        if video is not None and Path(video.mp4_path).is_file():
            st.video(video.mp4_path, loop=True)
        product_references(products)
    with right:
        provenance_panel(item)
        products_panel(products)
        if user.can("decide"):
            decision_controls(user, item)
        with st.expander("History", expanded=False):
            history_panel(user, item)


def bulk_view(user: UserInfo, items: list[QueueItem]) -> None:
    st.caption("Tick images, then decide on all of them at once. Each is decided on its own: one that someone else "
               "decided meanwhile is reported, the others go through.")
    cols = st.columns(4)
    for i, item in enumerate(items):
        with cols[i % 4]:
            if Path(item.image_path).is_file():
                st.image(item.image_path, width="stretch")
            st.checkbox(f"{item.generation_id} · {item.gate.state}", key=f"review_bulk_pick_{item.generation_id}")
    st.selectbox("Decision", list(DECISIONS), format_func=lambda d: d.replace("_", " "), key="review_bulk_decision")
    st.text_input("Comment", key="review_bulk_comment")
    st.button("Apply to the selected images", key="review_bulk_apply", on_click=_apply_bulk,
              args=(user.username, {i.generation_id: i.review_seq for i in items}))


def _apply_bulk(username: str, seen: dict[int, int]) -> None:
    state = st.session_state
    chosen = {gid: seq for gid, seq in seen.items() if state.get(f"review_bulk_pick_{gid}")}
    if not chosen:
        flash("warning", "Tick at least one image.")
        return
    try:
        result = bulk_decide(username, chosen, state.get("review_bulk_decision", "approve"),
                             comment=state.get("review_bulk_comment", ""))
    except (AuthError, ReviewError) as exc:
        flash("error", plain(exc))
        return
    for gid in chosen:
        state[f"review_bulk_pick_{gid}"] = False
    problems = "  \n".join(plain(e) for e in result.conflicts + result.errors)
    flash("warning" if problems else "success", plain(result.summary) + (f"  \n{problems}" if problems else ""))


def export_view(user: UserInfo) -> None:
    opts = filter_options(user.username)
    c1, c2 = st.columns(2)
    brand = c1.selectbox("Brand", [ANY, *opts["brand"]], key="review_export_brand")
    batch = c2.selectbox("Campaign (batch)", [ANY, *opts["batch"]], key="review_export_batch")
    if st.button("Export approved images", key="review_export_go", type="primary"):
        try:
            result = export_approved(user.username, brand=None if brand == ANY else brand,
                                     batch=None if batch == ANY else batch)
        except (AuthError, ReviewError) as exc:
            st.error(plain(exc))
            return
        st.success(f"{result.count} images exported to {code_span(result.path)}")
        st.download_button("Download the zip", result.path.read_bytes(), file_name=result.path.name,
                           mime="application/zip", key="review_export_download")
        if result.feed_csv and result.feed_json:
            st.caption(f"Product feed ({len(result.feed or [])} image × product rows): {code_span(result.feed_csv)} · "
                       f"{code_span(result.feed_json)}")
            c1, c2 = st.columns(2)
            c1.download_button("Product feed (CSV)", result.feed_csv.read_bytes(), file_name=result.feed_csv.name,
                               mime="text/csv", key="review_export_feed_csv")
            c2.download_button("Product feed (JSON)", result.feed_json.read_bytes(), file_name=result.feed_json.name,
                               mime="application/json", key="review_export_feed_json")


def audit_view(user: UserInfo) -> None:
    rows = [{"when": e.at.strftime("%Y-%m-%d %H:%M:%S"), "who": e.actor, "what": e.action,
             "on": f"{e.entity} {e.entity_id}".strip(), "before": e.before, "after": e.after}
            for e in audit_trail(user.username, limit=300)]
    if not rows:
        st.caption("Nothing recorded yet.")
    else:
        st.dataframe(rows, width="stretch", hide_index=True)


def submissions_view(user: UserInfo) -> None:
    """A marketer's own images: where each one stands and what the reviewers said."""
    items = list_queue(user.username, QueueFilter(status=None, gate="all"))
    if not items:
        st.info("You have no generated images yet: make some on the Generate page; they appear here with their review "
                "status and the reviewers' feedback.")
        return
    rows = [{"image": i.generation_id, "batch": i.batch, "status": i.review_status.replace("_", " "),
             "gate": i.gate.state, "feedback": i.last_decision.comment if i.last_decision else "",
             "by": i.last_decision.reviewer if i.last_decision else "", "replaces": i.replaces_id}
            for i in items]
    st.dataframe(rows, width="stretch", hide_index=True)


def users_view(user: UserInfo) -> None:
    users = list_users(user.username)
    st.dataframe([{"user": u.username, "name": u.display_name, "role": u.role, "sign-in": u.source,
                   "active": u.active} for u in users], width="stretch", hide_index=True)
    st.markdown("**Add a user**")
    c1, c2, c3 = st.columns(3)
    name = c1.text_input("Username or email", key="review_user_name")
    role = c2.selectbox("Role", ROLES, key="review_user_role")
    password = c3.text_input("Password (empty: sign-in through OIDC only)", type="password", key="review_user_pw")
    if st.button("Add user", key="review_user_add"):
        try:
            added = add_user(user.username, name, role, password=password or None)
        except AuthError as exc:
            st.error(plain(exc))
        else:
            flash("success", f"Added {plain(added.username)} ({added.role}).")
            st.rerun()
    st.markdown("**Change a user**")
    c1, c2, c3 = st.columns(3)
    who = c1.selectbox("User", [u.username for u in users], key="review_user_pick")
    new_role = c2.selectbox("New role", ROLES, key="review_user_new_role")
    if c3.button("Set role", key="review_user_set_role"):
        try:
            set_role(user.username, who, new_role)
        except AuthError as exc:
            st.error(plain(exc))
        else:
            flash("success", f"{plain(who)} is now {new_role}.")
            st.rerun()
    if c3.button("Deactivate", key="review_user_deactivate"):
        try:
            set_active(user.username, who, False)
        except AuthError as exc:
            st.error(plain(exc))
        else:
            flash("success", f"{plain(who)} deactivated.")
            st.rerun()
