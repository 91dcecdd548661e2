"""A witness's rounds against the audit API: fetch, check, co-sign, hand in.

The witness reaches the audit API over mutual TLS with its party's federation
certificate (the API knows it by its CN), reads the latest checkpoint as the C2SP
signed note the log signed, asks for a consistency proof from the last checkpoint it
co-signed, and hands in its cosignature (``POST /v1/cosignatures``). It never trusts
the API for anything it can check: the log's signature and the proof are checked by
:class:`~sigex.audit.witness.Witness` with the keys of the party directory.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sigex.audit.checkpoint import Checkpoint
from sigex.audit.cosignature import Cosignature
from sigex.audit.errors import AccessLogError, CheckpointError, WitnessError
from sigex.audit.witness import Alarm, Witness, WitnessAlarm
from sigex.exchange.access_record import parse_time
from sigex.identity import PartyIdentity
from sigex.logs import get_logger

_log = get_logger(__name__)


class ApiUnreachable(WitnessError):
    """The audit API did not answer at all (as opposed to answering with a refusal)."""


class AuditApiClient:
    """The few audit API calls a witness makes, as its party."""

    def __init__(self, base_url: str, identity: PartyIdentity, timeout: float = 10.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "https" or not url.hostname:
            raise WitnessError(f"the audit API is an https:// URL, not {base_url!r}")
        if identity.tls_certificate is None or identity.tls_key is None:
            raise WitnessError(f"{identity.code} has no TLS certificate to reach the audit API")
        if identity.ca_certificate is None:
            raise WitnessError(f"{identity.code} has no federation CA certificate")
        self._host, self._port = url.hostname, url.port or 443
        self._context = ssl.create_default_context(cafile=str(identity.ca_certificate))
        self._context.load_cert_chain(str(identity.tls_certificate), str(identity.tls_key))
        self._timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        connection = http.client.HTTPSConnection(
            self._host, self._port, context=self._context, timeout=self._timeout
        )
        try:
            payload = None if body is None else json.dumps(body).encode("utf-8")
            headers = {} if payload is None else {"Content-Type": "application/json"}
            connection.request(method, path, body=payload, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as error:
            raise ApiUnreachable(
                f"the audit API at {self._host}:{self._port} did not answer "
                f"({type(error).__name__})"
            ) from None
        finally:
            connection.close()
        try:
            values = json.loads(data)
        except ValueError:
            raise WitnessError(f"the audit API answered {path} with no JSON") from None
        if answer.status != 200:
            detail = values.get("error") if isinstance(values, dict) else None
            raise WitnessError(f"the audit API refused {path}: {answer.status} {detail}")
        return values

    def latest_checkpoint(self) -> Checkpoint:
        """The latest checkpoint, read from the signed note itself."""
        values = self._call("GET", "/v1/checkpoints/latest")
        try:
            if not isinstance(values, dict) or "note" not in values:
                raise CheckpointError("the latest checkpoint is not a C2SP signed note")
            issued_at = parse_time(str(values.get("issued_at")), "issued_at")
            return Checkpoint.from_note(str(values["note"]).encode("utf-8"), issued_at)
        except (AccessLogError, ValueError) as error:  # a checkpoint or a time out of form
            raise WitnessError(f"the latest checkpoint cannot be read: {error}") from None

    def consistency(self, old: int, new: int) -> list[bytes] | None:
        """The log's consistency proof between two sizes, or None if it gives none."""
        try:
            values = self._call("GET", f"/v1/consistency?old={old}&new={new}")
            return [bytes.fromhex(step) for step in values["proof"]]
        except (WitnessError, KeyError, TypeError, ValueError) as error:
            _log.warning("witness.no_proof", old=old, new=new, error=str(error))
            return None

    def hand_in(self, checkpoint: Checkpoint, cosignature: Cosignature) -> None:
        self._call(
            "POST",
            "/v1/cosignatures",
            {
                "tree_size": checkpoint.tree_size,
                "root": checkpoint.root.hex(),
                "cosignature": cosignature.to_dict(),
            },
        )


@dataclass(frozen=True, slots=True)
class WitnessRound:
    """What one round did: co-signed the checkpoint, raised an alarm, or neither (why)."""

    checkpoint: Checkpoint | None
    cosigned: bool
    alarm: Alarm | None
    detail: str
    #: the alarm is one raised before (its evidence was kept and published then)
    repeated: bool = False
    #: the audit API answered (with a checkpoint or a refusal such as "no checkpoint yet")
    answered: bool = True


def witness_round(client: AuditApiClient, witness: Witness) -> WitnessRound:
    """Fetch the latest checkpoint, check it against the last co-signed one, co-sign it."""
    try:
        checkpoint = client.latest_checkpoint()
    except WitnessError as error:
        answered = not isinstance(error, ApiUnreachable)
        return WitnessRound(None, False, None, str(error), answered=answered)
    span = witness.proof_span(checkpoint)
    proof = client.consistency(*span) if span is not None else []
    try:
        cosignature = witness.observe(checkpoint, proof)
        # once observed, the witness's state has moved on: a failed hand-in is retried by
        # the next round, which co-signs again
        client.hand_in(checkpoint, cosignature)
    except WitnessAlarm as alarm:
        return WitnessRound(checkpoint, False, alarm.alarm, str(alarm), alarm.repeated)
    except WitnessError as error:
        return WitnessRound(checkpoint, False, None, str(error))
    except OSError as error:  # its own folder: nothing co-signed, the next round tries again
        return WitnessRound(checkpoint, False, None, f"witness state: {error.strerror}")
    return WitnessRound(
        checkpoint, True, None, f"co-signed the checkpoint of {checkpoint.tree_size} records"
    )
