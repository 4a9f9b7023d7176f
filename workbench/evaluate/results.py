"""Reading evaluations: the runs, their aggregates (one row per run, image set and metric, with the display string
the page, the CLI and the CSV show) and per-image rows for the drill-down; CSV export of the aggregates.

    result_rows([eval_id])                          # aggregates, with intervals and reliability
    export_csv([eval_id], "ckpt-sweep.csv")
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workbench.csvsafe import csv_text, write_csv
from workbench.db import session_scope
from workbench.evaluate.cards import METRIC_CARDS, METRIC_GROUPS
from workbench.evaluate.config import EvaluationError
from workbench.evaluate.tables import Evaluation, EvaluationImage, EvaluationResult


def list_evaluations(limit: int = 50) -> list[Evaluation]:
    with session_scope() as s:
        return list(s.scalars(select(Evaluation).order_by(Evaluation.id.desc()).limit(limit)))


def get_evaluation(evaluation_id: int) -> Evaluation:
    with session_scope() as s:
        row = s.get(Evaluation, evaluation_id)
    if row is None:
        raise EvaluationError(f"no evaluation with id {evaluation_id}")
    return row


def status_of(e: Evaluation) -> str:
    """The evaluation's status, or its job's when the job ended without the run recording it (a killed process)."""
    if e.status in ("queued", "running") and e.job_id:
        from workbench.jobs import JobError, get_job

        try:
            job = get_job(e.job_id)
        except JobError:
            return e.status
        if job.status in ("failed", "stopped"):
            return job.status
    return e.status


def unavailable_text(detail: dict[str, Any]) -> str:
    u = detail.get("unavailable") or {}
    return f"unavailable: {u.get('ref', '?')} — run `workbench models pull`"


def display_value(r: EvaluationResult | dict[str, Any]) -> str:
    """How a result reads in a table: the number with its interval and reliability, or why there is none."""
    get = r.get if isinstance(r, dict) else lambda k, d=None: getattr(r, k, d)
    status, detail = get("status"), get("detail") or {}
    if status == "unavailable":
        return unavailable_text(detail)
    if status != "ok" or get("value") is None:
        return f"no data: {detail.get('why', '')}".rstrip(": ")
    value, lo, hi = get("value"), get("ci_low"), get("ci_high")
    text = f"{value:.4g}"
    if lo is not None and hi is not None:
        text += f" [{lo:.4g}, {hi:.4g}]"
    if get("reliable") is False:
        text += f" · unreliable: n={get('n')}"
    return text


def result_rows(evaluation_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every aggregate of the given runs, one dict per (run, image set, metric), ready for a table or CSV."""
    with session_scope() as s:
        evals = {e.id: e for e in s.scalars(select(Evaluation).where(Evaluation.id.in_(list(evaluation_ids))))}
        rows = s.scalars(select(EvaluationResult).where(EvaluationResult.evaluation_id.in_(list(evaluation_ids)))
                         .order_by(EvaluationResult.evaluation_id, EvaluationResult.id)).all()
    out = []
    for r in rows:
        e = evals[r.evaluation_id]
        card = METRIC_CARDS.get(r.metric)
        backbone = (e.backbones or {}).get(next((g for g, ms in METRIC_GROUPS.items() if r.metric in ms), ""), {})
        out.append({"evaluation": r.evaluation_id, "name": e.name, "image_set": r.image_set, "step": r.step,
                    "fine_tuned": (r.detail or {}).get("fine_tuned"), "metric": r.metric,
                    "title": card.title if card else r.metric, "status": r.status,
                    "value": r.value if r.status == "ok" else None, "ci_low": r.ci_low if r.status == "ok" else None,
                    "ci_high": r.ci_high if r.status == "ok" else None, "median": r.median, "top5": r.top5,
                    "n": r.n, "reliable": r.reliable, "display": display_value(r),
                    "higher_is_better": card.higher_is_better if card else None,
                    "backbone": backbone.get("ref", ""), "backbone_demo": bool(backbone.get("demo_model")),
                    "params": (r.detail or {}).get("params") or {}, "detail": r.detail or {}})
    return out


def image_rows(evaluation_id: int) -> list[dict[str, Any]]:
    """Per-image rows for the drill-down: path, prompt, provenance, every score and the OCR result."""
    with session_scope() as s:
        rows = s.scalars(select(EvaluationImage).where(EvaluationImage.evaluation_id == evaluation_id)
                         .order_by(EvaluationImage.id)).all()
    out = []
    for r in rows:
        ocr = r.ocr or {}
        out.append({"id": r.id, "image_set": r.image_set, "generation_id": r.generation_id, "image": r.image_path,
                    "prompt": r.prompt, "reference": r.reference_path, **{k: v for k, v in (r.scores or {}).items()},
                    "ocr_read": ocr.get("text"), "ocr_backend": ocr.get("backend"), "ocr_overlay": ocr.get("overlay"),
                    "provenance": r.provenance or {}})
    return out


CSV_COLUMNS = ["evaluation", "name", "image_set", "step", "metric", "status", "value", "ci_low", "ci_high", "median",
               "top5", "n", "reliable", "backbone", "display"]


def export_csv(evaluation_ids: Sequence[int], path: str | Path | None = None) -> str:
    """The aggregates of the given runs as CSV (written to ``path`` when given); returns the text."""
    rows = result_rows(evaluation_ids)
    if path is not None:
        return write_csv(path, CSV_COLUMNS, rows, lineterminator="\n")
    return csv_text(CSV_COLUMNS, rows, lineterminator="\n")


# -- training runs and sweeps -------------------------------------------------------------------------------------

def evaluation_scores(run_folder: str | Path) -> dict[str, float]:
    """Mean per-image scores (``eval_<metric>``) from the latest evaluation that scored images made with this run's
    LoRA or one of its checkpoints (their provenance names a file under the run's folder)."""
    from workbench.generate.tables import Generation

    folder = str(run_folder).rstrip("/") + "/"
    with session_scope() as s:
        rows = s.execute(select(EvaluationImage.evaluation_id, EvaluationImage.scores, Generation.loras)
                         .join(Generation, Generation.id == EvaluationImage.generation_id)).all()
    mine = [(e, scores) for e, scores, loras in rows
            if any(str(lora.get("path", "")).startswith(folder) for lora in loras or [])]
    if not mine:
        return {}
    latest = max(e for e, _ in mine)
    sums: dict[str, list[float]] = {}
    for e, scores in mine:
        for metric, value in (scores or {}).items() if e == latest else ():
            if isinstance(value, (int, float)) and value == value:  # numbers only, NaN left out
                sums.setdefault(metric, []).append(float(value))
    return {f"eval_{metric}": round(sum(v) / len(v), 4) for metric, v in sorted(sums.items())}


def sweep_rows(sweep_id: str) -> list[dict[str, Any]]:
    """``train.runs.sweep_table`` with each run's evaluation scores (``eval_<metric>``) beside its training columns."""
    from workbench.train.runs import run_dir, sweep_table

    return [{**row, **evaluation_scores(run_dir(row["run"]))} for row in sweep_table(sweep_id)]
