"""The prompt library: saved batches keep their order; refining makes linked versions with who and why, audited."""
import pytest
from sqlalchemy import select

from workbench import db
from workbench.prompts import (BatchSpec, PromptError, batch_prompts, expand_batch, get_batch, get_prompt,
                               list_batches, load_library, prompt_history, refine, save_batch, save_prompt)
from workbench.auth import system_actor

# Marketers who write prompts (system actors: no user rows needed; tests/test_review_auth.py checks the roles).
ANA, BEN, CY = (system_actor(name, role="marketer") for name in ("ana", "ben", "cy"))


def _saved(name="SS26 tees"):
    batch = expand_batch(load_library(), BatchSpec("t-shirt", slots={"color": ["navy", "olive", "black"]},
                                                   brand="northwind"))
    return batch, save_batch(ANA, batch, name)


def test_saved_batch_keeps_prompts_in_order_with_their_checks(workspace):
    batch, saved = _saved()
    assert (saved.size, saved.template, saved.brand, saved.created_by) == (3, "t-shirt", "northwind", "ana")
    stored = batch_prompts(saved.id)
    assert [p.text for p in stored] == [p.text for p in batch.prompts]
    assert [p.id for p in stored] == get_batch(saved.id).prompt_ids == saved.prompt_ids
    first = stored[0]
    assert (first.version, first.parent_id, first.root_id, first.status) == (1, None, first.id, "active")
    assert first.slot_values["color"] == "navy" and first.scene == "studio-white"
    assert first.token_count == batch.prompts[0].tokens.count and first.params["width"] == 1024
    assert [b.name for b in list_batches()] == ["SS26 tees"]


def test_refine_links_versions_to_parents_and_audits(workspace):
    _, saved = _saved()
    v1 = get_prompt(saved.prompt_ids[0])
    v2 = refine(BEN, v1.id, v1.text.replace("navy", "deep navy"), reason="colour read too bright")
    v3 = refine(CY, v2.id, v2.text + ", embroidered logo", reason="approver: show the logo")
    assert (v2.version, v2.parent_id, v2.root_id) == (2, v1.id, v1.id)
    assert (v3.version, v3.parent_id, v3.root_id) == (3, v2.id, v1.id)
    assert (v3.created_by, v3.reason, v3.template, v3.slot_values) == ("cy", "approver: show the logo", "t-shirt",
                                                                        v1.slot_values)
    history = prompt_history(v1.id)
    assert [(p.version, p.status) for p in history] == [(1, "superseded"), (2, "superseded"), (3, "active")]
    assert prompt_history(v3.id) == history
    assert batch_prompts(saved.id)[0].id == v1.id  # the batch still holds the text its images came from
    with db.session_scope() as s:
        rows = s.scalars(select(db.AuditLog).where(db.AuditLog.action == "prompt.refine")
                         .order_by(db.AuditLog.id)).all()
        assert [(r.actor, r.entity_id, r.before["version"], r.after["reason"]) for r in rows] == [
            ("ben", str(v2.id), 1, "colour read too bright"), ("cy", str(v3.id), 2, "approver: show the logo")]
        assert s.scalars(select(db.AuditLog.action)).all().count("prompt_batch.save") == 1


def test_refined_text_is_checked_against_the_brand(workspace):
    _, saved = _saved()
    v2 = refine(BEN, saved.prompt_ids[0], "cheap navy tee", reason="shorter")
    assert set(v2.issues) == {"forbidden term 'cheap'", "missing trigger token 'nwo_style'",
                              "missing required phrase 'photograph'"}


def test_refine_refuses_bad_input(workspace):
    _, saved = _saved()
    pid = saved.prompt_ids[0]
    with pytest.raises(PromptError, match="reason"):
        refine(BEN, pid, "nwo_style tee photograph", reason=" ")
    with pytest.raises(PromptError, match="nothing to refine"):
        refine(BEN, pid, get_prompt(pid).text, reason="again")
    with pytest.raises(PromptError, match="prompt 999 does not exist"):
        refine(BEN, 999, "x", reason="y")
    assert len(prompt_history(pid)) == 1


def test_single_hand_written_prompt_and_empty_batch(workspace):
    p = save_prompt(ANA, "nwo_style  navy tee,\nphotograph", brand="northwind", reason="one-off")
    assert (p.text, p.version, p.root_id, p.issues) == ("nwo_style navy tee, photograph", 1, p.id, [])
    empty = expand_batch(load_library(), BatchSpec("t-shirt"))
    empty.prompts.clear()
    with pytest.raises(PromptError, match="empty"):
        save_batch(ANA, empty, "nothing")
    with pytest.raises(PromptError, match="name"):
        save_batch(ANA, expand_batch(load_library(), BatchSpec("t-shirt")), "  ")
