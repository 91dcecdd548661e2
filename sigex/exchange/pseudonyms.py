"""The keyed pseudonym of a data subject, and the audit service's pseudonym key.

A pseudonym is HMAC-SHA256 of the BSN's nine ASCII digits under a 32-byte key
that belongs to the audit service, written as 64 lowercase hex characters.
Without the key nobody can map a pseudonym back to a BSN by trying all of them
(a bare hash of every valid BSN takes about a minute). The gateway is given
the same key by the operator; the BSN itself is never stored in the log.
``sigex keys init`` makes the key; a missing key stops whoever needs it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path

from sigex.config import pseudonym_key_path
from sigex.exchange.errors import AccessLogError, PseudonymKeyMissing
from sigex.identifiers import check_bsn, is_valid_bsn
from sigex.identity.audit_files import AUDIT_PSEUDONYM_KEY_BYTES
from sigex.identity.errors import MissingKeyFile
from sigex.identity.keyfiles import read_private

KEY_BYTES = AUDIT_PSEUDONYM_KEY_BYTES


class SubjectPseudonymiser:
    """Turns a BSN into the audit service's keyed pseudonym."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise AccessLogError(f"pseudonym key: must be at least {KEY_BYTES} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "SubjectPseudonymiser(key=<hidden>)"

    def pseudonym(self, bsn: str) -> str:
        """The pseudonym of a valid BSN; an invalid one raises without showing its value."""
        check_bsn(bsn, "bsn")
        return hmac.new(self._key, bsn.encode("ascii"), hashlib.sha256).hexdigest()


class SubjectPseudonyms:
    """The audit pseudonym of any data subject.

    A BSN gets the access log's own pseudonym (so ``sigex audit query --bsn``
    finds it); any other subject (a KvK number, an earlier signal's id) gets
    an HMAC under the same key with a separate label, so the two can never
    collide.
    """

    __slots__ = ("_bsn", "_key")

    def __init__(self, key: bytes) -> None:
        self._bsn = SubjectPseudonymiser(key)
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "SubjectPseudonyms(key=<hidden>)"

    def pseudonym(self, subject: str) -> str:
        if is_valid_bsn(subject):
            return self._bsn.pseudonym(subject)
        material = b"sigex/v1/subject\x00" + subject.encode("utf-8")
        return hmac.new(self._key, material, hashlib.sha256).hexdigest()

    def content_digest(self, parts: Sequence[bytes]) -> bytes:
        """A keyed digest of a message's content (length-prefixed parts): equal content, equal
        digest; without the key nobody can test a guess of the content against it."""
        material = b"".join(
            [b"sigex/v1/content\x00", *(len(p).to_bytes(4, "big") + p for p in parts)]
        )
        return hmac.digest(self._key, material, "sha256")

    def delivery_key(self, recipient: str, subject_pseudonym: str) -> bytes:
        """The Kafka key of a delivery about one subject to one recipient.

        Stable per (recipient, subject), so one recipient gets one person's
        deliveries in order on one partition; different per recipient, so the
        keys on the broker's disks do not link a person across recipients'
        topics (the audit pseudonym itself never appears in clear there).
        """
        material = b"sigex/v1/delivery-key\x00" + f"{recipient}\x00{subject_pseudonym}".encode()
        return hmac.new(self._key, material, hashlib.sha256).hexdigest()[:32].encode("ascii")


def load_pseudonym_key(state_dir: Path) -> bytes:
    """Read the audit service's pseudonym key; it must exist and be private to its owner.

    It is made once, by ``sigex keys init``, and never here: a process that
    made its own would pseudonymise every later record differently.
    """
    path = pseudonym_key_path(state_dir)
    try:
        key = read_private(path)
    except MissingKeyFile:
        raise PseudonymKeyMissing(path) from None
    if len(key) < KEY_BYTES:
        raise AccessLogError(f"pseudonym key: {path} is shorter than {KEY_BYTES} bytes")
    return key
