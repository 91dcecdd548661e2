"""Write the golden vectors of envelope version 1 (``envelope_v1.json``).

TEST-ONLY: every key in the vectors derives from a public seed and protects
nothing. Run once when the vectors are made; the committed file must never be
regenerated for version 1 (a test opens it forever). The HPKE ephemeral key is
random, so a second run gives different, equally valid, bytes.

    .venv/bin/python tests/vectors/generate_envelope_v1.py
"""

from __future__ import annotations

import json
from pathlib import Path

from sigex.envelope import Forwarding, OutgoingRecord, Sealer, project
from sigex.envelope.testing import (
    END,
    IN_TOPIC,
    NOW,
    OUT_TOPIC,
    START,
    counter_random,
    delivery_context,
    make_federation,
    submission_context,
)
from sigex.identity import _primitives as primitives

OUTPUT = Path(__file__).with_name("envelope_v1.json")
SEED = b"sigex golden vectors v1"


def _context(context: object) -> dict[str, str]:
    return {name: getattr(context, name) for name in context.__slots__}  # type: ignore[attr-defined]


def main() -> None:
    federation = make_federation(seed=SEED)
    fields = [
        {"address": b"Damrak 1, Amsterdam", "bsn": b"123456782", "moves_last_year": b"\x05"},
        {"address": b"Coolsingel 40, Rotterdam", "bsn": b"111222333", "moves_last_year": b"\x07"},
        {"empty": b"", "binary": bytes(range(8)), "naam \u00e9": "\u2713".encode()},
    ]
    sender = Sealer(
        identity=federation.identities["RVIG"],
        directory=federation.directory,
        clock=federation.clock,
        random=counter_random(SEED + b"/RVIG"),
    )
    submissions = sender.seal([OutgoingRecord.of(submission_context(), f) for f in fields])
    gateway_opener = federation.opener("GATEWAY")
    opened = [gateway_opener.open_submission(e, topic=IN_TOPIC) for e in submissions]
    keeps = [{"address", "moves_last_year"}, {"address", "bsn", "moves_last_year"}, set()]
    decisions = [
        b"agreement=AGR-LAA-0001;policy=1;purpose=LAA_SIGNAAL;recipient=GM0363",
        b"agreement=AGR-LAA-0001;policy=1;purpose=LAA_SIGNAAL;recipient=GM0363;full",
        b"",
    ]
    gateway = Sealer(
        identity=federation.identities["GATEWAY"],
        directory=federation.directory,
        clock=federation.clock,
        random=counter_random(SEED + b"/GATEWAY"),
    )
    deliveries = gateway.forward(
        [
            Forwarding(project(m, keep), delivery_context(), decision)
            for m, keep, decision in zip(opened, keeps, decisions, strict=True)
        ]
    )
    recipient = federation.opener("GM0363")
    delivered = [recipient.open_delivery(e, topic=OUT_TOPIC) for e in deliveries]

    parties = {}
    for code, identity in federation.identities.items():
        parties[code] = {
            "signing_private_key_TEST_ONLY": identity.signing_key.private_bytes_raw().hex(),
            "signing_public_key": primitives.raw_public_signing(identity.signing_key).hex(),
            "encryption_private_key_TEST_ONLY": identity.encryption_key.private_bytes_raw().hex(),
            "encryption_public_key": primitives.raw_public_encryption(
                identity.encryption_key
            ).hex(),
        }
    document = {
        "format": "sigex envelope version 1 golden vectors",
        "warning": "TEST-ONLY keys derived from a public seed; never use them for real data",
        "seed": SEED.decode(),
        "key_validity": {"not_before": START.isoformat(), "not_after": END.isoformat()},
        "open_at": NOW.isoformat(),
        "gateway": "GATEWAY",
        "parties": parties,
        "submissions": [
            {
                "topic": IN_TOPIC,
                "envelope": envelope.hex(),
                "expected": {
                    "context": _context(message.context),
                    "message_id": str(message.message_id),
                    "timestamp_ms": message.timestamp_ms,
                    "fields": {k: v.hex() for k, v in message.disclosed.items()},
                    "commitments": dict(
                        zip(message.names, (c.hex() for c in message.commitments), strict=True)
                    ),
                    "leaf_index": message.proof.leaf_index,
                    "tree_size": message.proof.tree_size,
                },
            }
            for envelope, message in zip(submissions, opened, strict=True)
        ],
        "deliveries": [
            {
                "topic": OUT_TOPIC,
                "recipient": "GM0363",
                "envelope": envelope.hex(),
                "expected": {
                    "context": _context(message.context),
                    "origin": _context(message.origin),
                    "message_id": str(message.message_id),
                    "timestamp_ms": message.timestamp_ms,
                    "decided_at_ms": message.decided_at_ms,
                    "disclosed": {k: v.hex() for k, v in message.disclosed.items()},
                    "withheld": list(message.withheld),
                    "decision": message.decision.hex(),
                },
            }
            for envelope, message in zip(deliveries, delivered, strict=True)
        ],
    }
    OUTPUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
