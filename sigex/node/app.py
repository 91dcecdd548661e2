"""The node's HTTP interface (Starlette): routes, problems, limits, logging.

Every request is answered with JSON or an RFC 9457 problem, never a stack
trace; each one is logged with the client's name, the route, the status and
the time it took (no body, no field value). Blocking work (sealing and
publishing) runs in worker threads; receiving waits on the inbox without
holding one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sigex.exchange.protocol import ProtocolError, TraceContext
from sigex.logs import get_logger
from sigex.node.access import client_of
from sigex.node.deliveries import delivery_json
from sigex.node.errors import (
    BrokerUnavailable,
    FieldProblem,
    MalformedRequest,
    MethodNotAllowed,
    NodeError,
    NotAllowed,
    NotFound,
    RequestTooLarge,
    UnknownPurpose,
    UnknownSignal,
)
from sigex.node.idempotency import check_key
from sigex.node.openapi import PROBLEM_JSON
from sigex.node.publishing import parse_publish, publish_answer, read_json
from sigex.node.service import PartnerNode
from sigex.policies.decide import DecisionRequest, decide
from sigex.policies.errors import PolicyError
from sigex.schemas.errors import UnknownSchema

_log = get_logger(__name__)
TRACE_HEADER = "traceparent"
DEFAULT_WAIT_SECONDS = 20.0
MAX_WAIT_SECONDS = 60.0
ACK_TIMEOUT_SECONDS = 30.0

Endpoint = Callable[[Request, PartnerNode, str], Awaitable[Response]]


def problem_response(error: NodeError, instance: str) -> JSONResponse:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        error.problem(instance),
        status_code=error.status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def trace_of(request: Request) -> TraceContext:
    """The caller's W3C trace context, or a new one when it sent none (or a malformed one)."""
    header = request.headers.get(TRACE_HEADER)
    if header:
        try:
            return TraceContext.parse(header)
        except ProtocolError:
            _log.info("node.traceparent_ignored", reason="malformed")
    return TraceContext.new()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise RequestTooLarge(f"the body may be at most {limit} bytes")
        except ValueError as error:
            raise MalformedRequest("Content-Length is not a number") from error
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the body may be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def endpoint(route: str, handler: Endpoint, *, limited: bool = True) -> Any:
    """A Starlette endpoint around ``handler``: client, rate limit, problems, log, metrics."""

    async def run(request: Request) -> Response:
        node: PartnerNode = request.app.state.node
        client = client_of(request.scope)
        started = time.perf_counter()
        try:
            if limited:
                node.limiter.take(client)
            response = await handler(request, node, client)
        except NodeError as error:
            response = problem_response(error, request.url.path)
        except Exception as error:  # never a stack trace to the caller
            _log.error(
                "node.request_failed", route=route, client=client, error=type(error).__name__
            )
            response = problem_response(
                NodeError("the node failed to answer; its log names the error type"),
                request.url.path,
            )
        elapsed = time.perf_counter() - started
        node.metrics.requests.labels(route=route, status=str(response.status_code)).inc()
        node.metrics.duration.labels(route=route).observe(elapsed)
        _log.info(
            "node.request",
            client=client,
            method=request.method,
            route=route,
            status=response.status_code,
            ms=round(elapsed * 1000, 1),
        )
        return response

    return run


# -- publishing ----------------------------------------------------------------------------------


async def publish(request: Request, node: PartnerNode, client: str) -> Response:
    name = request.path_params["signal"]
    try:
        spec = node.catalogue.signal(name)
    except UnknownSchema as error:
        raise UnknownSignal(
            f"no signal {name!r}; the catalogue has {', '.join(node.catalogue.names())}"
        ) from error
    node.grants.check(client, spec.name)
    body = await read_body(request, node.settings.max_body_bytes)
    trace = trace_of(request)
    key = request.headers.get("idempotency-key")
    if key is None:
        status, answer = await _publish_once(node, spec.name, body, trace)
        return _answer(status, answer, trace)
    check_key(key)
    fingerprint = hashlib.sha256(spec.name.encode() + b"\n" + body).hexdigest()
    stored = await run_in_threadpool(node.idempotency.begin, client, key, fingerprint)
    if stored is not None:
        response = _answer(stored.status, stored.body, trace)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        status, answer = await _publish_once(node, spec.name, body, trace)
    except NodeError as error:
        await run_in_threadpool(
            node.idempotency.finish, client, key, error.status, error.problem(request.url.path)
        )
        raise
    except BaseException:
        await run_in_threadpool(node.idempotency.finish, client, key, 500, {})
        raise
    await run_in_threadpool(node.idempotency.finish, client, key, status, answer)
    return _answer(status, answer, trace)


def _answer(status: int, body: dict[str, Any], trace: TraceContext) -> JSONResponse:
    media = PROBLEM_JSON if status >= 400 else "application/json"
    return JSONResponse(
        body, status_code=status, media_type=media, headers={TRACE_HEADER: trace.header().decode()}
    )


async def _publish_once(
    node: PartnerNode, signal: str, body: bytes, trace: TraceContext
) -> tuple[int, dict[str, Any]]:
    spec = node.catalogue.signal(signal)
    parsed = parse_publish(body, spec, node.policy)
    try:
        result = await run_in_threadpool(node.desk.publish, spec, parsed, trace)
    except NodeError:
        node.metrics.records.labels(outcome="invalid").inc(len(parsed.records))
        raise
    node.metrics.records.labels(outcome="published").inc(len(result.published))
    node.metrics.records.labels(outcome="refused").inc(len(result.refused))
    return 200, publish_answer(spec, parsed.purpose, trace, result)


# -- receiving -----------------------------------------------------------------------------------


def _number(request: Request, name: str, default: float, low: float, high: float) -> float:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError as error:
        raise MalformedRequest(
            f"query parameter {name} must be a number", extra={"parameter": name}
        ) from error
    if not low <= value <= high:
        raise MalformedRequest(
            f"query parameter {name} must be between {low:g} and {high:g}",
            extra={"parameter": name},
        )
    return value


async def deliveries(request: Request, node: PartnerNode, client: str) -> Response:
    if not node.receives:
        raise NotAllowed(f"{node.party} receives no signals under any agreement")
    purposes = frozenset(request.query_params.getlist("purpose"))
    unknown = sorted(purposes - set(node.policy.purposes))
    if unknown:
        raise UnknownPurpose(f"purpose {unknown[0]!r} is not in the policy")
    signals = frozenset(request.query_params.getlist("signal"))
    missing = sorted(s for s in signals if s not in node.catalogue)
    if missing:
        raise UnknownSignal(f"no signal {missing[0]!r}")
    limit = int(_number(request, "max", 100, 1, 500))
    wait = _number(request, "wait", DEFAULT_WAIT_SECONDS, 0, MAX_WAIT_SECONDS)
    deadline = time.monotonic() + wait
    while True:
        changed = node.changed  # taken before looking: a change after this wakes us
        lent = node.inbox.lease(limit, client, purposes=purposes, signals=signals)
        remaining = deadline - time.monotonic()
        if lent or remaining <= 0:
            break
        if node.pump.problem is not None and not wait:
            break
        expiry = node.inbox.next_expiry()
        timeout = min(remaining, 1.0 if expiry is None else max(expiry, 0.01))
        with suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
    if not lent and node.pump.problem is not None:
        raise BrokerUnavailable(f"the node cannot receive now ({node.pump.problem})", retry_after=5)
    node.metrics.deliveries.labels(event="lent").inc(len(lent))
    if lent:
        _log.info(
            "node.lent",
            client=client,
            count=len(lent),
            message_ids=[item.signal.message_id for item in lent],
        )
    return JSONResponse(
        {
            "deliveries": [delivery_json(item) for item in lent],
            "lease_seconds": node.inbox.lease_seconds,
        }
    )


async def acknowledge(request: Request, node: PartnerNode, client: str) -> Response:
    body = read_json(await read_body(request, node.settings.max_body_bytes))
    ids = body.get("message_ids") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or set(body) != {"message_ids"}
        or not isinstance(ids, list)
        or not 0 < len(ids) <= 1000
        or not all(isinstance(i, str) and 0 < len(i) <= 200 for i in ids)
    ):
        raise MalformedRequest(
            'the body must be {"message_ids": [...]} with 1 to 1000 message ids',
            errors=[FieldProblem("/message_ids", "a list of 1 to 1000 message ids (strings)")],
        )
    future = node.inbox.acknowledge(ids)
    try:
        result = await asyncio.wait_for(asyncio.wrap_future(future), ACK_TIMEOUT_SECONDS)
    except (TimeoutError, Exception) as error:
        raise BrokerUnavailable(
            "the acknowledgement could not be put on record; the signals are offered again",
            retry_after=5,
        ) from error
    node.metrics.deliveries.labels(event="acknowledged").inc(len(result.acknowledged))
    _log.info(
        "node.acknowledged",
        client=client,
        count=len(result.acknowledged),
        unknown=len(result.unknown),
    )
    return JSONResponse(
        {"acknowledged": list(result.acknowledged), "unknown": list(result.unknown)}
    )


# -- policy and operations -----------------------------------------------------------------------


async def explain(request: Request, node: PartnerNode, client: str) -> Response:
    query = request.query_params
    missing = [n for n in ("sender", "signal", "recipient", "purpose") if not query.get(n)]
    if missing:
        raise MalformedRequest(
            f"query parameter(s) missing: {', '.join(missing)}",
            errors=[FieldProblem(f"/{name}", "required") for name in missing],
        )
    if query["signal"] not in node.catalogue:
        raise UnknownSignal(f"no signal {query['signal']!r}")
    policy = node.policy
    if query["purpose"] not in policy.purposes:
        raise UnknownPurpose(f"purpose {query['purpose']!r} is not in the policy")
    try:
        at = node.moment(query.get("at"))
    except PolicyError as error:
        raise UnknownPurpose(str(error)) from error
    classifications = frozenset(query.getlist("classification"))
    request_ = DecisionRequest(
        query["sender"], query["signal"], query["recipient"], query["purpose"], classifications
    )
    decision = decide(request_, policy, at)
    allowed = decision.allowed
    return JSONResponse(
        {
            "allowed": allowed,
            "sender": request_.sender,
            "signal": request_.signal,
            "recipient": request_.recipient,
            "purpose": request_.purpose,
            "on": policy.local_day(at).isoformat(),
            "policy_version": decision.policy_version,
            "policy_hash": decision.policy_hash,
            "agreement_id": decision.agreement_id,
            "agreement_version": decision.agreement_version,
            "legal_basis": decision.legal_basis,
            "fields": sorted(decision.fields) if allowed else [],
            "retention_days": decision.retention_days if allowed else None,
            "reasons": [{"code": r.code, "text": r.text} for r in decision.reasons],
        }
    )


async def openapi(request: Request, node: PartnerNode, client: str) -> Response:
    return JSONResponse(node.openapi)


async def livez(request: Request, node: PartnerNode, client: str) -> Response:
    alive = node.pump.alive
    return JSONResponse(
        {"status": "ok" if alive else "unavailable", "reasons": [] if alive else ["pump-stopped"]},
        status_code=200 if alive else 503,
    )


async def readyz(request: Request, node: PartnerNode, client: str) -> Response:
    reasons = node.not_ready()
    return JSONResponse(
        {"status": "unavailable" if reasons else "ok", "reasons": reasons},
        status_code=503 if reasons else 200,
    )


async def metrics(request: Request, node: PartnerNode, client: str) -> Response:
    for state, count in node.inbox.counts().items():
        node.metrics.inbox.labels(state=state).set(count)
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    Route("/v1/signals/{signal}", endpoint("publish", publish), methods=["POST"]),
    Route("/v1/deliveries", endpoint("deliveries", deliveries), methods=["GET"]),
    Route("/v1/deliveries/ack", endpoint("ack", acknowledge), methods=["POST"]),
    Route("/v1/policy/explain", endpoint("explain", explain), methods=["GET"]),
    Route("/openapi.json", endpoint("openapi", openapi, limited=False), methods=["GET"]),
    Route("/livez", endpoint("livez", livez, limited=False), methods=["GET"]),
    Route("/readyz", endpoint("readyz", readyz, limited=False), methods=["GET"]),
    Route("/metrics", endpoint("metrics", metrics, limited=False), methods=["GET"]),
]


async def _http_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    problem: NodeError
    if error.status_code == 405:
        problem = MethodNotAllowed(f"{request.method} is not a method of {request.url.path}")
    else:
        problem = NotFound(f"no resource at {request.url.path} (see /openapi.json)")
    return problem_response(problem, request.url.path)


def create_app(node: PartnerNode) -> Starlette:
    """The ASGI application of ``node``; the node starts and stops with it."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        node.attach(asyncio.get_running_loop())
        node.start()
        try:
            yield
        finally:
            await run_in_threadpool(node.stop)

    app = Starlette(
        routes=ROUTES,
        exception_handlers={HTTPException: _http_problem},
        lifespan=lifespan,
    )
    app.state.node = node
    return app
