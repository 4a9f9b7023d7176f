"""Starting Python processes from a process whose ``__main__`` is a script: a spawned or forkserver child first
re-runs its parent's main script. Under Streamlit (and AppTest) that is the page being shown, which would run bare in
the child: the importer's worker pool never started (an import of 64+ photos from the Datasets page hung), and a
forked job process died running the page.

    with plain_main():
        process.start()
"""
from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator


@contextlib.contextmanager
def plain_main() -> Iterator[None]:
    """Hide a script ``__main__`` while child processes start (they need only the library). A ``python -m`` main
    (it has a ``__spec__``) is left as it is: children import it by name, and it is guarded."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
