"""Widgets of the Review page: filters, the one-image view with keyboard shortcuts (A approve, X reject, E request
changes, J/K next/previous) and a short undo, bulk mode (one form: ticking images does not rerun the page), export
(enabled only when it can run, with the count it will write), a marketer's submissions (thumbnails, full feedback),
and user admin. The Audit tab is ``workbench.ui.audit``.

Every action calls a ``workbench.review`` function with the signed-in username; the library checks the role again.
Widget keys start with ``review_``.
"""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import streamlit as st

from workbench.auth import ROLES, AuthError, UserInfo, add_user, list_users, set_active, set_role
from workbench.review import presence
from workbench.review import (DECISIONS, UNDO_SECONDS, QueueFilter, QueueItem, ReviewError, bulk_decide, decide,
                              export_approved, export_preview, filter_options, get_policy, history, list_queue,
                              request_changes, undo_decision)
from workbench.ui.common import code_span, plain

POS = "review_pos"  # index of the image shown (page-private state, not a widget)
FLASH = "review_flash"  # (kind, message) shown once after a rerun
UNDO = "review_last_decisions"  # {"items": [(image id, decision number)], "at": time.time(), "what": …}
SHOWN = "review_shown"  # (image id, time.monotonic() of the presence written for it): the image this session shows
PRESENCE_REFRESH = 30  # seconds between two presence writes for the same image (each rerun would be one otherwise)
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


def friendly(exc: Exception) -> str:
    """A library error for people: the argument name the library starts some messages with ("comment: …") goes."""
    text = str(exc)
    for prefix in ("comment: ", "brand / batch: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
            text = text[:1].upper() + text[1:]
    return plain(text)


def remember_undo(items: list[tuple[int, int]], what: str) -> None:
    st.session_state[UNDO] = {"items": items, "at": time.time(), "what": what} if items else None


def undo_bar(user: UserInfo) -> None:
    """An Undo button for the decision(s) just made, while the library still allows it (``UNDO_SECONDS``) and until
    the next decision."""
    last = st.session_state.get(UNDO)
    if not last:
        return
    left = UNDO_SECONDS - (time.time() - last["at"])
    if left <= 0:
        st.session_state[UNDO] = None
        return
    c1, c2 = st.columns([1, 5])
    c1.button("↩️ Undo", key="review_undo", on_click=_undo, args=(user.username,),
              help=f"Take back what you just did ({plain(last['what'])}).")
    c2.caption(f"You can undo this for about {left:.0f} more seconds.")


def _undo(username: str) -> None:
    last = st.session_state.pop(UNDO, None) or {"items": []}
    done, problems = [], []
    for gid, seq in last["items"]:
        try:
            undo_decision(username, gid, seq)
            done.append(gid)
        except (AuthError, ReviewError) as exc:
            problems.append(friendly(exc))
    msg = (f"Undone: image{'s' if len(done) > 1 else ''} {', '.join(map(str, done))} back as before." if done else "")
    flash("warning" if problems else "success", "  \n".join([msg, *problems]).strip())


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
    from workbench.generate.pipeline import SCHEDULERS

    scheduler = SCHEDULERS[item.scheduler][2] if item.scheduler in SCHEDULERS else item.scheduler
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
    loras = ", ".join(f"{plain(l.get('name') or Path(str(l.get('path', ''))).name)} × {plain(l.get('scale'))}"
                      for l in item.loras) or "none"
    st.markdown(
        f"- **Model** {code_span(Path(item.model).name or item.model)}{' 🧪 demo model' if item.demo_model else ''}\n"
        f"- **LoRAs** {loras}\n- **Quantization** {plain(item.quantization)} · **Scheduler** {plain(scheduler)}\n"
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


def product_lines(links: list) -> list[str]:
    """One markdown line per product in an image: name, SKU, price, why it is listed, a link to its page."""
    lines = []
    for p in links:
        kind = "generated for" if p.source == "generated_for" else f"similar ({(p.score or 0.0):.2f})"
        price = f" · {p.price:f} {plain(p.currency)}".rstrip() if p.price is not None else ""
        url = product_url(p.url)
        link = f" · [product page]({url})" if url else ""
        lines.append(f"- **{plain(p.name or p.sku)}** · SKU {code_span(p.sku)}{price} · {kind}{link}")
    return lines


def products_panel(links: list) -> None:
    """Products in this image (shop-the-look; ``products_of_generation`` rows): the SKU(s) it was generated for and
    the similar catalog products retrieval found, each with its price and a link to its product page."""
    if links:
        st.markdown("**Products in this image**  \n" + "\n".join(product_lines(links)))


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
        what = "undone" if d.decision == "withdrawn" else d.decision.replace('_', ' ')
        st.markdown(f"#{d.seq} **{what}** by {plain(d.reviewer)} · "
                    f"{d.created_at:%Y-%m-%d %H:%M}"
                    f"{tags}{extra}" + (f"  \n> {plain(d.comment)}" if d.comment else ""))


def decision_controls(user: UserInfo, item: QueueItem) -> None:
    gid = item.generation_id
    reason = get_policy(item.brand).reason_required
    st.text_area("Comment" + (" (say why when you reject)" if reason else ""), key=f"review_comment_{gid}",
                 placeholder="What is good, what should change (required for request changes"
                             + (" and reject)" if reason else ")"))
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
        # what makes a decision made meanwhile by someone else a conflict instead of an overwrite. The key names the
        # image: a click from a browser still showing another image (the page moved on meanwhile) matches no button
        # and decides nothing, instead of deciding the image the server shows now, unseen.
        slot.button(label, key=f"review_{action}_{gid}", shortcut=key, width="stretch", on_click=_apply,
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
            d, follow_ups = fb.decision, bool(fb.prompt or fb.job_id)
        else:
            d = decide(username, gid, action, comment=comment, tags=tags, expected_seq=seen,
                       override_gate=bool(state.get(f"review_override_{gid}")))
            msg, follow_ups = f"Image {gid} {plain(d.decision.replace('_', ' '))}.", False
    except (AuthError, ReviewError) as exc:  # DecisionConflict included: its message names the current decision
        flash("error", friendly(exc))
        return
    remember_undo([] if follow_ups else [(gid, d.seq)], msg)  # a new prompt version or a queued job stay: no undo
    flash("success", msg)


def free_position(items: list[QueueItem], pos: int, busy: dict[int, list[str]]) -> int:
    """Where an approver lands: ``pos`` unless someone else has that image open, then the first image from there on
    (wrapping round) that nobody else has open; ``pos`` when every image is open somewhere."""
    order = [*range(pos, len(items)), *range(pos)]
    return next((j for j in order if items[j].generation_id not in busy), pos)


def single_view(user: UserInfo, items: list[QueueItem]) -> None:
    from workbench.generate.video import video_for
    from workbench.products.links import products_of_generation

    pos = min(st.session_state.get(POS, 0), len(items) - 1)
    # Approvers working one queue are steered apart: each lands on an image no other approver has open.
    deciding = user.can("decide")
    busy = presence.others_viewing(user, [i.generation_id for i in items]) if deciding else {}
    shown, written = st.session_state.get(SHOWN, (None, 0.0))
    if items[pos].generation_id != shown:  # landing on a new image (the first, or the last one was decided)
        pos = free_position(items, pos, busy)
    nav1, nav2, nav3 = st.columns([1, 4, 1])
    if nav1.button("◀ Previous", key="review_prev", shortcut="K", disabled=pos == 0):
        pos -= 1  # stepping is the approver's choice: an image someone else has open is shown, with a warning
    if nav3.button("Next ▶", key="review_next", shortcut="J", disabled=pos >= len(items) - 1):
        pos += 1
    st.session_state[POS] = pos
    item = items[pos]
    if deciding and (item.generation_id != shown or time.monotonic() - written > PRESENCE_REFRESH):
        presence.touch(user, item.generation_id)
        written = time.monotonic()
    st.session_state[SHOWN] = (item.generation_id, written)
    products = products_of_generation(item.generation_id)  # read once: the reference photos and the product list
    nav2.caption(f"Image {pos + 1} of {len(items)} · shortcuts: A approve, X reject, E request changes, J/K next/prev")
    if item.generation_id in busy:
        names = ", ".join(plain(n) for n in busy[item.generation_id])
        nav2.warning(f"👀 {names} also {'has' if len(busy[item.generation_id]) == 1 else 'have'} this image open: "
                     "if you both decide it, the first decision counts and the other is shown it.")
    left, right = st.columns([3, 2])
    with left:
        if Path(item.image_path).is_file():
            st.image(item.image_path, width="stretch")
        else:
            st.error(f"The file of image {item.generation_id} is missing on the server: ask an admin to restore it.")
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
    """Every image the Queue's filters show, with its products, in one form: ticking images does not rerun the page;
    the decision is applied to the ticked ones when the form is sent."""
    from workbench.products.links import products_of_generation

    st.caption("Tick images, then decide on all of them at once. Each is decided on its own: one that someone else "
               "decided meanwhile is reported, the others go through.")
    with st.form("review_bulk_form", border=False):
        cols = st.columns(4)
        for i, item in enumerate(items):
            with cols[i % 4]:
                if Path(item.image_path).is_file():
                    st.image(item.image_path, width="stretch")
                st.checkbox(f"Image {item.generation_id} · gate {item.gate.state}",
                            key=f"review_bulk_pick_{item.generation_id}")
                links = products_of_generation(item.generation_id)
                if links:
                    st.markdown("\n".join(product_lines(links)))
        st.checkbox(f"All {len(items)} images shown", key="review_bulk_all")
        c1, c2 = st.columns([1, 3])
        c1.selectbox("Decision", list(DECISIONS), format_func=lambda d: d.replace("_", " "),
                     key="review_bulk_decision")
        c2.text_input("Comment (say why when you reject or request changes)", key="review_bulk_comment")
        seen = {i.generation_id: i.review_seq for i in items}
        st.form_submit_button("Apply to the selected images", key="review_bulk_apply", type="primary",
                              on_click=_apply_bulk, args=(user.username, seen))


def _apply_bulk(username: str, seen: dict[int, int]) -> None:
    state = st.session_state
    every = bool(state.get("review_bulk_all"))
    chosen = {gid: seq for gid, seq in seen.items() if every or state.get(f"review_bulk_pick_{gid}")}
    if not chosen:
        flash("warning", "Tick at least one image.")
        return
    try:
        result = bulk_decide(username, chosen, state.get("review_bulk_decision", "approve"),
                             comment=state.get("review_bulk_comment", ""))
    except (AuthError, ReviewError) as exc:
        flash("error", friendly(exc))
        return
    for gid in chosen:
        state[f"review_bulk_pick_{gid}"] = False
    state["review_bulk_all"] = False
    remember_undo([(d.generation_id, d.seq) for d in result.decided],
                  f"{len(result.decided)} image(s) {result.decided[0].decision.replace('_', ' ')}"
                  if result.decided else "")
    problems = "  \n".join(friendly(e) for e in result.conflicts + result.errors)
    flash("warning" if problems else "success", plain(result.summary) + (f"  \n{problems}" if problems else ""))


def export_view(user: UserInfo) -> None:
    """Pick a brand and/or campaign; the button says how many approved images it will write and stays disabled until
    an export can run (a brand or batch named, approved images there, their files present)."""
    opts = filter_options(user.username)
    c1, c2 = st.columns(2)
    brand = c1.selectbox("Brand", [ANY, *opts["brand"]], key="review_export_brand")
    batch = c2.selectbox("Campaign (batch)", [ANY, *opts["batch"]], key="review_export_batch")
    brand, batch = (None if brand == ANY else brand), (None if batch == ANY else batch)
    preview = export_preview(user.username, brand=brand, batch=batch)
    n = preview.count
    if preview.ready:
        st.caption(f"{n} approved image{'' if n == 1 else 's'} will be written, with their metadata and a product "
                   "feed.")
    else:
        st.caption(plain(preview.reason[:1].upper() + preview.reason[1:]) + ".")
    label = f"Export {n} approved image{'' if n == 1 else 's'}" if preview.ready else "Export approved images"
    if st.button(label, key="review_export_go", type="primary", disabled=not preview.ready):
        try:
            result = export_approved(user.username, brand=brand, batch=batch)
        except (AuthError, ReviewError) as exc:
            st.error(friendly(exc))
            return
        st.success(f"{result.count} image{'' if result.count == 1 else 's'} exported to {code_span(result.path.name)}")
        st.download_button("Download the zip", result.path.read_bytes(), file_name=result.path.name,
                           mime="application/zip", key="review_export_download")
        if result.feed_csv and result.feed_json:
            st.caption(f"Product feed: {len(result.feed or [])} image × product rows.")
            c1, c2 = st.columns(2)
            c1.download_button("Product feed (CSV)", result.feed_csv.read_bytes(), file_name=result.feed_csv.name,
                               mime="text/csv", key="review_export_feed_csv")
            c2.download_button("Product feed (JSON)", result.feed_json.read_bytes(), file_name=result.feed_json.name,
                               mime="application/json", key="review_export_feed_json")


def submissions_view(user: UserInfo) -> None:
    """A marketer's own images, newest first: a thumbnail, where each one stands and the reviewers' full feedback."""
    items = list_queue(user.username, QueueFilter(status=None, gate="all"))
    if not items:
        st.info("You have no generated images yet: make some on the Generate page; they appear here with their review "
                "status and the reviewers' feedback.")
        return
    counts = {s: sum(i.review_status == s for i in items) for s in STATUS_LABELS if s}
    st.caption(" · ".join(f"{n} {STATUS_LABELS[s]}" for s, n in counts.items() if n))
    shown = items[::-1][:60]
    for start in range(0, len(shown), 3):
        cols = st.columns(3)
        for col, i in zip(cols, shown[start:start + 3]):
            with col.container(border=True):
                if Path(i.image_path).is_file():
                    st.image(i.image_path, width="stretch")
                icon = {"approved": "✅", "rejected": "❌", "changes_requested": "✏️"}.get(i.review_status, "⏳")
                st.markdown(f"**Image {i.generation_id}** · {icon} {i.review_status.replace('_', ' ')} · "
                            f"gate {i.gate.state}")
                st.caption(f"“{plain(i.prompt)}” · batch {plain(i.batch)}"
                           + (f" · replaces image {i.replaces_id}" if i.replaces_id else ""))
                d = i.last_decision
                if d is not None:
                    said = f"  \n> {plain(d.comment)}" if d.comment else " (no comment)"
                    st.markdown(f"**{plain(d.reviewer)}** · {d.created_at:%Y-%m-%d %H:%M}{said}")
    if len(items) > len(shown):
        st.caption(f"The newest {len(shown)} of {len(items)} images.")


POLICY_WORDS = {"flag": "flag it in the queue", "hold": "hold it back", "required": "required",
                "optional": "optional"}


def policies_view(user: UserInfo) -> None:
    """A brand's review policy (admins: ``settings``): what a failed CLIP or logo check does, and whether a reject
    needs a reason."""
    from workbench.review import set_policy
    from workbench.review.queue import POLICY_ACTIONS, REASON_RULES

    brands = filter_options(user.username)["brand"]
    if not brands:
        st.caption("Review policies are per brand: they appear once a brand has images.")
        return
    c1, c2, c3, c4 = st.columns(4)
    brand = c1.selectbox("Brand", brands, key="review_policy_brand")
    now = get_policy(brand)
    clip = c2.selectbox("When the CLIP check fails", POLICY_ACTIONS, index=POLICY_ACTIONS.index(now.on_clip_fail),
                        format_func=POLICY_WORDS.get, key=f"review_policy_clip_{brand}")
    ocr = c3.selectbox("When the logo check fails", POLICY_ACTIONS, index=POLICY_ACTIONS.index(now.on_ocr_fail),
                       format_func=POLICY_WORDS.get, key=f"review_policy_ocr_{brand}")
    reason = c4.selectbox("Reason to reject", REASON_RULES, index=REASON_RULES.index(now.reject_reason),
                          format_func=POLICY_WORDS.get, key=f"review_policy_reason_{brand}")
    if st.button("Save the policy", key="review_policy_save",
                 disabled=(clip, ocr, reason) == (now.on_clip_fail, now.on_ocr_fail, now.reject_reason)):
        try:
            set_policy(user.username, brand, on_clip_fail=clip, on_ocr_fail=ocr, reject_reason=reason)
        except (AuthError, ReviewError) as exc:
            st.error(friendly(exc))
        else:
            flash("success", f"Review policy of {plain(brand)} saved.")
            st.rerun()


def users_view(user: UserInfo) -> None:
    users = list_users(user.username)
    st.dataframe([{"user": u.username, "name": u.display_name, "role": u.role, "sign-in": u.source,
                   "active": u.active} for u in users], width="stretch", hide_index=True)
    st.markdown("**Add a user**")
    added_n = st.session_state.setdefault("review_user_added", 0)  # a new form after each add: no password left
    with st.form(f"review_user_add_form_{added_n}", border=False):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Username or email", key=f"review_user_name_{added_n}")
        role = c2.selectbox("Role", ROLES, index=ROLES.index("marketer"), key=f"review_user_role_{added_n}")
        password = c3.text_input("Password (empty: sign-in through OIDC only)", type="password",
                                 key=f"review_user_pw_{added_n}")
        add = st.form_submit_button("Add user")
    if add:
        try:
            added = add_user(user.username, name, role, password=password or None)
        except AuthError as exc:
            st.error(plain(exc))
        else:
            st.session_state["review_user_added"] = added_n + 1
            flash("success", f"Added {plain(added.username)} ({added.role}).")
            st.rerun()
    st.markdown("**Change a user**")
    c1, c2, c3 = st.columns(3)
    # Someone else first, and their own role as the default: changing nothing is what a stray click does.
    names = sorted((u.username for u in users), key=lambda n: n == user.username)
    roles = {u.username: u.role for u in users}
    who = c1.selectbox("User", names, key="review_user_pick")
    new_role = c2.selectbox("New role", ROLES, index=ROLES.index(roles[who]) if who in roles else 0,
                            key=f"review_user_new_role_{who}")
    if c3.button("Set role", key="review_user_set_role", disabled=who not in roles or new_role == roles[who]):
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
