"""The node's errors: each one is an RFC 9457 problem with a status, a type and a title.

Every message names fields, rules and limits; none carries a field's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sigex.errors import SigexError

#: the base of every problem type's URI; the page docs/partner-node.md explains each one
PROBLEM_BASE = "https://sigex.example/problems/"


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with the request, pointed at with a JSON Pointer (RFC 6901)."""

    pointer: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.detail}


class NodeError(SigexError):
    """A request the node answers with a problem (``application/problem+json``)."""

    status = 500
    kind = "internal"
    title = "The node could not answer"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldProblem] = (),
        retry_after: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)
        self.retry_after = retry_after
        self.extra: Mapping[str, Any] = extra or {}

    def problem(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors:
            body["errors"] = [problem.as_json() for problem in self.errors]
        body.update(self.extra)
        return body


class MalformedRequest(NodeError):
    status = 400
    kind = "malformed-request"
    title = "The request is not well-formed"


class InvalidRecords(NodeError):
    status = 422
    kind = "invalid-records"
    title = "A record does not fit its signal's schema; nothing was published"


class UnknownSignal(NodeError):
    status = 404
    kind = "unknown-signal"
    title = "No such signal in the catalogue"


class UnknownPurpose(NodeError):
    status = 422
    kind = "unknown-purpose"
    title = "No such purpose in the policy"


class NotAllowed(NodeError):
    status = 403
    kind = "client-not-allowed"
    title = "This client may not make this call"


class RequestTooLarge(NodeError):
    status = 413
    kind = "request-too-large"
    title = "The request body is larger than the node takes"


class TooManyRequests(NodeError):
    status = 429
    kind = "too-many-requests"
    title = "Too many requests from this client"


class IdempotencyKeyReused(NodeError):
    status = 422
    kind = "idempotency-key-reused"
    title = "This Idempotency-Key was used for a different request"


class IdempotentRequestInProgress(NodeError):
    status = 409
    kind = "request-in-progress"
    title = "A request with this Idempotency-Key is still being answered"


class BrokerUnavailable(NodeError):
    status = 503
    kind = "broker-unavailable"
    title = "The exchange's broker is not reachable now"


class NotFound(NodeError):
    status = 404
    kind = "not-found"
    title = "No such resource"


class MethodNotAllowed(NodeError):
    status = 405
    kind = "method-not-allowed"
    title = "The resource does not take this method"
