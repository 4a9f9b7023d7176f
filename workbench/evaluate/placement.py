"""Placing a brand's logo and reading it back: ``generate.scenes.logo`` (render, warp, shading) + the OCR logo check
(``evaluate.ocr``). On the evaluation floor because it composes the two (generation sits below evaluation).

    svg, text = brand_logo("aurelo")                       # the profile's <brand>.logo.svg and its logo_text
    out = place_and_check(photo, svg, corners, text)        # out.image, out.check.passed, out.check.text
    workbench generate logo --image shot.png --corners 40,30,90,34,88,52,38,48 --brand aurelo

Also a post-step for any generated image whose OCR check failed: put the real logo where it belongs, check again.
``demo_scene_and_logo`` is the demo workspace's example of both scenes and logos.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from workbench.evaluate.ocr import LogoCheck, OcrEngine, check_logo, load_ocr
from workbench.generate.scenes.logo import LogoError, PlacedLogo, brand_logo_path, place_logo

# The demo brand's logo: the wordmark as SVG text (DejaVu Sans ships with most Linux images; a real logo file has
# its letters as paths).
DEMO_LOGO_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="80" viewBox="0 0 300 80">'
                 '<text x="150" y="58" font-family="DejaVu Sans, Arial, sans-serif" font-weight="bold" font-size="50" '
                 'text-anchor="middle" fill="#1E2A5E">AURELO</text></svg>')


@dataclass
class LogoResult:
    image: Image.Image
    check: LogoCheck
    placed: PlacedLogo


def brand_logo(brand: str, svg_path: str | None = None, text: str | None = None) -> tuple[str, str]:
    """(SVG text, the text OCR must read): the brand profile's logo file and ``logo_text``, each overridden when
    given. LogoError naming what is missing."""
    expected = text
    if brand:
        from workbench.prompts import PromptError, load_library

        try:
            profile = load_library().brand(brand)
        except PromptError as exc:
            raise LogoError(str(exc)) from None
        expected = expected or profile.logo_text
    path = Path(svg_path) if svg_path else (brand_logo_path(brand) if brand else None)
    if path is None:
        raise LogoError("give the logo: --svg FILE, or --brand NAME whose profile has a logo SVG")
    if not path.is_file():
        raise LogoError(f"no logo SVG at {path}" + (f": save brand {brand!r}'s logo there (Generate page, Place logo)"
                                                   if brand and not svg_path else ""))
    if not expected:
        raise LogoError("the text OCR must read is unknown: give --text, or set the brand profile's logo_text")
    return path.read_text(encoding="utf-8", errors="replace"), expected


def place_and_check(image: Image.Image, svg: str, corners, expected: str, *, colour: str | None = None,
                    engine: OcrEngine | None = None) -> LogoResult:
    """Place the logo (``generate.scenes.logo.place_logo``) and run the OCR logo check on the result."""
    placed = place_logo(image, svg, corners, colour=colour)
    check = check_logo(engine or load_ocr(), placed.image, expected)
    return LogoResult(image=placed.image, check=check, placed=placed)


def demo_scene_and_logo(actor: Any, sku: str, brand: str, batch: str = "demo-scenes") -> dict[str, Any]:
    """The demo's example: one scene around ``sku``'s photo (64 px, 4 steps) and the brand's logo placed on a flat
    garment photo of the catalog, read back by OCR. Saves the brand's logo SVG when it has none."""
    from workbench.auth import system_actor
    from workbench.generate.pipeline import PipelineSpec, build_pipeline
    from workbench.generate.scenes.logo import save_brand_logo
    from workbench.generate.scenes.scene import SceneRequest, generate_scene, scene_pipeline
    from workbench.products import get_product
    from workbench.settings import get_settings

    sp = scene_pipeline(build_pipeline(PipelineSpec(model=get_settings().models.sdxl_base, device="cpu")))
    [scene] = generate_scene(actor, sp, SceneRequest(sku=sku, scene="golden-hour", width=64, height=64, steps=4,
                                                     seed=21), batch, models={})
    if not brand_logo_path(brand).is_file():
        save_brand_logo(system_actor("demo"), brand, DEMO_LOGO_SVG)
    svg, text = brand_logo(brand)
    with Image.open(get_product(sku).images[0]) as im:
        photo = im.convert("RGB").resize((256, 256), Image.Resampling.LANCZOS)
    result = place_and_check(photo, svg, [(70, 96), (186, 100), (184, 128), (68, 124)], text)
    out = get_settings().path("generations", batch, f"{sku}-logo.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out)
    return {"scene": scene.generation_id, "logo": str(out), "ocr": result.check.text, "passed": result.check.passed}
