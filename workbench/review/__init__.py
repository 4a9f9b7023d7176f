"""Review: the approval queue with gate results, decisions with optimistic concurrency, the feedback loop into
prompt versions and regeneration, the audit trail, and export for a DAM. Users, roles and the permission check live
one floor down, in ``workbench.auth``, so that a role check does not load this workflow.

    from workbench.review import decide, export_approved, list_queue
    items = list_queue("ana")                                       # pending, gates passed or flagged
    decide("ana", items[0].generation_id, "approve", expected_seq=items[0].review_seq)
    export_approved("ana", brand="northwind")

Modules: tables (migrations 0007, 0020, 0024), queue (listing, gates, policies, checks, audit trail, export
preview), decisions (decide, bulk, undo), presence (which image each approver has open, to steer them apart),
feedback (request changes -> prompt version + regeneration),
export (zip + CSV/JSON), cli (``workbench users`` and ``workbench review``).
"""
from workbench.review.decisions import (DECISIONS, UNDO_SECONDS, BulkResult, DecisionConflict, bulk_decide, decide,
                                        undo_decision)
from workbench.review.export import ExportResult, export_approved
from workbench.review.feedback import FeedbackResult, request_changes
from workbench.review.queue import (AuditEntry, Decision, ExportPreview, GateResult, Policy, QueueFilter, QueueItem,
                                    ReviewError, audit_options, audit_trail, export_preview, filter_options, get_item,
                                    get_policy, history, list_queue, record_check, set_policy)

__all__ = [
    "AuditEntry", "DECISIONS", "BulkResult", "Decision", "DecisionConflict", "ExportPreview", "ExportResult",
    "FeedbackResult", "GateResult", "Policy", "QueueFilter", "QueueItem", "ReviewError", "UNDO_SECONDS",
    "audit_options", "audit_trail", "bulk_decide", "decide", "export_approved", "export_preview", "filter_options",
    "get_item", "get_policy", "history", "list_queue", "record_check", "request_changes", "set_policy",
    "undo_decision",
]
