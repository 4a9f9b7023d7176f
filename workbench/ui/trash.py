"""Delete with confirmation, Undo, and the "Recently deleted" list: the widgets the Datasets, Training and Generate
pages share over ``workbench.trash``. Keys start with the page's prefix (``datasets_``, ``training_``,
``generate_``).

    trash_ui.undo_banner("datasets")                        # after a delete: "… deleted. [Undo]"
    trash_ui.delete_control("datasets", "dataset", ds.name, ds.name, lambda: store.delete_dataset(user, ds.id), ...)
    trash_ui.recently_deleted("datasets", ["dataset"], user)
"""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from workbench import trash
from workbench.auth import AuthError
from workbench.db import utcnow
from workbench.ui.common import plain


def _undo_key(prefix: str) -> str:
    return f"{prefix}_trash_undo"


def _hours_left(e: trash.TrashInfo) -> str:
    left = e.seconds_left(utcnow())
    return f"{left / 3600:.1f} h" if left >= 3600 else f"{max(1, int(left // 60))} min"


def delete_control(prefix: str, kind: str, key: str, label: str, delete: Callable[[], trash.TrashInfo],
                   warning: str = "", on_done: Callable[[], None] | None = None, confirm_word: str | None = None
                   ) -> None:
    """A "Delete this <noun>" popover: what goes, how long it can be restored, and a Delete button that stays disabled
    until the user types ``confirm_word`` (default: the name). ``delete()`` calls the library (which checks the role
    again and refuses a running job with a message shown here)."""
    noun = trash.KINDS[kind].noun
    word = confirm_word if confirm_word is not None else label
    with st.popover(f"Delete this {noun}", icon=":material/delete:"):  # a popover: it may sit in an expander
        st.markdown(f"**{plain(label)}** goes to the trash" + (f" ({plain(warning)})" if warning else "")
                    + f": hidden everywhere at once, restorable for {trash.window_text()}, then removed for good.")
        typed = st.text_input(f"Type {plain(word)} to confirm", key=f"{prefix}_delete_confirm_{kind}_{key}",
                              help="So that a slip of the mouse deletes nothing.")
        if st.button(f"Delete {noun}", key=f"{prefix}_delete_{kind}_{key}", type="primary",
                     disabled=typed.strip() != word):
            try:
                info = delete()
            except (ValueError, RuntimeError, AuthError) as exc:  # the library's refusals name their reason
                st.error(plain(exc))
                return
            st.session_state[_undo_key(prefix)] = info.id
            if on_done is not None:
                on_done()
            st.rerun()  # the whole page, from a fragment too: the thing leaves every list on it


def undo_banner(prefix: str, user: str, on_done: Callable[[], None] | None = None) -> None:
    """After a delete on this page: what was deleted, with an Undo button (the trash entry's restore)."""
    entry_id = st.session_state.get(_undo_key(prefix))
    if entry_id is None:
        return
    try:
        e = trash.get_entry(entry_id)
    except trash.TrashError:
        st.session_state.pop(_undo_key(prefix), None)
        return
    if e.status != "deleted":
        st.session_state.pop(_undo_key(prefix), None)
        return
    text, button = st.columns([5, 1])
    text.success(f"Deleted {e.noun} **{plain(e.label)}**. It can be restored for {_hours_left(e)} more.")
    if button.button("Undo", key=f"{prefix}_trash_undo_btn", type="primary"):
        _restore(prefix, e, user, on_done)


def _restore(prefix: str, e: trash.TrashInfo, user: str, on_done: Callable[[], None] | None) -> None:
    try:
        trash.restore(user, e.id)
    except (trash.TrashError, AuthError) as exc:
        st.error(plain(exc))
        return
    st.session_state.pop(_undo_key(prefix), None)
    st.session_state[f"{prefix}_trash_restored"] = f"{e.noun} {e.label}"
    if on_done is not None:
        on_done()
    st.rerun()


def recently_deleted(prefix: str, kinds: list[str], user: str, on_done: Callable[[], None] | None = None) -> None:
    """The trash's entries of ``kinds``, each with who deleted it, the time left and a Restore button."""
    restored = st.session_state.pop(f"{prefix}_trash_restored", None)
    if restored:
        st.success(f"Restored {plain(restored)}.")
    entries = [e for e in trash.list_trash() if e.kind in kinds]
    if not entries:
        return
    with st.expander(f"Recently deleted ({len(entries)})"):
        st.caption(f"Deleted things wait {trash.window_text()} here; then they are removed for good.")
        for e in entries:
            text, button = st.columns([5, 1])
            text.markdown(f"{e.noun} **{plain(e.label)}** · deleted by {plain(e.deleted_by)} "
                          f"{e.deleted_at:%Y-%m-%d %H:%M} UTC · {_hours_left(e)} left")
            if button.button("Restore", key=f"{prefix}_trash_restore_{e.id}"):
                _restore(prefix, e, user, on_done)
