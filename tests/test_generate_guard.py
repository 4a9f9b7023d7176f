"""The CLIP gate with the tiny kit: regenerate below the threshold, stop at K, keep every attempt, refine prompts."""
import pytest

from workbench.db import session_scope
from workbench.generate.guard import ClipScorer, GatePolicy, generate_guarded, refine_prompt
from workbench.generate.pipeline import GenerationError, PipelineSpec, build_pipeline
from workbench.generate.sample import GenerationParams, read_png_metadata
from workbench.generate.tables import Generation
from workbench.models import tiny
from helpers.review import as_role

MIA = as_role("marketer")  # generating needs the marketer's permission

PROMPT = "tok_style, red t-shirt, white background, studio light"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


@pytest.fixture(scope="module")
def assembled(kit):
    return build_pipeline(PipelineSpec(model=str(kit["sdxl"])))


@pytest.fixture(scope="module")
def scorer(kit):
    return ClipScorer.from_ref(str(kit["open_clip"]))


def _params(**over):
    return GenerationParams(**{"prompt": PROMPT, "width": 64, "height": 64, "steps": 2, "seed": 4, **over})


def test_unreachable_threshold_makes_exactly_k_attempts_and_keeps_the_best(assembled, scorer):
    [img] = generate_guarded(MIA, assembled, _params(), scorer, GatePolicy(threshold=1.0, max_attempts=3), batch="g")
    assert [a.attempt for a in img.attempts] == [1, 2, 3]
    assert len({a.seed for a in img.attempts}) == 3  # each retry has a new seed
    best = max(img.attempts, key=lambda a: a.clip_score)
    assert img.kept is best and sum(a.kept for a in img.attempts) == 1 and not img.passed
    for a in img.attempts:  # the score is CLIP's cosine for the asked prompt, recomputable
        assert a.clip_score == pytest.approx(scorer.score(a.image, PROMPT), abs=1e-5)
    with session_scope() as s:
        rows = s.query(Generation).order_by(Generation.attempt).all()
        assert [(r.attempt, r.kept, r.review_status) for r in rows] == [
            (a.attempt, a.kept, "pending" if a.kept else "not_kept") for a in img.attempts]
    meta = read_png_metadata(img.kept.path).provenance
    assert meta["kept"] is True and meta["gate_passed"] is False and meta["clip_score"] == pytest.approx(
        img.kept.clip_score)


def test_reachable_threshold_stops_at_the_first_attempt(assembled, scorer):
    [img] = generate_guarded(MIA, assembled, _params(), scorer, GatePolicy(threshold=-1.0, max_attempts=3), batch="g")
    assert len(img.attempts) == 1 and img.passed


def test_late_attempts_use_a_refined_prompt_with_the_trigger_first(assembled, scorer):
    policy = GatePolicy(threshold=1.0, max_attempts=3, refine_from_attempt=2)
    [img] = generate_guarded(MIA, assembled, _params(), scorer, policy, batch="g", trigger="tok_style", record=False)
    first, second = img.attempts[0].provenance["prompt"], img.attempts[1].provenance["prompt"]
    assert first == PROMPT
    assert sorted(second.split(", ")) == sorted(PROMPT.split(", ")) and second.startswith("tok_style, ")
    expected = refine_prompt(PROMPT, img.attempts[0].image, scorer, trigger="tok_style")
    assert second == expected


def test_refine_moves_the_weakest_attribute_forward(assembled, scorer):
    image = generate_guarded(MIA, assembled, _params(), scorer, GatePolicy(-1.0, 1), record=False)[0].kept.image
    parts = PROMPT.split(", ")[1:]
    scores = dict(zip(parts, scorer.cosines(image, parts)))
    refined = refine_prompt(PROMPT, image, scorer, trigger="tok_style").split(", ")
    assert refined[0] == "tok_style" and refined[1] == min(scores, key=scores.get)


def test_policy_from_brand_and_bad_values():
    from workbench.prompts import parse_brand

    brand = parse_brand("title: A\ngate: {clip_threshold: 0.3, max_attempts: 4}\n", "a.yaml", "a")
    assert GatePolicy.for_brand(brand) == GatePolicy(threshold=0.3, max_attempts=4) and brand.gate_defined
    assert GatePolicy.for_brand(brand, max_attempts=2) == GatePolicy(threshold=0.3, max_attempts=2)  # user override
    assert GatePolicy.for_brand(None) == GatePolicy()  # no brand: the defaults
    assert not parse_brand("title: B\n", "b.yaml", "b").gate_defined  # no gate section: the page starts it off
    with pytest.raises(GenerationError, match="max_attempts 0"):
        GatePolicy(max_attempts=0)
