"""Token counts equal the CLIP tokenizer's; the 77-token limit reports exactly what gets cut."""
import pytest

from workbench.prompts import count_tokens, count_tokens_batch, load_library, render
from workbench.prompts.tokens import token_ids

KNOWN = [
    "a photo of a cat",
    "nwo_style oversized navy t-shirt, heavyweight cotton jersey, 100% organic, studio photograph",
    "Golden-hour editorial photograph, warm low sun; shallow depth-of-field (85mm f/1.8)!",
    "Crème brûlée coloured café jacket — naïve résumé, 日本 デニム, emoji 👕✨",
    "  multiple   spaces\tand\nnewlines  ",
    "don't won't it's we're they've I'm you'll he'd",
    "",
]


@pytest.fixture(scope="module")
def reference():
    from open_clip.tokenizer import SimpleTokenizer  # the OpenAI CLIP reference implementation, bundled vocabulary

    return SimpleTokenizer()


def test_ids_match_a_hand_checked_example():
    assert token_ids("a photo of a cat") == [320, 1125, 539, 320, 2368]


def test_ids_and_counts_equal_the_clip_reference_tokenizer(reference):
    lib = load_library()
    shipped = [p.text for name in lib.templates for scene in lib.scenes
               for p in render(lib, name, scene=scene, brand="northwind").prompts]
    for text in KNOWN + shipped:
        assert token_ids(text) == reference.encode(text), text
        assert count_tokens(text).count == len(reference.encode(text))
    assert [c.count for c in count_tokens_batch(KNOWN)] == [len(reference.encode(t)) for t in KNOWN]


def test_a_prompt_within_the_limit_is_not_truncated():
    tc = count_tokens(" ".join(["cat"] * 75))
    assert (tc.count, tc.total, tc.truncated, tc.cut, tc.warning) == (75, 77, False, "", "")


def test_truncation_reports_the_text_that_is_cut():
    # CLIP splits numbers into single digits: "w12" is three tokens ("w", "1", "2").
    text = "  ".join(["cat"] * 74 + ["w12", "Dog"])
    tc = count_tokens(text)
    assert tc.count == 78 and tc.total == 80 and tc.truncated
    assert tc.kept == "  ".join(["cat"] * 74) + "  w"  # the 75th content token is the "w"
    assert tc.cut == "12  Dog"  # cut text is quoted from the original, spacing and case included
    assert tc.warning == '80 tokens: over the 77-token limit by 3; cut: "12  Dog"'


def test_batch_counts_are_per_text_and_keep_order():
    texts = ["red tee", "a photo of a cat", "red tee"]
    assert [c.count for c in count_tokens_batch(texts)] == [2, 5, 2]
