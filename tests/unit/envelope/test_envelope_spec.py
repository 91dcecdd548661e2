"""An independent reader of envelope version 1, written from docs/envelope.md alone.

It uses neither sigex.envelope nor sigex.identity: only hashlib, struct and the
cryptography primitives the specification names. Opening the golden vectors
with it shows that the document describes every byte.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "envelope_v1.json"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def str16(text: bytes) -> bytes:
    return struct.pack(">H", len(text)) + text


def names_list(names: list[bytes]) -> bytes:
    return struct.pack(">H", len(names)) + bytes(len(n) for n in names) + b"".join(names)


class Cursor:
    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    def take(self, count: int) -> bytes:
        chunk = self.data[self.position : self.position + count]
        assert len(chunk) == count
        self.position += count
        return chunk

    def unpack(self, layout: str) -> tuple[int, ...]:
        return struct.unpack(layout, self.take(struct.calcsize(layout)))

    def context(self) -> tuple[bytes, list[bytes]]:
        start = self.position
        lengths = self.unpack(">7H")
        values = [self.take(n) for n in lengths]
        return self.data[start : self.position], values

    def fields(self) -> tuple[list[bytes], list[bytes], dict[bytes, bytes]]:
        (count,) = self.unpack(">H")
        entries = [self.take(6) for _ in range(count)]
        names, commitments, disclosed = [], [], {}
        for entry in entries:
            flag, name_length, value_length = struct.unpack(">BBI", entry)
            name = self.take(name_length)
            if flag == 1:
                salt = self.take(16)
                value = self.take(value_length)
                commitments.append(h(b"sigex/v1/field\x00" + entry + name + salt + value))
                disclosed[name] = value
            else:
                assert flag == 0 and value_length == 0
                commitments.append(self.take(32))
            names.append(name)
        assert names == sorted(set(names))
        return names, commitments, disclosed

    def proof(self) -> tuple[bytes, int, int, list[bytes], bytes]:
        key_id = self.take(8)
        index, size, steps = self.unpack(">IIB")
        path = [self.take(32) for _ in range(steps)]
        return key_id, index, size, path, self.take(64)


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    # RFC 9162 section 2.1.3.2
    assert index < size
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        assert sn != 0
        if fn & 1 or fn == sn:
            result = h(b"\x01" + sibling + result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = h(b"\x01" + result + sibling)
        fn >>= 1
        sn >>= 1
    assert sn == 0
    return result


def check_proof(
    tree: int, signer: bytes, public: Ed25519PublicKey, leaf: bytes, proof: tuple[Any, ...]
) -> None:
    key_id, index, size, path, signature = proof
    assert key_id == h(public.public_bytes_raw())[:8]
    root = root_from_path(leaf, index, size, path)
    statement = (
        b"sigex/v1/root\x00" + bytes([tree]) + str16(signer) + key_id
        + struct.pack(">I", size) + root
    )  # fmt: skip
    public.verify(signature, statement)


def open_envelope(envelope: bytes, kind: int, recipient: bytes, keys: dict[str, Any]) -> bytes:
    """Steps 1-5 of section 6: check the header, unwrap the data key, decrypt the body."""
    cursor = Cursor(envelope)
    assert cursor.take(5) == b"SGX\x01" + bytes([kind])
    _, context = cursor.context()
    assert context[4] == recipient
    (sealer_length,) = cursor.unpack(">H")
    sealer = cursor.take(sealer_length)
    period = cursor.take(12)
    key_id = cursor.take(8)
    wrapped = cursor.take(80)
    nonce = cursor.take(12)
    header = envelope[: cursor.position]
    (length,) = cursor.unpack(">I")
    ciphertext = cursor.take(length)
    assert cursor.position == len(envelope)
    private = X25519PrivateKey.from_private_bytes(
        bytes.fromhex(keys[recipient.decode()]["encryption_private_key_TEST_ONLY"])
    )
    assert key_id == h(private.public_key().public_bytes_raw())[:8]
    info = b"sigex/v1/data-key\x00" + str16(sealer) + str16(recipient) + period + key_id
    data_key = SUITE.decrypt(wrapped, private, info=info)
    return AESGCM(data_key).decrypt(nonce, ciphertext, header)


def signing_public(keys: dict[str, Any], code: bytes) -> Ed25519PublicKey:
    raw = bytes.fromhex(keys[code.decode()]["signing_private_key_TEST_ONLY"])
    public = Ed25519PrivateKey.from_private_bytes(raw).public_key()
    assert public.public_bytes_raw().hex() == keys[code.decode()]["signing_public_key"]
    return public


def test_submissions_follow_the_specification() -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    keys = vectors["parties"]
    for vector in vectors["submissions"]:
        envelope = bytes.fromhex(vector["envelope"])
        context_raw, context = Cursor(envelope, 5).context()
        body = Cursor(open_envelope(envelope, 1, b"GATEWAY", keys))
        message_id = body.take(16)
        (timestamp,) = body.unpack(">Q")
        names, commitments, disclosed = body.fields()
        proof = body.proof()
        assert body.position == len(body.data)
        leaf = h(
            b"\x00sigex/v1/message\x00" + context_raw + message_id + struct.pack(">Q", timestamp)
            + names_list(names) + b"".join(commitments)
        )  # fmt: skip
        check_proof(1, context[3], signing_public(keys, context[3]), leaf, proof)
        expected = vector["expected"]
        assert timestamp == expected["timestamp_ms"] == int.from_bytes(message_id[:6], "big")
        assert message_id[6] >> 4 == 7  # UUIDv7
        assert {n.decode(): v.hex() for n, v in disclosed.items()} == expected["fields"]


def test_deliveries_follow_the_specification() -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    keys = vectors["parties"]
    gateway = vectors["gateway"].encode()
    for vector in vectors["deliveries"]:
        envelope = bytes.fromhex(vector["envelope"])
        context_raw, context = Cursor(envelope, 5).context()
        body = Cursor(open_envelope(envelope, 2, vector["recipient"].encode(), keys))
        origin_raw, origin = body.context()
        assert origin[1:4] == context[1:4] and origin[4] == gateway
        message_id = body.take(16)
        (timestamp,) = body.unpack(">Q")
        names, commitments, disclosed = body.fields()
        sender_proof = body.proof()
        (decided_at,) = body.unpack(">Q")
        (decision_length,) = body.unpack(">I")
        decision = body.take(decision_length)
        gateway_proof = body.proof()
        assert body.position == len(body.data)
        leaf = h(
            b"\x00sigex/v1/message\x00" + origin_raw + message_id + struct.pack(">Q", timestamp)
            + names_list(names) + b"".join(commitments)
        )  # fmt: skip
        check_proof(1, origin[3], signing_public(keys, origin[3]), leaf, sender_proof)
        disclosed_names = [n for n in names if n in disclosed]
        decision_leaf = h(
            b"\x00sigex/v1/decision\x00" + context_raw + str16(gateway) + leaf
            + names_list(disclosed_names) + struct.pack(">Q", decided_at)
            + struct.pack(">I", len(decision)) + decision
        )  # fmt: skip
        check_proof(2, gateway, signing_public(keys, gateway), decision_leaf, gateway_proof)
        expected = vector["expected"]
        assert {n.decode(): v.hex() for n, v in disclosed.items()} == expected["disclosed"]
        assert decision.hex() == expected["decision"]
        assert decided_at == expected["decided_at_ms"]
