"""Markdown injection: user text (dataset names and captions, prompts, negative prompts, batch, brand and LoRA names,
run titles, review comments, template texts, evaluation and image-set names, product names) is shown literally on
every page, never as a link, an image (a beacon the reviewer's browser would fetch), HTML, an icon or LaTeX.

One walk: seed hostile text into every field once, render each page as the role that sees it, then read every
markdown-rendering element AppTest exposes (markdown, captions, alerts, toasts, headings; labels and help of widgets,
expanders and tabs) and require that no hostile construct is left unescaped."""
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hostile.text import HOSTILE_MARKDOWN
from workbench import db, jobs
from workbench.data.importer import import_dataset
from helpers.data import image_bytes, write
from workbench import auth
from workbench.review import decide
from helpers.review import as_role, make_generation, make_users
from workbench.ui.state import StateKeys

PAGES = Path(__file__).resolve().parents[1] / "pages"
EVIL = "\n".join(HOSTILE_MARKDOWN)  # one text holding every attack
SHORT = HOSTILE_MARKDOWN[0] + " " + HOSTILE_MARKDOWN[5]  # for fields with a length limit
# After removing backslash escapes (\x), none of these may remain: each means markdown/HTML the browser would act on.
ACTIVE = re.compile(r"evil\.example|!\[|\]\(|\]\[|<img|<a |<script|<http|:material/|:red\[|\$\\href|&lt;|&#60;")


def _escaped_removed(text: str) -> str:
    return re.sub(r"\\[!-/:-@\[-`{-~]", "\x00", text)


def _rendered(at: AppTest) -> list[tuple[str, str]]:
    """(element type, text) for every string that Streamlit renders as markdown in this run."""
    out = []
    for el in [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success, *at.toast, *at.title,
               *at.header, *at.subheader]:
        out.append((el.type, el.value))
    for name in ("button", "checkbox", "selectbox", "multiselect", "text_input", "text_area", "slider", "radio",
                 "number_input", "toggle", "expander", "tabs", "metric"):
        for el in getattr(at, name):
            for attr in ("label", "help"):
                value = getattr(el.proto, attr, "") if hasattr(el, "proto") else getattr(el, attr, "")
                if value:
                    out.append((f"{name}.{attr}", value))
    for el in at.radio:  # radio options render markdown (selectbox/multiselect options do not)
        out.extend(("radio.option", o) for o in el.options)
    return out


@pytest.fixture
def hostile(workspace, tmp_path, monkeypatch):
    """A workspace where every user-writable field holds hostile markdown."""
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    monkeypatch.setattr(jobs, "ensure_worker", lambda settings=None: False)
    make_users()
    folder = tmp_path / "evil-folder"
    write(folder / "a.png", image_bytes((64, 64)))
    (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "text": EVIL}) + "\n")
    import_dataset(as_role("marketer"), folder, name=SHORT)
    gid = make_generation(prompt=EVIL, negative_prompt=EVIL, batch=SHORT, brand=SHORT,
                          loras=[{"name": SHORT, "path": "/loras/x", "scale": 0.8}])
    decide("ana", gid, "reject", comment=EVIL)
    jobs.enqueue("train_lora", {"config": {}}, title=SHORT, created_by="mia")
    from workbench.train.tables import Lora

    with db.session_scope() as s:
        s.add(Lora(name=SHORT, path=str(tmp_path / "lora"), method="text_to_image_lora", base_model="tiny", rank=4,
                   lora_alpha=4.0, trigger=SHORT))
    from workbench.evaluate.tables import Evaluation, EvaluationImage, EvaluationResult

    with db.session_scope() as s:
        e = Evaluation(name=SHORT, status="done", config={"image_sets": [{"label": SHORT}]},
                       reference={"dataset": SHORT, "split": "val", "n": 1}, backbones={})
        s.add(e)
        s.flush()
        s.add(EvaluationResult(evaluation_id=e.id, image_set=SHORT, metric="clip_cosine", status="ok", n=1,
                               value=0.3, ci_low=0.28, ci_high=0.32, median=0.3, top5=0.3, step=None,
                               detail={"fine_tuned": True, "params": {"rank": 4}}))
        s.add(EvaluationImage(evaluation_id=e.id, image_set=SHORT, generation_id=gid, image_path="", prompt=EVIL,
                              scores={"clip_cosine": 0.3},
                              provenance={"seed": 1, "model": SHORT, "batch": SHORT,
                                          "loras": [{"name": SHORT, "path": "/loras/x", "scale": 0.8}]}))
    from workbench.products import create_product

    create_product(as_role("marketer"), "EVIL-1", name=SHORT)
    templates = workspace / "prompt_templates" / "products"
    templates.mkdir(parents=True)
    (templates / "evil.yaml").write_text(json.dumps({
        "name": "evil", "title": SHORT, "description": EVIL, "negative": EVIL, "text": "a polo {color}",
        "slots": {"color": {"values": ["navy"], "default": "navy", "help": EVIL}}}))
    return gid


def _run(page: str, user: str, **state) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.session_state[StateKeys.USER] = user
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def test_every_page_shows_hostile_user_text_literally(hostile):
    walked = {
        "Datasets": _run("1_Datasets.py", "mia"),
        "Datasets, a product open": _run("1_Datasets.py", "mia", datasets_products_open="EVIL-1"),
        "Training runs": _run("2_Training.py", "mia"),
        "Prompts": _run("3_Prompts.py", "mia", prompts_template="evil"),
        "Generate": _run("4_Generate.py", "mia", generate_lora_pick=[1]),
        "Generate, a model typed": _run("4_Generate.py", "mia", generate_model=SHORT),
        "Review": _run("6_Review.py", "ana", review_f_status=None),
        "Evaluate": _run("5_Evaluate.py", "ari"),
    }
    bad = []
    for page, at in walked.items():
        assert not at.exception, (page, at.exception)
        for kind, text in _rendered(at):
            found = ACTIVE.search(_escaped_removed(text))
            if found:
                bad.append(f"{page} {kind}: {found[0]!r} in {text[:120]!r}")
    assert not bad, "\n".join(bad)
    # and the text is still there to read, as text
    review = "\n".join(t for _, t in _rendered(walked["Review"]))
    assert "\\!\\[beacon\\]\\(http\\:\\/\\/evil\\.example\\/b\\.png\\)" in review  # negative prompt, comment, names
    assert "\\<script\\>" in review
    assert any(EVIL in c.value for c in walked["Review"].code)  # the prompt, in a code block, verbatim
    for page in ("Evaluate", "Datasets, a product open"):  # the walk reached the evaluation and the product
        assert any("evil\\.example" in t for _, t in _rendered(walked[page])), page
