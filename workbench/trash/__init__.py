"""The trash: deleting a dataset, a training run or a generation batch puts it here for ``trash_undo_hours``
(default 24 h), hidden from every listing and restorable; then a purge removes it for good. See ``store``.

    from workbench import trash
    trash.list_trash()
    trash.restore("alice", entry_id)
    trash.purge("admin")          # entries past their window
"""
from workbench.trash.store import (KINDS, TrashError, TrashInfo, deleted_keys, get_entry, hidden_ids, hidden_keys,
                                   in_trash, list_trash, purge, purge_due, put, restore, trash_root, undo_window,
                                   window_text)

__all__ = ["KINDS", "TrashError", "TrashInfo", "deleted_keys", "get_entry", "hidden_ids", "hidden_keys", "in_trash",
           "list_trash", "purge", "purge_due", "put", "restore", "trash_root", "undo_window", "window_text"]
