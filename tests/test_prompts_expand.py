"""Batch expansion: inline alternatives, exact cartesian products, reproducible seeded samples, caps, dedupe."""
import itertools

import pytest

from workbench.prompts import BatchSpec, PromptError, expand_batch, load_library, parse_template
from workbench.prompts.library import Library
from workbench.prompts.syntax import alternatives, tidy


def test_inline_alternatives_expand_in_order_with_optional_phrases_and_escaped_braces():
    assert alternatives("{navy|olive|black} wool coat") == ["navy wool coat", "olive wool coat", "black wool coat"]
    assert alternatives("{a|b} and {c|d}") == ["a and c", "a and d", "b and c", "b and d"]
    assert alternatives("{hooded|} jacket, warm") == ["hooded jacket, warm", "jacket, warm"]
    assert alternatives("logo {{NWO}}") == ["logo {NWO}"]
    assert tidy("  , navy ,  , tee ,") == "navy, tee"


def _lib(text: str, **scenes: str) -> Library:
    lib = Library()
    lib.templates["tee"] = parse_template(text, "tee.yaml", default_name="tee")
    for name, scene_text in scenes.items():
        lib.scenes[name] = parse_template(f"kind: scene\ntext: \"{scene_text}\"\n", f"{name}.yaml", default_name=name)
    return lib


TEE = """text: "{color} tee in {fabric}, {front|back} view, {scene}"
default_scene: white
slots:
  color: {values: [navy, olive, "{sand|stone}"], default: navy}
  fabric: {values: [cotton, linen, hemp], default: cotton}
"""
SCENES = {"white": "on white", "street": "on a {city|village} street"}


def test_cartesian_is_the_exact_product_in_order():
    lib = _lib(TEE, **SCENES)
    spec = BatchSpec("tee", slots={"color": ["navy", "{sand|stone}"], "fabric": ["*"]}, scenes=["white", "street"])
    batch = expand_batch(lib, spec)
    expected = [f"{c} tee in {f}, {v} view, {s}" for c, f, s, v in itertools.product(
        ["navy", "sand", "stone"], ["cotton", "linen", "hemp"], ["on white", "on a city street", "on a village street"],
        ["front", "back"])]
    assert [p.text for p in batch.prompts] == expected
    assert batch.combinations == 54 and batch.duplicates_removed == 0
    first_street = batch.prompts[2]
    assert (first_street.scene, first_street.slot_values) == ("street", {"color": "navy", "fabric": "cotton"})


def test_seeded_sample_is_reproducible_and_drawn_from_the_product():
    lib = _lib(TEE, **SCENES)
    full = [p.text for p in expand_batch(lib, BatchSpec("tee", slots={"color": ["*"], "fabric": ["*"]},
                                                        scenes=["white", "street"])).prompts]
    spec = BatchSpec("tee", slots={"color": ["*"], "fabric": ["*"]}, scenes=["white", "street"], mode="sample",
                     sample_size=10, seed=42)
    first = [p.text for p in expand_batch(lib, spec).prompts]
    again = [p.text for p in expand_batch(lib, spec).prompts]
    spec.seed = 43
    other = [p.text for p in expand_batch(lib, spec).prompts]
    assert first == again and first != other
    assert len(first) == len(set(first)) == 10 and set(first) <= set(full)
    assert sorted(first, key=full.index) == first  # kept in the product's order


def test_sample_never_materialises_a_huge_product():
    values = [f"v{i}" for i in range(40)]
    slots = "".join(f"  s{k}: {{values: [{', '.join(values)}], default: v0}}\n" for k in range(6))
    text = "text: \"" + " ".join(f"{{s{k}}}" for k in range(6)) + "\"\nslots:\n" + slots
    lib = _lib(text)
    everything = {f"s{k}": ["*"] for k in range(6)}
    batch = expand_batch(lib, BatchSpec("tee", slots=everything, mode="sample", sample_size=500, seed=1))
    assert batch.combinations == 40 ** 6 and len(batch.prompts) == 500
    with pytest.raises(PromptError, match="exceed the cap of 10,000"):
        expand_batch(lib, BatchSpec("tee", slots=everything))
    with pytest.raises(PromptError, match="sample_size"):
        expand_batch(lib, BatchSpec("tee", slots=everything, mode="sample", sample_size=20, cap=10))


def test_duplicates_are_removed_keeping_the_first():
    text = """text: "{fit} {cut} tee"
slots:
  fit: {values: ["{slim|}"], default: slim}
  cut: {values: ["{|slim}"], default: "{|slim}"}
"""
    batch = expand_batch(_lib(text), BatchSpec("tee", slots={"fit": ["{slim|}"]}))
    # slim·"", slim·slim, ""·"", ""·slim  ->  "slim tee", "slim slim tee", "tee", "slim tee" (dup)
    assert [p.text for p in batch.prompts] == ["slim tee", "slim slim tee", "tee"]
    assert batch.combinations == 4 and batch.duplicates_removed == 1


def test_unknown_slot_and_scene_are_named():
    lib = _lib(TEE, **SCENES)
    with pytest.raises(PromptError) as err:
        expand_batch(lib, BatchSpec("tee", slots={"colour": ["navy"]}, scenes=["beach"]))
    messages = str(err.value)
    assert "tee.yaml:1: slots.colour: unknown slot 'colour'" in messages
    assert "unknown scene preset 'beach'" in messages
    with pytest.raises(PromptError, match="unknown template 'polo'"):
        expand_batch(lib, BatchSpec("polo"))


def test_shipped_batch_carries_trigger_brand_negative_and_checks():
    lib = load_library()
    spec = BatchSpec("hoodie", slots={"color": ["navy", "rust"]}, scenes=["studio-white", "golden-hour"],
                     brand="northwind")
    batch = expand_batch(lib, spec)
    assert len(batch.prompts) == 4
    for p in batch.prompts:
        assert p.text.startswith("nwo_style ") and "watermark" in p.negative
        assert p.tokens.count > 10 and p.ok
    assert batch.prompts[-1].params["guidance"] == 5.5  # golden hour's own guidance
