"""Logo checks: read the text in an image with OCR and fuzzy-match the brand profile's logo text.

    engine = load_ocr()                                # settings.models.ocr_backend; EasyOCR falls back to RapidOCR
    check = check_logo(engine, image, "AURELO")         # LogoCheck: passed, text read, confidence, score, backend
    draw_overlay(image, check).save("overlay.png")      # the boxes: green where the logo was found, red elsewhere

Backends: RapidOCR ships its ONNX models and runs offline; EasyOCR is used when the setting asks for it
(``easyocr:en``) and its weights are in the EasyOCR model folder (``workbench models pull ocr_backend``), otherwise
RapidOCR is used and the result says so (``backend`` and ``fallback``).

Matching: both the logo text and what OCR read are normalised (see ``normalise``): case and spacing ignored, and
characters OCR confuses folded together (O/0, I/1/l/L/|, S/5/$, B/8, Z/2, G/6, "RN"/M, "VV"/W). Then rapidfuzz scores
the logo against every line read and against all lines joined (a logo split into two boxes): ``partial_ratio`` when the
read text is at least as long as the logo (the logo inside a longer line), plain ``ratio`` otherwise (so one stray
letter never matches a whole logo). The check passes at ``score >= threshold`` (default 85: one wrong letter in a
six-letter logo fails, which is what a garbled generated logo looks like).
"""
from __future__ import annotations

import importlib.metadata
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEFAULT_THRESHOLD = 85.0
MULTI_LOOKALIKES = (("RN", "M"), ("VV", "W"))
LOOKALIKES = str.maketrans({"0": "O", "1": "I", "L": "I", "|": "I", "!": "I", "5": "S", "$": "S", "8": "B",
                            "2": "Z", "6": "G"})


def normalise(text: str) -> str:
    """Upper case, only letters and digits, look-alike characters folded to one representative."""
    s = text.upper()
    s = s.replace("|", "I").replace("!", "I").replace("$", "S")  # before punctuation is dropped
    s = re.sub(r"[^0-9A-Z]", "", s)
    for a, b in MULTI_LOOKALIKES:
        s = s.replace(a, b)
    return s.translate(LOOKALIKES)


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float
    box: list[list[float]]  # four (x, y) corners


@dataclass
class LogoCheck:
    passed: bool
    expected: str
    text: str  # everything read, lines joined by " | "
    matched: str  # the line (or joined lines) that scored best
    confidence: float | None  # OCR confidence of the best-matching text
    score: float  # 0-100 fuzzy match of the normalised texts
    threshold: float
    backend: str  # e.g. "rapidocr 3.10.0"
    fallback: str = ""  # why the configured backend was not used, when it was not
    lines: list[OcrLine] = field(default_factory=list)

    def to_detail(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "lines"},
                "boxes": [{"text": l.text, "confidence": l.confidence, "box": l.box} for l in self.lines]}


class OcrEngine(Protocol):
    backend: str
    fallback: str

    def read(self, image: Image.Image) -> list[OcrLine]: ...


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cpu_threads() -> int:
    """The CPU threads one inference may use: OMP_NUM_THREADS when set, else every core this process may run on."""
    import os

    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class RapidOcrEngine:
    """RapidOCR with its shipped ONNX models (no download). Never asked to draw (its ``vis()`` fetches a font)."""

    def __init__(self, fallback: str = ""):
        from rapidocr import RapidOCR

        # ONNX Runtime's own thread pool (default: one spinning thread per core) takes as many threads as torch does
        # here (OMP_NUM_THREADS when set): beside a training or generation process it would only contend.
        threads = _cpu_threads()
        self._ocr = RapidOCR(params={"Global.log_level": "error",
                                     "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                                     "EngineConfig.onnxruntime.inter_op_num_threads": 1})
        self.backend = f"rapidocr {_version('rapidocr')}"
        self.fallback = fallback

    def read(self, image: Image.Image) -> list[OcrLine]:
        out = self._ocr(image.convert("RGB"))
        if out.txts is None or out.boxes is None:
            return []
        return [OcrLine(str(t), float(s), np.asarray(b, dtype=float).tolist())
                for t, s, b in zip(out.txts, out.scores, out.boxes)]


class EasyOcrEngine:
    """EasyOCR with weights already in its model folder; ``download_enabled=False`` so it never fetches."""

    def __init__(self, lang: str = "en", fallback: str = ""):
        import easyocr

        from workbench.models.sources import easyocr_dir

        self._reader = easyocr.Reader([lang], gpu=False, model_storage_directory=str(easyocr_dir()),
                                      download_enabled=False, verbose=False)
        self.backend = f"easyocr {_version('easyocr')} ({lang})"
        self.fallback = fallback

    def read(self, image: Image.Image) -> list[OcrLine]:
        return [OcrLine(str(t), float(c), np.asarray(b, dtype=float).tolist())
                for b, t, c in self._reader.readtext(np.asarray(image.convert("RGB")))]


def load_ocr(backend: str | None = None) -> OcrEngine:
    """The OCR engine the setting names, or RapidOCR with ``fallback`` saying why. Raises ModelUnavailable only when
    RapidOCR itself is not installed."""
    from workbench.models.sources import ModelUnavailable, availability
    from workbench.settings import get_settings

    backend = backend or get_settings().models.ocr_backend
    fallback = ""
    if backend.startswith("easyocr:"):
        a = availability(backend)
        if a.ok:
            try:
                return EasyOcrEngine(backend.split(":", 1)[1] or "en")
            except Exception as exc:  # noqa: BLE001 - corrupt/mismatched weights: fall back, and say so
                fallback = f"{backend} failed to load ({type(exc).__name__}: {str(exc)[:200]}); used rapidocr"
        else:
            fallback = f"{backend} unavailable ({a.reason}); used rapidocr"
    elif backend != "rapidocr":
        fallback = f"unknown OCR backend {backend!r}; used rapidocr"
    a = availability("rapidocr")
    if not a.ok:
        raise ModelUnavailable("rapidocr", a.reason, a.remedy)
    return RapidOcrEngine(fallback=fallback)


def _candidates(lines: list[OcrLine]) -> list[tuple[str, float | None]]:
    cands: list[tuple[str, float | None]] = [(l.text, l.confidence) for l in lines]
    if len(lines) > 1:
        cands.append((" ".join(l.text for l in lines), float(np.mean([l.confidence for l in lines]))))
    return cands


def match_score(expected: str, read: str) -> float:
    """0-100: how well ``read`` contains ``expected`` after normalisation."""
    from rapidfuzz import fuzz

    e, r = normalise(expected), normalise(read)
    if not e or not r:
        return 0.0
    return float(fuzz.partial_ratio(e, r) if len(r) >= len(e) else fuzz.ratio(e, r))


def check_logo(engine: OcrEngine, image: Image.Image, logo_text: str,
               threshold: float = DEFAULT_THRESHOLD) -> LogoCheck:
    """Read ``image`` and decide whether ``logo_text`` is legibly on it."""
    if not normalise(logo_text):
        raise ValueError(f"logo text {logo_text!r} has no letters or digits to look for: set the brand profile's "
                         "logo_text")
    if not 0 <= threshold <= 100:
        raise ValueError(f"threshold {threshold} must be between 0 and 100")
    lines = engine.read(image)
    best, best_conf, best_score = "", None, 0.0
    for text, conf in _candidates(lines):
        score = match_score(logo_text, text)
        if score > best_score:
            best, best_conf, best_score = text, conf, score
    return LogoCheck(passed=best_score >= threshold, expected=logo_text, text=" | ".join(l.text for l in lines),
                     matched=best, confidence=best_conf, score=best_score, threshold=threshold,
                     backend=engine.backend, fallback=engine.fallback, lines=lines)


def draw_overlay(image: Image.Image, check: LogoCheck) -> Image.Image:
    """The image with every OCR box drawn: green for text that matches the logo, red for the rest, and a banner."""
    im = image.convert("RGB").copy()
    d = ImageDraw.Draw(im)
    width = max(2, im.width // 256)
    font = ImageFont.load_default(size=max(10, im.width // 40))
    for line in check.lines:
        ok = match_score(check.expected, line.text) >= check.threshold
        colour = (20, 170, 60) if ok else (220, 40, 40)
        pts = [tuple(p) for p in line.box]
        d.line(pts + [pts[0]], fill=colour, width=width)
        d.text((pts[0][0], max(0, pts[0][1] - font.size - 2)), f"{line.text} {line.confidence:.2f}", fill=colour,
               font=font)
    banner = f"{'PASS' if check.passed else 'FAIL'}  ·  {check.expected}  ·  score {check.score:.0f}"
    d.rectangle([0, im.height - font.size - 8, im.width, im.height], fill=(0, 0, 0))
    d.text((4, im.height - font.size - 5), banner, fill=(255, 255, 255), font=font)
    return im
