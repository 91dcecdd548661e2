"""An HTTP JSON API over the access log, for parties and auditors, over mutual TLS.

The client authenticates with its certificate from the federation CA; the
principal is the certificate's CN (a party code). A party sees only records
it sent or received; a party of kind ``auditor`` sees all. Every records
query needs at least one filter, as the Logboek Dataverwerkingen read API
asks. Endpoints (all answer JSON):

``GET  /v1/records?<filters>&limit=&after=``
    filters: subject (pseudonym), party, sender, recipient, purpose,
    agreement_id, signal, outcome, kind, trace_id, message_id, since, until.
``POST /v1/records/query``
    the same filters as a JSON object, plus ``bsn`` (pseudonymised by the
    server, so a BSN never appears in a URL or an access log line).
``GET  /v1/records/<leaf index>/proof[?tree_size=]``
    the record, its inclusion proof and the checkpoint it leads to.
``GET  /v1/checkpoints`` and ``GET /v1/checkpoints/latest``
    checkpoints; a C2SP one carries its signed note in ``note``.
``GET  /v1/checkpoints/latest/cosignatures``
    the latest checkpoint, the witnesses' cosignatures on record, the signed note with
    all of them, and (with a witness policy) which policy witnesses signed.
``GET  /v1/checkpoints/witnessed``
    the same for the checkpoint of the largest tree that meets the witness policy.
``POST /v1/cosignatures``
    a witness hands in its cosignature: ``{"tree_size", "root" (hex), "cosignature"}``;
    only its own, only of a checkpoint this log signed, only if it verifies.
``GET  /v1/consistency?old=&new=``

:class:`AuditApi` does the work without any transport, so it is tested
directly; :func:`make_server` puts it behind ``http.server`` with TLS.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sigex.audit.checkpoint import Checkpoint
from sigex.audit.console.consultations import (
    Consultation,
    ConsultationLog,
    ConsultationNotLogged,
    ThreadStores,
)
from sigex.audit.cosignature import Cosignature, with_cosignatures
from sigex.audit.errors import AccessLogError, CheckpointError, StoreError, WitnessPolicyError
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.witness_policy import Witnessing
from sigex.errors import InvalidIdentifier, SigexError
from sigex.exchange.access_record import EventKind, Outcome
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.http_tls import subject_attributes
from sigex.logs import get_logger

AUDITOR_KIND = "auditor"
MAX_LIMIT = 1000
MAX_BODY = 64 * 1024
#: how many of the newest checkpoints are searched for the latest witnessed one
RECENT_WITNESSED = 64
#: Seconds a client has, once its headers are in, to send the whole body (slow bodies are dropped).
BODY_TIMEOUT = 10.0
_DECIMAL = re.compile(r"^[0-9]{1,10}$")
_PROOF_PATH = re.compile(r"^/v1/records/(\d+)/proof$")
_TEXT_FILTERS = (
    "subject",
    "party",
    "sender",
    "recipient",
    "purpose",
    "agreement_id",
    "legal_basis",
    "signal",
    "trace_id",
    "message_id",
)
_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: dict[str, Any]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _BadRequest(400, f"filter {name!r}: not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AuditApi:
    """Answers API requests for an authenticated principal; knows nothing of HTTP or TLS."""

    def __init__(
        self,
        open_store: Callable[[], AccessLogStore],
        party_kinds: Mapping[str, str],
        pseudonymiser: SubjectPseudonymiser | None,
        consultations: ConsultationLog | None = None,
        witnessing: Witnessing | None = None,
    ) -> None:
        self._witnessing = witnessing
        self._open_store = open_store
        self._party_kinds = dict(party_kinds)
        self._pseudonymiser = pseudonymiser
        self._consultations = consultations
        self._stores = ThreadStores(open_store)

    def _consult(self, principal: str, view: str, filters: Iterable[str], subject: str | None,
                 message_id: str | None = None) -> None:  # fmt: skip
        """Write the question to the log before answering it (when a consultation log is set)."""
        if self._consultations is None:
            return
        consultation = Consultation(
            principal, view, tuple(filters), subject, message_id=message_id, channel="api"
        )
        self._consultations.write_reconnecting(self._stores, consultation)

    def _store(self) -> AccessLogStore:
        return self._stores.get()

    def _drop_store(self) -> None:
        self._stores.drop()

    def handle(self, principal: str | None, method: str, target: str, body: bytes) -> ApiResponse:
        try:
            return ApiResponse(200, self._route(principal, method, target, body))
        except ConsultationNotLogged as error:
            return ApiResponse(503, {"error": str(error)})
        except _BadRequest as refused:
            return ApiResponse(refused.status, {"error": refused.message})
        except StoreError as error:  # the database cannot be opened or read
            self._drop_store()
            _log.error("audit_api_unanswered", error=type(error).__name__)
            return ApiResponse(503, {"error": "the access log cannot be read right now"})
        except AccessLogError as error:
            return ApiResponse(400, {"error": str(error)})
        except Exception as error:  # a database driver's own error: reconnect next time
            self._drop_store()
            _log.error("audit_api_unanswered", error=type(error).__name__)
            return ApiResponse(503, {"error": "the access log cannot be read right now"})

    def _route(
        self, principal: str | None, method: str, target: str, body: bytes
    ) -> dict[str, Any]:
        if principal is None or principal not in self._party_kinds:
            raise _BadRequest(403, "unknown principal")
        visible_to = None if self._party_kinds[principal] == AUDITOR_KIND else principal
        url = urlsplit(target)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        endpoints: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
            ("GET", "/v1/records"): lambda: self._records(principal, params, visible_to),
            ("POST", "/v1/records/query"): lambda: self._records(
                principal, self._json_body(body), visible_to
            ),
            ("GET", "/v1/checkpoints"): lambda: {
                "checkpoints": [c.to_dict() for c in self._store().checkpoints()]
            },
            ("GET", "/v1/checkpoints/latest"): lambda: self._latest().to_dict(),
            ("GET", "/v1/checkpoints/latest/cosignatures"): lambda: self._witnessed(self._latest()),
            ("GET", "/v1/checkpoints/witnessed"): self._latest_witnessed,
            ("POST", "/v1/cosignatures"): lambda: self._add_cosignature(
                principal, self._json_object(body)
            ),
            ("GET", "/v1/consistency"): lambda: self._consistency(params),
        }
        endpoint = endpoints.get((method, url.path))
        if endpoint is not None:
            return endpoint()
        matched = _PROOF_PATH.fullmatch(url.path)
        if method == "GET" and matched:
            return self._proof(principal, int(matched.group(1)), params, visible_to)
        raise _BadRequest(404, "no such endpoint")

    def _latest(self) -> Checkpoint:
        latest = self._store().latest_checkpoint()
        if latest is None:
            raise _BadRequest(404, "no checkpoint yet")
        return latest

    def _consistency(self, params: Mapping[str, str]) -> dict[str, Any]:
        old, new = self._int(params, "old"), self._int(params, "new")
        proof = self._store().consistency_proof(old, new)
        return {"old_size": old, "new_size": new, "proof": [p.hex() for p in proof]}

    # -- witnesses ---------------------------------------------------------------------------

    def _witnessed(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """A checkpoint with the cosignatures on record and, with a policy, its verdict."""
        cosignatures = self._store().cosignatures(checkpoint)
        answer: dict[str, Any] = {
            "checkpoint": checkpoint.to_dict(),
            "cosignatures": [c.to_dict() for c in cosignatures],
        }
        if checkpoint.is_note:
            answer["note"] = with_cosignatures(checkpoint, cosignatures)
        if self._witnessing is not None:
            answer["witnesses"] = self._witnessing.verdict(checkpoint, cosignatures).to_dict()
        return answer

    def _latest_witnessed(self) -> dict[str, Any]:
        """The checkpoint of the largest tree whose cosignatures meet the witness policy."""
        if self._witnessing is None:
            raise _BadRequest(404, "this server has no witness policy")
        for checkpoint in reversed(self._store().recent_checkpoints(RECENT_WITNESSED)):
            answer = self._witnessed(checkpoint)
            if answer["witnesses"]["met"]:
                return answer
        raise _BadRequest(404, "no recent checkpoint has the co-signatures the policy needs")

    def _add_cosignature(self, principal: str, values: dict[str, Any]) -> dict[str, Any]:
        """A witness hands in its cosignature of a checkpoint this log signed."""
        if self._witnessing is None:
            raise _BadRequest(404, "this server has no witness policy")
        try:
            cosignature = Cosignature.from_dict(values.get("cosignature"))
            size, root = values.get("tree_size"), bytes.fromhex(str(values.get("root")))
        except (CheckpointError, ValueError):
            raise _BadRequest(400, "body: tree_size, root (hex) and cosignature") from None
        if cosignature.witness != principal:
            raise _BadRequest(403, "a witness hands in its own cosignatures only")
        store = self._store()
        checkpoint = store.checkpoint_at(size) if isinstance(size, int) else None
        if checkpoint is None or checkpoint.root != root or not checkpoint.is_note:
            raise _BadRequest(404, "this log signed no C2SP checkpoint of that size and root")
        try:
            self._witnessing.check(checkpoint, cosignature)
        except WitnessPolicyError as refused:
            raise _BadRequest(400, str(refused)) from None
        added = store.add_cosignature(checkpoint, cosignature)
        return {"added": added, **self._witnessed(checkpoint)}

    @staticmethod
    def _json_object(body: bytes) -> dict[str, Any]:
        try:
            values = json.loads(body or b"{}")
        except ValueError:
            raise _BadRequest(400, "body: not JSON") from None
        if not isinstance(values, dict):
            raise _BadRequest(400, "body: a JSON object")
        return values

    @classmethod
    def _json_body(cls, body: bytes) -> dict[str, str]:
        values = cls._json_object(body)
        if not all(isinstance(v, (str, int)) for v in values.values()):
            raise _BadRequest(400, "body: a JSON object of strings")
        return {str(k): str(v) for k, v in values.items()}

    @staticmethod
    def _int(params: Mapping[str, str], name: str, default: int | None = None) -> int:
        raw = params.get(name)
        if raw is None and default is not None:
            return default
        if raw is None or not raw.isdigit():
            raise _BadRequest(400, f"parameter {name!r}: a non-negative integer is required")
        return int(raw)

    def _filter(self, params: Mapping[str, str]) -> RecordFilter:
        allowed = {*_TEXT_FILTERS, "bsn", "outcome", "kind", "since", "until", "limit", "after"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise _BadRequest(400, f"unknown parameter(s): {', '.join(unknown)}")
        values: dict[str, Any] = {k: params[k] for k in _TEXT_FILTERS if params.get(k)}
        if params.get("bsn"):
            if self._pseudonymiser is None:
                raise _BadRequest(400, "filter 'bsn': this server has no pseudonym key")
            try:
                values["subject"] = self._pseudonymiser.pseudonym(params["bsn"])
            except InvalidIdentifier as invalid:
                raise _BadRequest(400, str(invalid)) from None
        try:
            if params.get("outcome"):
                values["outcome"] = Outcome(params["outcome"].upper())
            if params.get("kind"):
                values["kind"] = EventKind(params["kind"].upper())
        except ValueError:
            raise _BadRequest(400, "filter 'outcome' or 'kind': unknown value") from None
        for name in ("since", "until"):
            if params.get(name):
                values[name] = _parse_time(params[name], name)
        record_filter = RecordFilter(**values)
        if record_filter.is_empty():
            raise _BadRequest(400, "every query needs at least one filter")
        return record_filter

    def _records(
        self, principal: str, params: Mapping[str, str], visible_to: str | None
    ) -> dict[str, Any]:
        record_filter = self._filter(params)
        limit = min(self._int(params, "limit", 100), MAX_LIMIT)
        after = self._int(params, "after") if params.get("after") else None
        used = sorted(k for k, v in params.items() if v and k not in ("limit", "after"))
        self._consult(principal, "records", used, record_filter.subject)
        page = self._store().query(
            record_filter, limit=max(limit, 1), after=after, visible_to=visible_to
        )
        return {
            "records": [
                {"leaf_index": s.leaf_index, "record": s.record.to_dict()} for s in page.records
            ],
            "next_after": page.next_after,
        }

    def _proof(
        self, principal: str, leaf_index: int, params: Mapping[str, str], visible_to: str | None
    ) -> dict[str, Any]:
        store = self._store()
        latest = store.latest_checkpoint()
        if latest is None:
            raise _BadRequest(404, "no checkpoint yet")
        wanted = self._int(params, "tree_size", latest.tree_size)
        checkpoint = store.checkpoint_at(wanted)
        if checkpoint is None:
            raise _BadRequest(404, f"no checkpoint at tree size {wanted}")
        if leaf_index >= checkpoint.tree_size:
            raise _BadRequest(404, "record not covered by that checkpoint")
        page = store.query(RecordFilter(), limit=1, after=leaf_index - 1, visible_to=visible_to)
        if not page.records or page.records[0].leaf_index != leaf_index:
            raise _BadRequest(404, "no such record")
        record = page.records[0].record
        self._consult(principal, "proof", ("leaf_index",), record.subject, record.message_id)
        proof = store.inclusion_proof(leaf_index, checkpoint.tree_size)
        return {
            "leaf_index": leaf_index,
            "entry": page.records[0].record.to_bytes().decode("utf-8"),
            "proof": [p.hex() for p in proof],
            "checkpoint": checkpoint.to_dict(),
        }


def server_tls_context(certificate: Path, key: Path, ca_certificate: Path) -> ssl.SSLContext:
    """TLS 1.2+ with a client certificate from the federation CA required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(str(certificate), str(key))
        context.load_verify_locations(cafile=str(ca_certificate))
    except (OSError, ssl.SSLError):
        raise SigexError("serve: cannot load the TLS certificate, key or CA") from None
    return context


def body_length(headers: Any) -> int:
    """The declared length of a request body, refused unless it is one number in 0..MAX_BODY.

    ``headers`` is an ``email.message.Message`` as ``http.server`` parses them. A missing length
    (or a chunked body, which this server does not read) is 411; anything but plain decimal
    digits, a negative number or two different values is 400; more than ``MAX_BODY`` is 413.
    """
    if headers.get("Transfer-Encoding") is not None:
        raise _BadRequest(411, "a Content-Length is required (chunked bodies are not accepted)")
    values = {v.strip() for v in headers.get_all("Content-Length") or ()}
    if not values:
        raise _BadRequest(411, "a Content-Length is required")
    if len(values) > 1:
        raise _BadRequest(400, "Content-Length: given twice with different values")
    (value,) = values
    if not _DECIMAL.fullmatch(value):
        raise _BadRequest(400, "Content-Length: not a non-negative decimal number")
    length = int(value)
    if length > MAX_BODY:
        raise _BadRequest(413, f"body too large (at most {MAX_BODY} bytes)")
    return length


GENERATION_PREFIX = "key-generation-"


def principal_of(
    peer_certificate: Mapping[str, Any] | None,
    generations: Mapping[str, int] | None = None,
) -> str | None:
    """The CN of a verified peer certificate (as ``ssl.SSLSocket.getpeercert`` gives it).

    With ``generations`` (each party's current key generation, from the signed
    directory), a party's certificate counts only when it carries that
    generation (``OU=key-generation-<N>``): a certificate of a revoked
    generation authenticates nobody, as it does at the broker.
    """
    if not peer_certificate:
        return None
    attributes = subject_attributes(peer_certificate)
    common_name = attributes.get("commonName")
    if common_name is None or generations is None or common_name not in generations:
        return common_name
    unit = attributes.get("organizationalUnitName", "")
    if unit != f"{GENERATION_PREFIX}{generations[common_name]}":
        _log.warning("audit_api_stale_certificate", principal=common_name)
        return None
    return common_name


class _QuietServer(ThreadingHTTPServer):
    """Logs a failed connection (a refused handshake, a dropped client) as one line."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: Any) -> None:
        _log.warning("audit_api_connection_failed", client=str(client_address[0]))


class _SlowBody(Exception):
    """The client did not send its whole body before the deadline."""


def make_server(
    api: AuditApi,
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    body_timeout: float = BODY_TIMEOUT,
    generations: Callable[[], Mapping[str, int]] | None = None,
) -> ThreadingHTTPServer:
    """An HTTPS server for the API; call ``serve_forever()`` on it (``port=0`` picks one).

    ``generations`` gives each party's current key generation (asked per request, so a
    revocation counts at once); a certificate of an older generation is not authenticated.

    A POST body must declare its length (at most ``MAX_BODY``) and arrive in full within
    ``body_timeout`` seconds of the headers, however it is trickled; otherwise the client gets
    411/400/413 or 408 and the connection is closed.
    """

    class Handler(BaseHTTPRequestHandler):
        server_version = "sigex-audit"
        sys_version = ""
        timeout = 30  # seconds a client may take to finish its handshake and request

        def _read_body(self) -> bytes:
            length = body_length(self.headers)
            deadline = time.monotonic() + body_timeout
            chunks: list[bytes] = []
            missing = length
            while missing > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _SlowBody
                self.connection.settimeout(remaining)
                try:
                    chunk = self.rfile.read1(missing)
                except TimeoutError:
                    raise _SlowBody from None
                if not chunk:  # logged by the server as a failed connection
                    raise ConnectionResetError("the client closed before sending its body")
                chunks.append(chunk)
                missing -= len(chunk)
            return b"".join(chunks)

        def _answer(self, method: str) -> None:
            body = b""
            if method == "POST":
                try:
                    body = self._read_body()
                except _BadRequest as refused:
                    self.close_connection = True  # the body, if any, is left unread
                    self._send(ApiResponse(refused.status, {"error": refused.message}))
                    return
                except _SlowBody:
                    self.close_connection = True
                    _log.warning("audit_api_body_timeout", client=str(self.client_address[0]))
                    self.connection.settimeout(min(body_timeout, self.timeout))
                    self._send(ApiResponse(408, {"error": "the body did not arrive in time"}))
                    return
            connection = self.connection
            peer = connection.getpeercert() if isinstance(connection, ssl.SSLSocket) else None
            principal = principal_of(peer, generations() if generations is not None else None)
            response = api.handle(principal, method, self.path, body)
            _log.info(
                "audit_api_request",
                principal=principal,
                method=method,
                path=urlsplit(self.path).path,
                status=response.status,
            )
            self._send(response)

        def _send(self, response: ApiResponse) -> None:
            payload = json.dumps(response.body, sort_keys=True).encode("utf-8")
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are logged by _answer, without query strings

    server = _QuietServer((host, port), Handler)
    # the handshake runs in each request's thread (on its first read), not in the accept loop,
    # so a slow or silent client cannot hold up the others
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    return server
