"""Publishing over HTTP: a JSON body read into typed records, and the answer per record.

The body is ``{"purpose": P, "records": [...]}`` (or ``"record": {...}`` for
one), dates and times as ISO 8601 strings. A record that does not fit its
schema refuses the whole request before anything is sent, and the answer
lists every such problem with a JSON Pointer to the field; records that fit
are decided, sealed and published as the Python library does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigex.exchange.protocol import JsonFieldError, TraceContext, from_json_record
from sigex.node.errors import (
    BrokerUnavailable,
    FieldProblem,
    InvalidRecords,
    MalformedRequest,
    UnknownPurpose,
)
from sigex.policies.compiled import CompiledPolicy
from sigex.producers.errors import ProducerError
from sigex.producers.publisher import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_BATCH,
    BrokerUnreachable,
    InvalidRecord,
    Publisher,
    PublishFailed,
    PublishResult,
    checked_fields,
    signal_uuid,
)
from sigex.schemas.catalogue import SignalSpec
from sigex.schemas.errors import SchemaError, SchemaViolation

#: how long a caller is asked to wait before trying again when the broker is down
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class PublishRequest:
    purpose: str
    records: tuple[dict[str, object], ...]
    #: the body had one "record" rather than a list of "records"
    single: bool = False

    def pointer(self, index: int) -> str:
        """The JSON Pointer of record ``index`` in the body."""
        return "/record" if self.single else f"/records/{index}"


def read_json(body: bytes) -> Any:
    """The body as JSON, or :class:`MalformedRequest` saying where it stops being JSON."""
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise MalformedRequest("the body is not UTF-8 text") from error
    except json.JSONDecodeError as error:
        raise MalformedRequest(
            f"the body is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    except RecursionError as error:
        raise MalformedRequest("the body is not JSON: nested too deeply") from error


def parse_publish(
    body: bytes, spec: SignalSpec, policy: CompiledPolicy, max_records: int = MAX_BATCH
) -> PublishRequest:
    """Read a publish body; every problem of shape or type is reported at once."""
    value = read_json(body)
    if not isinstance(value, dict):
        raise MalformedRequest("the body must be a JSON object with purpose and records")
    unknown = sorted(set(value) - {"purpose", "record", "records"})
    problems: list[FieldProblem] = [
        FieldProblem(f"/{_escape(name)}", "not a member of a publish request") for name in unknown
    ]
    purpose = value.get("purpose")
    if not isinstance(purpose, str):
        problems.append(FieldProblem("/purpose", "required: the purpose code, a string"))
    if ("record" in value) == ("records" in value):
        problems.append(FieldProblem("/records", "give either records (a list) or record"))
    raw = [value["record"]] if "record" in value else value.get("records")
    base = "/record" if "record" in value else "/records"
    if not isinstance(raw, list) or not raw:
        problems.append(FieldProblem(base, "must be a non-empty list of records"))
        raise MalformedRequest("the request does not have the shape of a publish", errors=problems)
    if len(raw) > max_records:
        problems.append(FieldProblem(base, f"at most {max_records} records per request"))
    if problems:
        raise MalformedRequest("the request does not have the shape of a publish", errors=problems)
    assert isinstance(purpose, str)
    if purpose not in policy.purposes:
        raise UnknownPurpose(
            f"purpose {purpose!r} is not in the policy (GET /v1/policy/explain)",
            errors=[FieldProblem("/purpose", "not a purpose of the policy")],
        )
    records: list[dict[str, object]] = []
    single = "record" in value
    for index, item in enumerate(raw):
        pointer = base if single else f"{base}/{index}"
        if not isinstance(item, dict):
            problems.append(FieldProblem(pointer, "must be a JSON object"))
            continue
        try:
            records.append(from_json_record(spec, item))
        except JsonFieldError as error:
            problems.append(FieldProblem(f"{pointer}/{_escape(error.field)}", error.rule))
    if problems:
        raise InvalidRecords(f"{len(problems)} problem(s) in the records", errors=problems)
    return PublishRequest(purpose, tuple(records), single)


def record_problems(
    spec: SignalSpec,
    sender: str,
    request: PublishRequest,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[FieldProblem]:
    """Every record's first problem (schema, identifiers, size, a signal_id twice)."""
    problems: list[FieldProblem] = []
    first_of: dict[object, int] = {}
    purpose = request.purpose
    for index, record in enumerate(request.records):
        pointer = request.pointer(index)
        try:
            checked_fields(spec, sender, purpose, record, max_message_bytes)
            signal_id = signal_uuid(spec, record)
        except SchemaViolation as violation:
            problems.append(FieldProblem(f"{pointer}/{_escape(violation.field)}", violation.rule))
            continue
        except (SchemaError, ProducerError) as error:
            problems.append(FieldProblem(pointer, str(error)))
            continue
        if signal_id is not None and first_of.setdefault(signal_id, index) != index:
            problems.append(
                FieldProblem(
                    f"{pointer}/signal_id",
                    f"the signal_id of record {first_of[signal_id]} again; each signal once",
                )
            )
    return problems


class PublishingDesk:
    """One Publisher for the node, used by one request at a time.

    The Publisher is made by :meth:`connect` (the node's connecting thread);
    until it is there, a publish is answered 503 at once, never held while
    the Kafka client looks for a broker.
    """

    def __init__(self, party: str, factory: Callable[[], Publisher]) -> None:
        self.party = party
        self._factory = factory
        self._publisher: Publisher | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._publisher is not None

    def connect(self) -> None:
        """Make the Publisher; blocks while no broker answers (then BrokerUnavailable)."""
        try:
            publisher = self._factory()
        except BrokerUnreachable as error:
            raise BrokerUnavailable(
                "the broker did not answer", retry_after=RETRY_AFTER_SECONDS
            ) from error
        with self._lock:
            if self._closed or self._publisher is not None:
                publisher.close()
                return
            self._publisher = publisher

    def publish(
        self, spec: SignalSpec, request: PublishRequest, trace: TraceContext
    ) -> PublishResult:
        """Publish, or raise a NodeError that says what was and was not sent.

        Every record is checked first, so that the answer lists every problem (the
        Publisher, checking again, would stop at the first).
        """
        problems = record_problems(spec, self.party, request)
        if problems:
            raise InvalidRecords(
                f"{len(problems)} record(s) do not fit; nothing was published", errors=problems
            )
        with self._lock:
            publisher = self._publisher
            if publisher is None:
                raise BrokerUnavailable(
                    "the node is not connected to the broker; nothing was published",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            try:
                return publisher.publish(spec.name, request.purpose, request.records, trace)
            except InvalidRecord as error:  # checked above; kept so nothing slips through
                raise InvalidRecords(
                    f"record {error.index} does not fit; nothing was published",
                    errors=[FieldProblem(request.pointer(error.index), str(error.cause))],
                ) from error
            except PublishFailed as failure:
                sent = sorted(failure.sent)
                raise BrokerUnavailable(
                    f"the broker took {len(sent)} of {len(request.records)} record(s) before it "
                    "failed; send the request again (with the same Idempotency-Key): records "
                    "already sent are refused by the gateway as copies, never delivered twice",
                    retry_after=RETRY_AFTER_SECONDS,
                    extra={
                        "sent": sent,
                        "not_sent": [i for i in range(len(request.records)) if i not in sent],
                    },
                ) from failure

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None


def publish_answer(
    spec: SignalSpec, purpose: str, trace: TraceContext, result: PublishResult
) -> dict[str, Any]:
    """The answer to a publish: per record (by index), its message id or the reasons."""
    rows: list[dict[str, Any]] = [
        {
            "index": item.index,
            "status": "published",
            "message_id": item.message_id,
            "trace_id": item.trace_id,
            "recipients": list(item.recipients),
        }
        for item in result.published
    ]
    rows += [
        {
            "index": item.index,
            "status": "refused",
            "reason_codes": list(item.reason_codes),
            "reasons": [{"code": r.code, "text": r.text} for r in item.reasons],
        }
        for item in result.refused
    ]
    rows.sort(key=lambda row: int(row["index"]))
    return {
        "signal": spec.name,
        "purpose": purpose,
        "trace_id": trace.trace_id,
        "published": len(result.published),
        "refused": len(result.refused),
        "results": rows,
    }


def _escape(name: str) -> str:
    """A member name as a JSON Pointer reference token (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")
