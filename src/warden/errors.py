"""One error root for the whole project, with stable snake_case codes.

Domain errors know nothing about HTTP: ``warden.api.errors`` holds the single mapping from
code to status. Callers outside the trust boundary get opaque codes for credential failures
(``token_invalid``); the precise subclass goes to the audit log.

    WardenError
    ├── InvalidParameterError        invalid_parameter
    │   ├── MalformedRequestError        malformed_request
    │   └── UnsupportedMediaTypeError    unsupported_media_type
    │   ├── LeaseTargetUnknownError      lease_target_unknown
    │   └── ReservedEntityTypeError      reserved_entity_type (a caller named a type Warden owns)
    ├── NotFoundError                not_found
    ├── ConflictError                conflict
    │   ├── TaskNotActiveError           task_not_active
    │   ├── ApprovalClosedError          approval_closed
    │   └── ApprovalDigestMismatchError  approval_digest_mismatch
    ├── StorageError                 storage_error
    │   └── DatabaseUnavailableError     database_unavailable (cannot reach, write or lock it)
    ├── CountersUnavailableError     counters_unavailable (the shared counter backend is down)
    ├── AuditUnavailableError        audit_unavailable (a record could not be made durable: refuse)
    ├── AuthenticationError          unauthenticated
    ├── PermissionDeniedError        forbidden
    │   ├── ApprovalNotPermittedError    approval_not_permitted
    │   ├── AgentCannotApproveError      agent_cannot_approve
    │   ├── CSRFError                    csrf_failed (a console request without its CSRF proof)
    │   └── AccessDeniedError            access_denied (a PEP enforcing a deny decision)
    │       └── ApprovalRequiredError        approval_required
    ├── ToolMismatchError            tool_mismatch (action and tool resource name two tools)
    ├── RateLimitedError             rate_limited
    ├── DecisionUnavailableError     decision_unavailable (the PDP could not answer: fail closed)
    ├── RemoteAPIError               remote_error (a Warden server answered with an error)
    ├── PayloadTooLargeError         payload_too_large
    ├── TokenInvalidError            token_invalid
    │   ├── TokenExpiredError            token_expired
    │   ├── TokenNotYetValidError        token_not_yet_valid
    │   ├── AlgorithmNotAllowedError     token_algorithm_not_allowed
    │   ├── KeyNotFoundError             token_key_not_found
    │   ├── AudienceMismatchError        token_audience_mismatch
    │   ├── IssuerMismatchError          token_issuer_mismatch
    │   ├── ForbiddenHeaderError         token_forbidden_header
    │   ├── TokenRevokedError            token_revoked
    │   └── TokenTooLargeError           token_too_large
    ├── AttestationError             attestation_failed
    ├── PolicyError                  policy_invalid
    ├── PolicyEvaluationError        authz_evaluation_error
    ├── DPoPProofError               invalid_dpop_proof
    ├── LeaseError                   lease_failed
    ├── KeySealError                 key_seal_failed
    ├── ExportError                  export_failed
    └── OAuthError                   (carries an RFC 6749 §5.2 error such as invalid_grant)
"""

from __future__ import annotations

from typing import Any


class WardenError(Exception):
    """Root of every error Warden raises on purpose."""

    code: str = "internal_error"

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class InvalidParameterError(WardenError):
    code = "invalid_parameter"


class NotFoundError(WardenError):
    code = "not_found"


class ConflictError(WardenError):
    code = "conflict"


class StorageError(WardenError):
    code = "storage_error"


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached, written or locked (down, full or read-only disk)."""

    code = "database_unavailable"


class CountersUnavailableError(WardenError):
    """The shared counter backend (budgets, rate windows, deny streaks) did not answer."""

    code = "counters_unavailable"


# errno values that mean the disk under the database refuses writes
_DISK_ERRNOS = frozenset({5, 13, 28, 30, 122})  # EIO, EACCES, ENOSPC, EROFS, EDQUOT
_DATABASE_MODULES = ("sqlalchemy", "psycopg", "sqlite3", "_sqlite3")


def is_database_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a database driver error or a disk that
    refuses writes — a fault that must reach callers as 503 ``database_unavailable`` rather
    than 500, wherever it escaped from. By module name: this root module imports no driver."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DatabaseUnavailableError):
            return True
        if isinstance(cur, OSError) and cur.errno in _DISK_ERRNOS:
            return True
        if any(c.__module__.split(".")[0] in _DATABASE_MODULES for c in type(cur).__mro__):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


class AuditUnavailableError(WardenError):
    """An audit record could not be made durable within the bound: the request is refused
    rather than answered unrecorded (docs/reliability.md, ADR 0090)."""

    code = "audit_unavailable"


class AuthenticationError(WardenError):
    code = "unauthenticated"


class PermissionDeniedError(WardenError):
    code = "forbidden"


class CSRFError(PermissionDeniedError):
    """A cookie-authenticated (console) request that changes state lacked its CSRF proof."""

    code = "csrf_failed"


class PayloadTooLargeError(WardenError):
    code = "payload_too_large"


class TokenInvalidError(WardenError):
    """A credential failed verification. Untrusted callers only ever see ``token_invalid``."""

    code = "token_invalid"


class TokenExpiredError(TokenInvalidError):
    code = "token_expired"


class TokenNotYetValidError(TokenInvalidError):
    code = "token_not_yet_valid"


class AlgorithmNotAllowedError(TokenInvalidError):
    code = "token_algorithm_not_allowed"


class KeyNotFoundError(TokenInvalidError):
    code = "token_key_not_found"


class AudienceMismatchError(TokenInvalidError):
    code = "token_audience_mismatch"


class IssuerMismatchError(TokenInvalidError):
    code = "token_issuer_mismatch"


class ForbiddenHeaderError(TokenInvalidError):
    code = "token_forbidden_header"


class TokenRevokedError(TokenInvalidError):
    code = "token_revoked"


class TokenTooLargeError(TokenInvalidError):
    code = "token_too_large"


class AttestationError(WardenError):
    """Workload identity evidence could not be verified or mapped to an agent."""

    code = "attestation_failed"


class PolicyError(WardenError):
    """A policy set (or schema, or entity file) is invalid; the last good set keeps serving."""

    code = "policy_invalid"


class PolicyEvaluationError(WardenError):
    """The PDP could not evaluate a request; callers turn this into a deny."""

    code = "authz_evaluation_error"


class ExportError(WardenError):
    """A sink (file or HTTP endpoint) did not take a batch; it is retried from its cursor."""

    code = "export_failed"


class OAuthError(WardenError):
    """An OAuth protocol error, rendered as RFC 6749 §5.2 ``{"error", "error_description"}``."""

    code = "oauth_error"

    def __init__(
        self, error: str, message: str, *, status: int = 400, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, detail=detail)
        self.error = error
        self.status = status


class MalformedRequestError(InvalidParameterError):
    """The request body is not what the endpoint reads (bad JSON, empty, wrong type)."""

    code = "malformed_request"


class UnsupportedMediaTypeError(InvalidParameterError):
    code = "unsupported_media_type"


class ApprovalClosedError(ConflictError):
    """The approval request is no longer pending (decided, expired, cancelled or used)."""

    code = "approval_closed"


class ApprovalDigestMismatchError(ConflictError):
    """The approver confirmed a different action than the one the request is bound to."""

    code = "approval_digest_mismatch"


class ApprovalNotPermittedError(PermissionDeniedError):
    """This caller may not decide this approval request (not an eligible approver)."""

    code = "approval_not_permitted"


class AgentCannotApproveError(PermissionDeniedError):
    """An agent credential was presented to decide an approval: agents never approve."""

    code = "agent_cannot_approve"


class RateLimitedError(WardenError):
    code = "rate_limited"


class AccessDeniedError(PermissionDeniedError):
    """A policy enforcement point refused an action because the decision was deny.

    ``decision`` is the AuthZEN response (``{"decision": false, "context": {...}}``);
    ``decision_id``, ``reason`` and ``policies`` are read from its context (``reason`` as
    ``core.reasons.deny_reason`` reads it: ``policy`` when the context names no refusal —
    spelled out here because this module is the bottom layer and imports nothing of Warden's).
    """

    code = "access_denied"

    def __init__(self, message: str, *, decision: dict[str, Any] | None = None) -> None:
        context = (decision or {}).get("context") or {}
        code = context.get("reason")
        reason = code if isinstance(code, str) and code and code != "allowed" else "policy"
        super().__init__(
            message,
            detail={
                "decision_id": context.get("decision_id"),
                "reason": reason,
                "policies": list(context.get("reasons") or []),
            },
        )
        self.decision = decision or {}
        self.decision_id: str | None = context.get("decision_id")
        self.reason: str = self.detail["reason"]
        self.policies: list[str] = self.detail["policies"]


class ApprovalRequiredError(AccessDeniedError):
    """The decision is deny until a human approves; ``approval_id`` names the request."""

    code = "approval_required"

    def __init__(
        self, message: str, *, approval_id: str, decision: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, decision=decision)
        self.approval_id = approval_id
        self.detail["approval_id"] = approval_id
        self.reason = self.detail["reason"] = "approval_required"


class DecisionUnavailableError(WardenError):
    """The PDP could not be reached or gave no valid answer; enforcement points deny."""

    code = "decision_unavailable"


class RemoteAPIError(WardenError):
    """A Warden server answered with an error; ``status`` and the server's ``error_code``."""

    code = "remote_error"

    def __init__(self, message: str, *, status: int, error_code: str) -> None:
        super().__init__(message, detail={"status": status, "error_code": error_code})
        self.status = status
        self.error_code = error_code


class LeaseTargetUnknownError(InvalidParameterError):
    """A lease was asked for a PostgreSQL target or downstream service that is not configured."""

    code = "lease_target_unknown"


class ReservedEntityTypeError(InvalidParameterError):
    """A caller supplied an entity type (or ``context.warden``) only Warden may produce."""

    code = "reserved_entity_type"


class ToolMismatchError(WardenError):
    """A tool call whose action and ``Tool`` resource name different tools."""

    code = "tool_mismatch"


class TaskNotActiveError(ConflictError):
    """The task has ended (or expired): nothing more can be done for it."""

    code = "task_not_active"


class DPoPProofError(WardenError):
    """A DPoP proof (RFC 9449) is missing, malformed, replayed, stale or for another request.

    ``detail["reason"]`` names the precise failure (for the audit log): missing, malformed,
    wrong_type, bad_algorithm, bad_key, bad_signature, wrong_method, wrong_uri, stale,
    wrong_token_hash, wrong_key, replayed.
    """

    code = "invalid_dpop_proof"


class LeaseError(WardenError):
    """A downstream system did not do what a lease needed (create or revoke)."""

    code = "lease_failed"


class KeySealError(WardenError):
    """Signing keys could not be sealed or unsealed (wrong or missing key-encryption key)."""

    code = "key_seal_failed"
