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
DEMO_CORNERS = [(84, 92), (172, 96), (171, 122), (83, 117)]  # the tee's chest, a little turned


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


def demo_scene_and_logo(actor: Any, sku: str, brand: str, assembled: Any = None, models: Any = None,
                        batch: str = "demo-scenes") -> dict[str, Any]:
    """The demo's example of both: one scene around ``sku``'s photo (64 px, 4 steps, the demo model; product pixels
    exact), and the brand's logo SVG (saved for the brand when it has none) placed with a perspective warp on a plain
    tee drawn in code (the catalog photos already carry the wordmark), read back by OCR. The logo image is recorded
    as a generation of ``batch``, labelled as such in its provenance, with its OCR check, so review shows it."""
    from workbench.auth import system_actor
    from workbench.data.demo import draw_garment
    from workbench.generate.pipeline import PipelineSpec, build_pipeline
    from workbench.generate.sample import GeneratedImage, a1111_parameters, record_generation, write_png
    from workbench.generate.scenes.logo import save_brand_logo
    from workbench.generate.scenes.scene import SceneRequest, generate_scene, scene_pipeline
    from workbench.review.queue import record_check
    from workbench.settings import get_settings

    assembled = assembled or build_pipeline(PipelineSpec(model=get_settings().models.sdxl_base, device="cpu"))
    [scene] = generate_scene(actor, scene_pipeline(assembled), SceneRequest(
        sku=sku, scene="golden-hour", width=64, height=64, steps=4, seed=21), batch, models=models or {})
    if not brand_logo_path(brand).is_file():
        save_brand_logo(system_actor("demo"), brand, DEMO_LOGO_SVG)
    svg, text = brand_logo(brand)
    tee = draw_garment("t-shirt", (226, 226, 230), 256, brand="")
    result = place_and_check(tee, svg, DEMO_CORNERS, text)
    prov = {"workbench_version": "demo", "model": "demo: logo placed from SVG on a tee drawn in code",
            "model_revision": "", "demo_model": True, "vae": "", "loras": [], "quantization": "none",
            "dtype": "fp32", "scheduler": "none", "prompt": f"demo of logo placement: {text} from "
            f"{brand_logo_path(brand).name} on a plain tee (not a generated image)", "negative_prompt": "",
            "prompt_id": None, "template": "", "brand": brand, "products": [], "seed": 0, "base_seed": 0, "steps": 0,
            "guidance": 0.0, "width": tee.width, "height": tee.height, "attempt": 1,
            "logo": {"svg": str(brand_logo_path(brand)), "corners": result.placed.corners, "text": text}}
    path = write_png(get_settings().path("generations", batch, "logo-placed.png"), result.image,
                     a1111_parameters(prov, "none"), prov)
    gid = record_generation(getattr(actor, "username", actor),
                            GeneratedImage(image=result.image, seed=0, path=path, provenance=prov), batch)
    c = result.check
    record_check(system_actor("evaluation", role="analyst"), gid, "ocr", c.passed,
                 {"expected": c.expected, "read": c.text, "score": c.score, "backend": c.backend})
    return {"scene": scene.generation_id, "logo": gid, "ocr": result.check.text, "passed": result.check.passed}
