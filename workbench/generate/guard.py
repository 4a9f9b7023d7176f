"""The CLIP gate: regenerate images that match their prompt poorly.

Each image is scored against the prompt it was asked for with CLIP (open_clip, the scorer from settings): the cosine
between the image and text embeddings. Below the brand's ``clip_threshold`` the image is regenerated with a new seed;
from the second retry on, the prompt is also refined: its comma-separated attributes are scored one by one against the
last image and the weakest ones are moved forward (CLIP and SDXL weigh early tokens more), the trigger token staying
first. At most ``max_attempts`` attempts are made. Every attempt is saved and recorded with its score; the best one
is marked kept and goes to review, the others stay visible as ``not_kept``.

The gate is per brand: ``gate_for(brand)`` reads the brand profile's ``gate:`` (threshold, attempts) and its trigger
token; a value the user gives (``threshold=``/``max_attempts=``, the CLI's ``--threshold``/``--attempts``, the page's
inputs) overrides the profile's. A prompt without a brand (or with one deleted since) gets ``GatePolicy()``'s defaults.
The profile's ``scorer:`` (e.g. ``tuned:aurelo-clip``, a scorer tuned on the brand's catalog) is the CLIP model that
scores its images; every score records its scorer (``clip_scorer`` in the provenance: ``ClipScorer.ref``).

    scorer = ClipScorer.from_ref(settings.models.clip_scorer)
    results = generate_guarded("mia", assembled, params, scorer, GatePolicy(threshold=0.25, max_attempts=3),
                               batch="ss26")
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from workbench.auth import Actor, require
from workbench.db import session_scope
from workbench.generate.pipeline import AssembledPipeline, GenerationError
from workbench.generate.sample import (GeneratedImage, GenerationParams, a1111_parameters, generate,
                                       record_generation, write_png)

RETRY_SEED_STRIDE = 100_003  # attempt k of image i uses seed + k * stride: reproducible, far from the other images


@dataclass(frozen=True)
class GatePolicy:
    threshold: float = 0.25  # CLIP cosine; typical real image-caption pairs score ~0.25-0.35 with ViT-L/14
    max_attempts: int = 3
    refine_from_attempt: int = 3  # attempts from this one on use a refined prompt (2 = refine at the first retry)

    def __post_init__(self):
        if not -1.0 <= self.threshold <= 1.0:
            raise GenerationError(f"clip threshold {self.threshold} must be a cosine between -1 and 1")
        if not 1 <= self.max_attempts <= 10:
            raise GenerationError(f"max_attempts {self.max_attempts} must be between 1 and 10")

    @classmethod
    def for_brand(cls, brand, threshold: float | None = None, max_attempts: int | None = None) -> GatePolicy:
        """The brand profile's gate (``None``: the defaults), each value overridden when given."""
        return cls(threshold=float(threshold if threshold is not None else
                                   brand.clip_threshold if brand is not None else cls.threshold),
                   max_attempts=int(max_attempts if max_attempts is not None else
                                    brand.max_attempts if brand is not None else cls.max_attempts))


@dataclass(frozen=True)
class Gate:
    """What the gate does for one brand: the policy, the trigger token refined prompts keep first, and where the
    values came from (shown in job logs and on the page)."""

    policy: GatePolicy
    trigger: str = ""
    source: str = "defaults"  # "brand <name>", "brand <name>, overridden", "overridden" or "defaults"
    scorer: str = ""  # the brand profile's scorer reference ("" : the configured scorer; workbench.models.scorers)


def brand_profile(name: str):
    """The brand profile called ``name`` from the prompt library, or None ('' or a profile deleted since)."""
    if not name:
        return None
    from workbench.prompts import load_library

    return load_library().brands.get(name)


def gate_for(brand: str, threshold: float | None = None, max_attempts: int | None = None) -> Gate:
    """The gate for a prompt of ``brand``: its profile's threshold and attempts unless overridden, its trigger."""
    profile = brand_profile(brand)
    overridden = threshold is not None or max_attempts is not None
    source = (f"brand {profile.name}" + (", overridden" if overridden else "")) if profile else (
        "overridden" if overridden else "defaults")
    return Gate(GatePolicy.for_brand(profile, threshold, max_attempts), profile.trigger if profile else "", source,
                profile.scorer if profile else "")


class BrandGates:
    """The gates of a batch, one per brand met (profiles read once), with the batch's overrides
    (``BatchConfig.gate``: a ``threshold`` or ``max_attempts`` given there wins over every brand's)."""

    def __init__(self, threshold: float | None = None, max_attempts: int | None = None, device: str = "cpu",
                 scorer_fixed: bool = False):
        self.threshold, self.max_attempts, self.device = threshold, max_attempts, device
        self.scorer_fixed = scorer_fixed  # the batch names its scorer (``BatchConfig.gate["scorer"]``)
        self._gates: dict[str, Gate] = {}
        self._scorers: dict[str, ClipScorer] = {}

    def __call__(self, brand: str) -> Gate:
        if brand not in self._gates:
            self._gates[brand] = gate_for(brand, self.threshold, self.max_attempts)
        return self._gates[brand]

    def scorer(self, brand: str, default: ClipScorer) -> ClipScorer:
        """The brand profile's scorer (each loaded once), or ``default`` (the batch's: the configured scorer, or
        one the batch names, which then wins over every brand's)."""
        ref = self(brand).scorer
        if self.scorer_fixed or not ref or ref == default.ref:
            return default
        if ref not in self._scorers:
            self._scorers[ref] = ClipScorer.from_ref(ref, self.device)
        return self._scorers[ref]


class ClipScorer:
    """Cosine similarity between images and texts with an open_clip model (model passed in, or loaded by ref)."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str = "cpu", ref: str = ""):
        self.model, self.preprocess, self.tokenizer, self.device, self.ref = model, preprocess, tokenizer, device, ref

    @classmethod
    def from_ref(cls, ref: str, device: str = "cpu") -> ClipScorer:
        """``ref``: an open_clip reference or ``tuned:<name>`` (``models.scorers``); ``ref`` records the label."""
        from workbench.models.scorers import load_scorer

        s = load_scorer(ref, device=device)
        return cls(*s.triple, device=device, ref=s.label)

    def cosines(self, image, texts: list[str]) -> list[float]:
        """The image against each text: the same cosine as the Evaluate page's (``models.clip.clip_cosines``)."""
        from workbench.models.clip import clip_cosines

        return clip_cosines(self.model, self.preprocess, self.tokenizer, [image], texts, self.device).tolist()

    def score(self, image, text: str) -> float:
        return self.cosines(image, [text])[0]


def split_attributes(prompt: str) -> list[str]:
    return [part.strip() for part in prompt.split(",") if part.strip()]


def refine_prompt(prompt: str, image, scorer: ClipScorer, trigger: str = "") -> str:
    """Move the attributes the image shows least to the front (the trigger token, if first, stays first)."""
    parts = split_attributes(prompt)
    head: list[str] = []
    if parts and trigger and parts[0].split()[0] == trigger:
        head, parts = parts[:1], parts[1:]
    if len(parts) < 2:
        return prompt
    scores = scorer.cosines(image, parts)
    order = sorted(range(len(parts)), key=lambda i: (scores[i], i))
    return ", ".join(head + [parts[i] for i in order])


@dataclass
class GuardedImage:
    """One requested image: every attempt with its score, and which one was kept."""

    attempts: list[GeneratedImage] = field(default_factory=list)

    @property
    def kept(self) -> GeneratedImage:
        return next(a for a in self.attempts if a.kept)

    @property
    def passed(self) -> bool:
        return self.kept.provenance.get("gate_passed", False)


def generate_guarded(actor: Actor, assembled: AssembledPipeline, params: GenerationParams, scorer: ClipScorer,
                     policy: GatePolicy,
                     batch: str = "adhoc", *, trigger: str = "", record: bool = True,
                     replaces_id: int | None = None) -> list[GuardedImage]:
    """Generate ``params.num_images`` images through the gate as ``user`` (``generate`` permission). All attempts are
    saved; each is scored against the prompt as asked (not the refined one), so scores compare across attempts."""
    actor = require(actor, "generate")
    params.check()
    results = []
    for i in range(params.num_images):
        base_seed = params.seed + i
        prompt = params.prompt
        guarded = GuardedImage()
        for attempt in range(1, policy.max_attempts + 1):
            if attempt >= policy.refine_from_attempt and guarded.attempts:
                prompt = refine_prompt(params.prompt, guarded.attempts[-1].image, scorer, trigger)
            seed = (base_seed + (attempt - 1) * RETRY_SEED_STRIDE) % 2**32
            img = generate(actor, assembled, replace(params, prompt=prompt, seed=seed, num_images=1, batch_size=1),
                           batch=batch, attempt=attempt, record=False, base_seed=base_seed)[0]
            img.clip_score = scorer.score(img.image, params.prompt)
            img.provenance.update(clip_score=img.clip_score, clip_scorer=scorer.ref, gate_threshold=policy.threshold,
                                  asked_prompt=params.prompt)
            guarded.attempts.append(img)
            if img.clip_score >= policy.threshold:
                break
        best = max(guarded.attempts, key=lambda a: (a.clip_score, -a.attempt))
        for a in guarded.attempts:
            a.kept = a is best
            a.provenance["kept"] = a.kept
            a.provenance["gate_passed"] = best.clip_score >= policy.threshold
            # the PNG carries the gate's verdict too
            write_png(a.path, a.image, a1111_parameters(a.provenance, assembled.sampler_name), a.provenance)
        if record:  # every attempt of the image in one transaction: a batch killed meanwhile has all or none,
            with session_scope() as s:  # so its rerun remakes the image once instead of recording attempts twice
                for a in guarded.attempts:
                    a.generation_id = record_generation(actor.username, a, batch, replaces_id=replaces_id, session=s)
        results.append(guarded)
    return results
