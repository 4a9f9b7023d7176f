"""Templates, scene presets and brand profiles: the shipped ones load and render; bad files and bad slot values are
reported with file, line and field; workspace files override shipped ones."""
from pathlib import Path

import pytest

from workbench.prompts import PromptError, load_library, parse_brand, parse_template, render, save_template_text
from workbench.prompts.library import SHIPPED_DIR
from helpers.review import as_role

SHIPPED_PRODUCTS = {"t-shirt", "hoodie", "jacket", "bottoms", "dress", "sneakers", "accessories"}
SHIPPED_SCENES = {"studio-white", "flat-lay", "ghost-mannequin", "on-model", "urban-street", "outdoor", "golden-hour"}


def _problem(exc: PromptError, field: str):
    matches = [p for p in exc.problems if p.field == field]
    assert matches, f"no problem for {field}: {exc}"
    return matches[0]


def test_every_shipped_template_loads_and_renders_in_every_scene_within_the_token_limit():
    lib = load_library()
    assert lib.problems == []
    assert set(lib.templates) == SHIPPED_PRODUCTS
    assert set(lib.scenes) == SHIPPED_SCENES
    assert "northwind" in lib.brands
    brand = lib.brand("northwind")
    for name, template in lib.templates.items():
        for scene in lib.scenes:
            batch = render(lib, name, scene=scene, brand="northwind")
            assert batch.prompts, (name, scene)
            for p in batch.prompts:
                assert p.text.startswith(brand.trigger + " "), p.text
                assert "{" not in p.text and "}" not in p.text and "  " not in p.text
                assert p.ok, (name, scene, p.check.issues)
                assert p.params["width"] % 8 == 0 and p.params["steps"] >= 1
        assert template.negative and template.recommended.width


def test_scene_settings_override_the_template_and_negatives_merge():
    lib = load_library()
    p = render(lib, "t-shirt", scene="on-model", brand="northwind").prompts[0]
    assert (p.params["width"], p.params["height"]) == (832, 1216)  # the scene's portrait size wins
    assert p.params["steps"] == 30  # the template's steps stay
    assert p.negative.startswith(lib.template("t-shirt").negative)
    assert "extra limbs" in p.negative and "watermark" in p.negative  # scene's and brand's terms
    assert p.negative.lower().count("distorted logo") == 1


TEMPLATE = """kind: product
title: Polo
text: |
  {trigger} {color} polo shirt,
  {colour} collar, {scene}
default_scene: studio-white
slots:
  color:
    values: [navy, white]
    default: navy
"""


def test_unknown_slot_names_file_and_line():
    with pytest.raises(PromptError) as err:
        parse_template(TEMPLATE, "polo.yaml", default_name="polo")
    p = _problem(err.value, "text")
    assert (p.file, p.line) == ("polo.yaml", 5)
    assert "unknown slot 'colour'" in p.message
    assert str(p).startswith("polo.yaml:5: text: unknown slot 'colour'")


def test_default_value_not_allowed_names_its_line():
    text = TEMPLATE.replace("{colour} ", "").replace("default: navy", "default: pink")
    with pytest.raises(PromptError) as err:
        parse_template(text, "polo.yaml", default_name="polo")
    p = _problem(err.value, "slots.color.default")
    assert p.line == 10 and "value not allowed" in p.message and "'pink'" in p.message


def test_bad_yaml_reports_line():
    with pytest.raises(PromptError) as err:
        parse_template("kind: product\ntext: \"a {color} shirt\nslots: [\n", "broken.yaml")
    (p,) = err.value.problems
    assert p.file == "broken.yaml" and p.line is not None and "bad YAML" in p.message


@pytest.mark.parametrize("snippet, field, words", [
    ("colr: red\n", "colr", "unknown key"),
    ("recommended: {width: 1020}\n", "recommended.width", "multiple of 8"),
    ("kind: product\n", "kind", "key given twice"),
])
def test_other_mistakes_are_named(snippet, field, words):
    with pytest.raises(PromptError) as err:
        parse_template(TEMPLATE.replace("{colour} ", "") + snippet, "polo.yaml", default_name="polo")
    assert words in _problem(err.value, field).message


def test_unclosed_alternatives_are_reported_at_their_line():
    text = TEMPLATE.replace("{colour} collar, {scene}", "{scene}, {plain|striped collar")
    with pytest.raises(PromptError) as err:
        parse_template(text, "polo.yaml", default_name="polo")
    (p,) = err.value.problems
    assert (p.line, p.field) == (5, "text") and "never closed" in p.message


def test_a_declared_slot_the_text_does_not_use_is_an_error():
    text = TEMPLATE.replace("{colour} ", "").replace("    default: navy\n", "    default: navy\n  fit:\n"
                                                                             "    values: [slim]\n")
    with pytest.raises(PromptError) as err:
        parse_template(text, "polo.yaml", default_name="polo")
    (p,) = err.value.problems
    assert (p.line, p.field, p.message) == (11, "slots.fit", "declared but not used in text")


def test_bad_slot_value_at_render_names_template_file_and_slot_line():
    lib = load_library()
    with pytest.raises(PromptError) as err:
        render(lib, "t-shirt", {"color": "hot pink"})
    p = _problem(err.value, "slots.color")
    assert p.file == "prompt_templates/products/t-shirt.yaml"
    lines = (SHIPPED_DIR / "products" / "t-shirt.yaml").read_text().splitlines()
    assert lines[p.line - 1].strip() == "color:"
    assert "value not allowed: 'hot pink'" in p.message


def test_palette_colours_are_allowed_only_with_the_brand():
    lib = load_library()
    assert render(lib, "t-shirt", {"color": "rust"}, brand="northwind").prompts[0].slot_values["color"] == "rust"
    with pytest.raises(PromptError):
        render(lib, "t-shirt", {"color": "rust"})


def test_brand_profile_validation():
    good = (SHIPPED_DIR / "brands" / "northwind.yaml").read_text()
    brand = parse_brand(good, "northwind.yaml", default_name="northwind")
    assert brand.trigger == "nwo_style" and brand.loras[0].scale == 0.8 and brand.palette["navy"] == "#1F2A44"
    bad = good.replace('navy: "#1F2A44"', 'navy: "dark blue"').replace("trigger: nwo_style", "trigger: nwo style")
    with pytest.raises(PromptError) as err:
        parse_brand(bad, "northwind.yaml", default_name="northwind")
    assert "hex colour" in _problem(err.value, "palette.navy").message
    assert _problem(err.value, "trigger").line == 3


def test_workspace_templates_override_shipped_and_broken_files_are_reported(workspace):
    own = workspace / "prompt_templates" / "products"
    own.mkdir(parents=True)
    (own / "t-shirt.yaml").write_text(TEMPLATE.replace("{colour} ", "").replace("Polo", "Our tee"))
    (own / "broken.yaml").write_text("text: [unclosed\n")
    lib = load_library()
    assert lib.template("t-shirt").title == "Our tee"
    assert lib.template("t-shirt").path == str(own / "t-shirt.yaml")
    assert "hoodie" in lib.templates  # the rest still load
    assert [p.file for p in lib.problems] == [str(own / "broken.yaml")]


def test_editor_save_validates_before_writing(workspace):
    with pytest.raises(PromptError):
        save_template_text(as_role("marketer"), TEMPLATE.replace("title: Polo", "name: polo"))  # unknown slot 'colour'
    assert not (workspace / "prompt_templates").exists()
    path = save_template_text(as_role("marketer"), TEMPLATE.replace("{colour} ", "").replace("title: Polo",
                                                                                             "name: polo"))
    assert path == workspace / "prompt_templates" / "products" / "polo.yaml"
    assert load_library().template("polo").slots["color"].values == ("navy", "white")


def test_brand_gate_settings_are_read_and_validated():
    from workbench.prompts import parse_brand
    from workbench.prompts.yamlio import PromptError

    brand = parse_brand("title: A\ngate:\n  clip_threshold: 0.3\n  max_attempts: 5\n", "a.yaml", "a")
    assert (brand.clip_threshold, brand.max_attempts) == (0.3, 5)
    assert parse_brand("title: B\n", "b.yaml", "b").max_attempts == 3
    with pytest.raises(PromptError) as err:
        parse_brand("title: C\ngate:\n  max_attempts: 0\n  tries: 2\n", "c.yaml", "c")
    text = str(err.value)
    assert "c.yaml" in text and "max_attempts" in text and "tries" in text


def test_template_and_brand_saves_are_audited_with_the_text_before_and_after(workspace):
    """A brand profile's gate and forbidden terms are policy: who changed them, from what to what, stays on record."""
    from workbench.prompts import save_brand_text
    from workbench.review.queue import audit_trail

    polo = TEMPLATE.replace("{colour} ", "").replace("title: Polo", "name: polo")
    save_template_text(as_role("marketer"), polo)
    save_template_text(as_role("marketer"), polo.replace("collar", "pique collar"))
    shipped = (SHIPPED_DIR / "brands" / "northwind.yaml").read_text()
    stricter = shipped.replace("clip_threshold: 0.25 ", "clip_threshold: 0.3 ")
    with pytest.raises(PromptError, match="name: required"):  # the shipped file takes its name from its file name
        save_brand_text(as_role("admin"), stricter)
    save_brand_text(as_role("admin"), stricter, name="northwind")  # as the editor passes it
    with pytest.raises(PromptError):  # invalid: nothing written, nothing recorded
        save_brand_text(as_role("admin"), "title: [unclosed\n")
    rows = audit_trail(as_role("approver"), entity="prompt_template")
    assert [(r.actor, r.action, r.entity_id) for r in rows] == [
        ("adam", "prompts.save_brand", "brands/northwind.yaml"),
        ("mia", "prompts.save_product", "products/polo.yaml"),
        ("mia", "prompts.save_product", "products/polo.yaml")]
    brand, second, first = rows
    assert brand.before == {"path": str(SHIPPED_DIR / "brands" / "northwind.yaml"), "yaml": shipped}
    assert "clip_threshold: 0.3" in brand.after["yaml"]
    assert load_library().brand("northwind").clip_threshold == 0.3
    assert first.before is None and second.before["yaml"] == first.after["yaml"]
    assert "pique collar" in second.after["yaml"] and "pique" not in first.after["yaml"]


def test_only_shipped_files_get_repository_relative_paths():
    """A workspace inside the repository (``demo-workspace/``) is the team's own: its profile comes first on the
    Prompts page, so its files must not look shipped."""
    from workbench.prompts.library import SHIPPED_DIR, display_path

    assert display_path(SHIPPED_DIR / "products" / "t-shirt.yaml") == "prompt_templates/products/t-shirt.yaml"
    inside_repo = SHIPPED_DIR.parent / "demo-workspace" / "prompt_templates" / "brands" / "aurelo.yaml"
    assert Path(display_path(inside_repo)).is_absolute()
