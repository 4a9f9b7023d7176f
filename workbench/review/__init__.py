"""Review: users and roles, the approval queue with gate results, decisions with optimistic concurrency, the
feedback loop into prompt versions and regeneration, an append-only audit trail, and export for a DAM.

    from workbench.review import decide, export_approved, list_queue, require
    items = list_queue("ana")                                       # pending, gates passed or flagged
    decide("ana", items[0].generation_id, "approve", expected_seq=items[0].review_seq)
    export_approved("ana", brand="northwind")

Modules: auth (roles, permission table, users, passwords, OIDC mapping), tables (migration 0007), queue (listing,
gates, policies, checks), decisions (decide, bulk), feedback (request changes -> prompt version + regeneration),
export (zip + CSV/JSON), cli (``workbench users`` and ``workbench review``).
"""
from workbench.review.auth import (PERMISSIONS, ROLES, AuthError, OidcRoleMap, PermissionDenied, UserInfo, add_user,
                                   authenticate, create_first_admin, get_user, hash_password, list_users,
                                   needs_first_admin, oidc_sign_in, on_behalf_of, require, reset_password, set_active,
                                   set_role, system_actor, verify_password)
from workbench.review.decisions import DECISIONS, BulkResult, DecisionConflict, bulk_decide, decide
from workbench.review.export import ExportResult, export_approved
from workbench.review.feedback import FeedbackResult, request_changes
from workbench.review.queue import (AuditEntry, Decision, GateResult, Policy, QueueFilter, QueueItem, ReviewError,
                                    audit_trail, filter_options, get_item, get_policy, history, list_queue,
                                    record_check, set_policy)

__all__ = [
    "AuditEntry", "DECISIONS", "PERMISSIONS", "ROLES", "AuthError", "BulkResult", "Decision", "DecisionConflict",
    "ExportResult",
    "FeedbackResult", "GateResult", "OidcRoleMap", "PermissionDenied", "Policy", "QueueFilter", "QueueItem",
    "ReviewError", "UserInfo", "add_user", "audit_trail", "authenticate", "bulk_decide", "create_first_admin", "decide",
    "export_approved", "filter_options", "get_item", "get_policy", "get_user", "hash_password", "history",
    "list_queue", "list_users", "needs_first_admin", "oidc_sign_in", "on_behalf_of", "record_check",
    "request_changes", "require", "reset_password", "set_active", "set_policy", "set_role", "system_actor", "verify_password",
]
