"""Prompts: templates with slots and inline alternatives, scene presets, brand profiles and their rules, batch
expansion with CLIP token counts, and a versioned prompt library.

    from workbench.prompts import BatchSpec, expand_batch, load_library, save_batch
    lib = load_library()                                   # shipped prompt_templates/ + <workspace>/prompt_templates/
    batch = expand_batch(lib, BatchSpec("t-shirt", slots={"color": ["navy", "olive"]}, brand="northwind"))
    saved = save_batch("mia", batch, "SS26 tees")          # needs the prompts permission

Modules: syntax (the text language), templates / brands (YAML formats and validation), library (loading and saving
files), expand (batches), rules (brand checks), tokens (CLIP BPE counts), store (database), cli (``workbench prompts``).
"""
from workbench.prompts.brands import BrandProfile, LoraRef, parse_brand
from workbench.prompts.expand import (Batch, BatchSpec, PromptCandidate, PromptCheck, check_prompt, expand_batch,
                                      merge_negatives, render)
from workbench.prompts.library import Library, load_library, save_brand_text, save_template_text
from workbench.prompts.rules import BrandRules, RuleViolation
from workbench.prompts.store import (SavedBatch, StoredPrompt, batch_prompts, get_batch, get_prompt, list_batches,
                                     prompt_history, refine, save_batch, save_prompt)
from workbench.prompts.templates import Recommended, Slot, Template, parse_template
from workbench.prompts.tokens import TokenCount, count_tokens, count_tokens_batch
from workbench.prompts.yamlio import Problem, PromptError

__all__ = [
    "Batch", "BatchSpec", "BrandProfile", "BrandRules", "Library", "LoraRef", "Problem", "PromptCandidate",
    "PromptCheck", "PromptError", "Recommended", "RuleViolation", "SavedBatch", "Slot", "StoredPrompt", "Template",
    "TokenCount", "batch_prompts", "check_prompt", "count_tokens", "count_tokens_batch", "expand_batch", "get_batch",
    "get_prompt", "list_batches", "load_library", "merge_negatives", "parse_brand", "parse_template",
    "prompt_history", "refine", "render", "save_batch", "save_brand_text", "save_prompt", "save_template_text",
]
