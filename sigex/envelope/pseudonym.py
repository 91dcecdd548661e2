"""The Kafka record key: a keyed pseudonym of the data subject.

The key is the federation's pseudonymisation key (``federation/pseudonym.key``
in a development federation). Its owner is the federation operator, who hands
it to publishers and the gateway (the parties that must key records of one
person onto one partition) and to nobody else: with the key, anyone can test
guessed BSNs, and there are only about 10^8 of them.
"""

from __future__ import annotations

import hashlib
import hmac

PSEUDONYM_TAG = b"sigex/v1/pseudonym\x00"
MIN_KEY_BYTES = 32


def pseudonym(key: bytes, subject: str) -> bytes:
    """HMAC-SHA256(key, PSEUDONYM_TAG || UTF-8 subject): 32 bytes, the same for the same subject."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError("a pseudonym key must have at least 32 bytes")
    return hmac.new(key, PSEUDONYM_TAG + subject.encode("utf-8"), hashlib.sha256).digest()
