"""Where templates, scene presets and brand profiles live, and loading them all at once.

Two roots, read in order, a later one overriding an earlier one by name: the shipped ``prompt_templates/`` folder
of this repository, then ``<workspace>/prompt_templates/`` where a team keeps its own (the page's editors save
there). In each root ``brands/*.yaml`` are brand profiles and every other ``*.yaml`` is a template or scene preset
(its ``kind``). A broken file is skipped and reported in ``Library.problems``; the others still load. Saving a template
needs the ``prompts`` permission, saving a brand profile ``settings`` (its forbidden terms and CLIP gate are policy).

    lib = load_library()
    lib.template("t-shirt"), lib.scene("studio-white"), lib.brand("northwind"), lib.problems
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.prompts.brands import BrandProfile, parse_brand
from workbench.prompts.templates import Template, parse_template
from workbench.files import write_text_atomic
from workbench.prompts.yamlio import Problem, PromptError
from workbench.db import audit, session_scope
from workbench.auth import Actor, require
from workbench.settings import Settings, get_settings
from workbench.yamlsafe import YamlRefused, read_yaml_file

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "prompt_templates"


def workspace_templates_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).path("prompt_templates")


def template_roots(settings: Settings | None = None) -> list[Path]:
    return [SHIPPED_DIR, workspace_templates_dir(settings)]


@dataclass
class Library:
    templates: dict[str, Template] = field(default_factory=dict)  # product templates by name
    scenes: dict[str, Template] = field(default_factory=dict)
    brands: dict[str, BrandProfile] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # files that did not load, and why

    def template(self, name: str) -> Template:
        return _pick(self.templates, name, "template")

    def scene(self, name: str) -> Template:
        return _pick(self.scenes, name, "scene preset")

    def brand(self, name: str) -> BrandProfile:
        return _pick(self.brands, name, "brand profile")

    def default_brand(self) -> str | None:
        """The profile a new batch starts with: the workspace's own (saved in the editor, or the demo's) before the
        shipped examples; None when there is no profile at all."""
        own = [name for name, b in self.brands.items() if Path(b.path).is_absolute()]  # shipped paths are relative
        return next(iter(own or self.brands), None)


def _pick(items: dict, name: str, what: str):
    if name not in items:
        known = ", ".join(sorted(items)) or "none"
        raise PromptError(f"unknown {what} {name!r} (known: {known})")
    return items[name]


def display_path(path: Path) -> str:
    """Shipped files relative to the repository (``prompt_templates/products/t-shirt.yaml``), others in full (a
    workspace inside the repository too, so a relative path always means a shipped file)."""
    resolved = path.resolve()
    if resolved.is_relative_to(SHIPPED_DIR.resolve()):
        return str(resolved.relative_to(SHIPPED_DIR.resolve().parent))
    return str(path)


def load_library(roots: Sequence[Path] | None = None, settings: Settings | None = None) -> Library:
    """Read every template, scene and brand profile under ``roots`` (default: shipped, then workspace)."""
    lib = Library()
    for root in roots if roots is not None else template_roots(settings):
        if not root.is_dir():
            continue
        seen: dict[str, str] = {}  # "kind:name" -> file, for duplicates within one root
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
            file = display_path(path)
            is_brand = path.relative_to(root).parts[0] == "brands"
            try:
                text = read_yaml_file(path)
                item = (parse_brand if is_brand else parse_template)(text, file, default_name=path.stem)
            except YamlRefused as exc:
                lib.problems.append(Problem(file, None, "", exc.message))
                continue
            except PromptError as exc:
                lib.problems.extend(exc.problems)
                continue
            except (OSError, UnicodeDecodeError) as exc:
                lib.problems.append(Problem(file, None, "", f"cannot read: {exc}"))
                continue
            kind = "brand" if is_brand else item.kind
            key = f"{kind}:{item.name}"
            if key in seen:
                lib.problems.append(Problem(file, None, "name", f"{kind} {item.name!r} is also defined in {seen[key]}"))
                continue
            seen[key] = file
            target = lib.brands if is_brand else lib.scenes if item.kind == "scene" else lib.templates
            target[item.name] = item
    for name, template in list(lib.templates.items()):
        if template.default_scene and template.default_scene not in lib.scenes:
            lib.problems.append(_unknown_scene(template))
            del lib.templates[name]
    return lib


def _unknown_scene(template: Template) -> Problem:
    return Problem(template.path, None, "default_scene", f"unknown scene preset {template.default_scene!r}")


# -- editors: validate, then save into the workspace -----------------------------------------------------------------


def save_template_text(actor: Actor, text: str, settings: Settings | None = None, *, name: str = "") -> Path:
    """Validate a template or scene written in the editor and save it as ``<workspace>/prompt_templates/
    {products,scenes}/<name>.yaml``, replacing a shipped one of the same name. Nothing is written if it is invalid.
    The audit log records who saved it, with the text before (the workspace's or shipped file, if any) and after.
    ``name``: the one being edited, for a text without ``name:`` (the shipped files take theirs from the file name)."""
    who = require(actor, "prompts", settings=settings)
    template = parse_template(text, "editor", name)
    if template.default_scene:
        lib = load_library(settings=settings)
        if template.default_scene not in lib.scenes:
            raise PromptError(_unknown_scene(template))
    folder = "scenes" if template.kind == "scene" else "products"
    return _save_audited(f"{folder}/{template.name}.yaml", text, who.username, f"prompts.save_{template.kind}",
                         settings)


def save_brand_text(actor: Actor, text: str, settings: Settings | None = None, *, name: str = "") -> Path:
    """Validate a brand profile written in the editor; save it as ``<workspace>/prompt_templates/brands/<name>.yaml``.
    Needs ``settings`` (an admin): a profile's forbidden terms and CLIP gate decide what reaches review, so the
    save is audited like a review policy. ``name`` as for ``save_template_text``."""
    who = require(actor, "settings", settings=settings)
    brand = parse_brand(text, "editor", name)
    return _save_audited(f"brands/{brand.name}.yaml", text, who.username, "prompts.save_brand", settings)


def _save_audited(rel: str, text: str, username: str, action: str, settings: Settings | None) -> Path:
    """Write ``<workspace>/prompt_templates/<rel>`` and its audit row (before: the file it replaces, the workspace's
    or else the shipped one; after: the new text) in one transaction: a failed write leaves no row, and the row
    commits only after the file is in place."""
    path = workspace_templates_dir(settings) / rel
    text = text if text.endswith("\n") else text + "\n"
    previous = next((f for f in (path, SHIPPED_DIR / rel) if f.is_file()), None)
    before = {"path": str(previous), "yaml": previous.read_text(encoding="utf-8")} if previous else None
    with session_scope(settings) as s:
        write_text_atomic(path, text)
        audit(s, username, action, "prompt_template", rel, before=before, after={"path": str(path), "yaml": text})
    return path


def source_text(path: str) -> str:
    """The YAML behind a loaded template or profile (``Template.path`` / ``BrandProfile.path``), for the editors."""
    p = Path(path)
    if not p.is_absolute():
        p = SHIPPED_DIR.parent / p
    return p.read_text(encoding="utf-8")
