"""Fixture builders for review tests and demos: users of each role and generated-image rows with real PNG files,
made without running a model (the rows look like what ``workbench.generate`` records).

    users = make_users()                          # {"marketer": "mia", "analyst": "ari", "approver": "ana", ...}
    mia = as_role("marketer")                     # the same name as an allowed actor, without a user row
    gen_id = make_generation(brand="northwind", batch="ss26", clip_score=0.31, created_by="mia")
"""
from __future__ import annotations

import re
from typing import Any

from PIL import Image

from workbench.db import session_scope
from workbench import auth
from workbench.settings import get_settings

USERNAMES = {"marketer": "mia", "analyst": "ari", "approver": "ana", "admin": "adam"}
PASSWORD = "correct horse battery"


def make_users(rounds: int = 4) -> dict[str, str]:
    """One user per role (password ``PASSWORD``), hashed with few bcrypt rounds so tests stay fast."""
    old, auth.BCRYPT_ROUNDS = auth.BCRYPT_ROUNDS, rounds
    try:
        ops = auth.system_actor("test")
        for role, name in USERNAMES.items():
            auth.add_user(ops, name, role, password=PASSWORD, display_name=name.title())
    finally:
        auth.BCRYPT_ROUNDS = old
    return dict(USERNAMES)


def as_role(role: str, name: str | None = None) -> auth.UserInfo:
    """A system actor with ``role``, named like that role's test user (``as_role("marketer").username == "mia"``):
    for tests of other capabilities that need an allowed actor without user rows. The roles themselves are checked
    by the role x action matrix in tests/test_review_auth.py."""
    return auth.system_actor(name or USERNAMES[role], role=role)


def make_generation(*, batch: str = "ss26", brand: str = "northwind", prompt: str = "nwo_style navy tee, studio",
                    seed: int = 7, clip_score: float | None = 0.31, gate_threshold: float | None = 0.25,
                    created_by: str = "mia", prompt_id: int | None = None, kept: bool = True,
                    color: tuple[int, int, int] = (31, 42, 68), **overrides: Any) -> int:
    """Insert one generations row (pending review) and write its 32x32 PNG under the workspace; returns the id."""
    from workbench.generate.tables import Generation

    folder = get_settings().path("generations", batch)
    folder.mkdir(parents=True, exist_ok=True)
    params = {"seed": seed, "base_seed": seed, "prompt": prompt, "brand": brand}
    if gate_threshold is not None:
        params["gate_threshold"] = gate_threshold
    values: dict[str, Any] = dict(
        batch=batch, prompt_id=prompt_id, prompt=prompt, negative_prompt="blurry", brand=brand, model="tiny-sdxl",
        vae="", loras=[{"name": "northwind-apparel-v1", "path": "/loras/nw", "scale": 0.8}], quantization="int8",
        scheduler="euler", dtype="fp32", seed=seed, steps=4, guidance=5.0, width=32, height=32, params=params,
        image_path="", clip_score=clip_score, attempt=1, kept=kept, demo_model=True,
        review_status="pending" if kept else "not_kept", created_by=created_by)
    values.update(overrides)
    with session_scope() as s:
        row = Generation(**values)
        s.add(row)
        s.flush()
        path = folder / f"{row.id:05d}_{seed}.png"
        Image.new("RGB", (32, 32), color).save(path)
        row.image_path = str(path)
        return row.id


def page_as(path: str, user: str = "mia", timeout: float = 60):
    """An AppTest of a page with ``user`` signed in (not run yet). Call ``make_users()`` first."""
    from streamlit.testing.v1 import AppTest

    from workbench.ui.state import StateKeys

    at = AppTest.from_file(path, default_timeout=timeout)
    at.session_state[StateKeys.USER] = user
    return at


def lose_role_in_fragment(monkeypatch, user: str, new_role: str) -> None:
    """Change ``user``'s role while their page stays drawn, as a click inside an ``st.fragment`` meets it: the
    fragment's rerun skips the page's ``require_login``. AppTest reruns the whole page, so the page's guard is made
    to keep the role it read before; the library's own check (``require``) sees ``new_role``."""
    from workbench.ui import auth as ui_auth

    stale = auth.get_user(user)
    monkeypatch.setattr(ui_auth, "get_user", lambda name: stale if name == user else auth.get_user(name))
    auth.set_role(auth.system_actor(), user, new_role)


def page_text(at) -> str:
    """Every message an AppTest run shows (markdown, info, warning, error, success, captions), one per line, as the
    reader sees it: the backslash escapes that ``workbench.ui.common.plain`` puts before user text are removed."""
    shown = ([m.value for m in at.markdown] + [e.value for e in at.info] + [e.value for e in at.warning]
             + [e.value for e in at.error] + [e.value for e in at.success] + [c.value for c in at.caption])
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", "\n".join(shown))
