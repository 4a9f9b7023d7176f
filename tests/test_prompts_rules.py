"""Brand rule checks: forbidden terms, required phrases, the trigger token, and rules broken by truncation."""
from workbench.prompts import BatchSpec, BrandRules, expand_batch, load_library, parse_brand

BRAND = parse_brand("""trigger: nwo_style
required_phrases: [photograph, natural light]
forbidden_terms: [nike, cheap, air max]
""", "acme.yaml", default_name="acme")


def _rules(text, kept=None):
    return [(v.rule, v.term) for v in BrandRules(BRAND).check(text, kept)]


def test_a_clean_prompt_passes():
    assert _rules("nwo_style navy tee, studio photograph in Natural Light") == []


def test_forbidden_terms_are_caught_case_insensitively_on_word_edges():
    assert _rules("nwo_style NIKE tee, cheap look, photograph, natural light") == [("forbidden", "nike"),
                                                                                   ("forbidden", "cheap")]
    assert _rules("nwo_style tee by Nikeisha, cheaper, photograph, natural light") == []
    assert _rules("nwo_style Air  Max vibe, photograph, natural light") == []  # two spaces: not the phrase
    assert _rules("nwo_style air max vibe, photograph, natural light") == [("forbidden", "air max")]


def test_missing_required_phrase_and_trigger_are_caught():
    assert _rules("navy tee, photographic, daylight") == [("trigger", "nwo_style"), ("required", "photograph"),
                                                         ("required", "natural light")]


def test_rules_broken_by_the_token_limit_are_reported():
    text = "nwo_style navy tee, natural light, photograph"
    assert _rules(text, kept="nwo_style navy tee, natural light") == [("cut", "photograph")]


def test_batch_highlights_the_prompts_that_break_rules(workspace):
    brands = workspace / "prompt_templates" / "brands"
    brands.mkdir(parents=True)
    (brands / "strict.yaml").write_text("trigger: nwo_style\nforbidden_terms: [oversized]\n"
                                        "required_phrases: [ghost mannequin]\n")
    batch = expand_batch(load_library(), BatchSpec("t-shirt", slots={"fit": ["regular fit", "oversized"]},
                                                   scenes=["studio-white", "ghost-mannequin"], brand="strict"))
    flagged = {(p.slot_values["fit"], p.scene): sorted(v.rule for v in p.violations) for p in batch.prompts}
    assert flagged == {("regular fit", "studio-white"): ["required"], ("regular fit", "ghost-mannequin"): [],
                       ("oversized", "studio-white"): ["forbidden", "required"],
                       ("oversized", "ghost-mannequin"): ["forbidden"]}
    assert batch.with_violations == 3
    issues = batch.rows()[2]["issues"]
    assert "forbidden term 'oversized'" in issues and "missing required phrase 'ghost mannequin'" in issues
