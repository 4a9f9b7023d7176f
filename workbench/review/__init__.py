"""Review: the approval queue with gate results, decisions with optimistic concurrency, the feedback loop into
prompt versions and regeneration, the audit trail, and export for a DAM. Users, roles and the permission check live
one floor down, in ``workbench.auth``, so that a role check does not load this workflow.

    from workbench.review import decide, export_approved, list_queue
    items = list_queue("ana")                                       # pending, gates passed or flagged
    decide("ana", items[0].generation_id, "approve", expected_seq=items[0].review_seq)
    export_approved("ana", brand="northwind")

Modules: tables (migration 0007), queue (listing,
gates, policies, checks), decisions (decide, bulk), feedback (request changes -> prompt version + regeneration),
export (zip + CSV/JSON), cli (``workbench users`` and ``workbench review``).
"""
from workbench.review.decisions import DECISIONS, BulkResult, DecisionConflict, bulk_decide, decide
from workbench.review.export import ExportResult, export_approved
from workbench.review.feedback import FeedbackResult, request_changes
from workbench.review.queue import (AuditEntry, Decision, GateResult, Policy, QueueFilter, QueueItem, ReviewError,
                                    audit_trail, filter_options, get_item, get_policy, history, list_queue,
                                    record_check, set_policy)

__all__ = [
    "AuditEntry", "DECISIONS", "BulkResult", "Decision", "DecisionConflict", "ExportResult", "FeedbackResult",
    "GateResult", "Policy", "QueueFilter", "QueueItem", "ReviewError", "audit_trail", "bulk_decide", "decide",
    "export_approved", "filter_options", "get_item", "get_policy", "history", "list_queue", "record_check",
    "request_changes", "set_policy",
]
