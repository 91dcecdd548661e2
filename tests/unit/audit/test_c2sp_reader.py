"""The independent C2SP reader of the tests (tests/c2sp_reader.py) reads what it must.

Every note here is built by hand from the specifications (f-strings, base64, hashlib and
Ed25519 keys made in the test), never by sigex: the reader checks sigex's output, so it is
checked against the specifications, not against sigex. Each refusal is made of a note that
is correct but for the one fault under test, so that removing the check would let it pass.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.c2sp_reader import (
    C2spError,
    ReadCheckpoint,
    cosignature_time,
    open_note,
    read_checkpoint,
)

LOG = "log.example/sigex"
WITNESS = "witness.example/w1"
ROOT = hashlib.sha256(b"a root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
TIME = 1_700_000_000
LOG_KEY = Ed25519PrivateKey.generate()
WITNESS_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()


def public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def key_id(name: str, signature_type: int, key: Ed25519PrivateKey) -> bytes:
    hashed = name.encode() + b"\n" + bytes([signature_type]) + public(key)
    return hashlib.sha256(hashed).digest()[:4]


def line(name: str, blob: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(blob).decode()}\n"


def note_line(
    name: str, key: Ed25519PrivateKey, text: str, *, id_of: Ed25519PrivateKey | None = None
) -> str:
    """An Ed25519 note signature line; ``id_of`` puts another key's ID on it."""
    return line(name, key_id(name, 0x01, id_of or key) + key.sign(text.encode()))


def cosignature_line(name: str, key: Ed25519PrivateKey, body: str, timestamp: int = TIME) -> str:
    message = f"cosignature/v1\ntime {timestamp}\n{body}".encode()
    return line(name, key_id(name, 0x04, key) + struct.pack(">Q", timestamp) + key.sign(message))


def body(size: str = "5", root: str = ROOT_B64, *extensions: str) -> str:
    return "".join(f"{part}\n" for part in (LOG, size, root, *extensions))


def signed(text: str, *extra_lines: str) -> bytes:
    """The text, signed by the log, with further signature lines after the log's."""
    return f"{text}\n{note_line(LOG, LOG_KEY, text)}{''.join(extra_lines)}".encode()


def read(note: bytes) -> ReadCheckpoint:
    return read_checkpoint(note, LOG, public(LOG_KEY))


def test_a_valid_checkpoint_reads_and_other_keys_lines_are_ignored() -> None:
    text = body("1234", ROOT_B64, "ext one", "ext two")
    note = signed(
        text,
        note_line("someone.example/else", OTHER_KEY, text),
        note_line(LOG, OTHER_KEY, text),  # the log's name, another key's ID: not the log's key
        cosignature_line(WITNESS, WITNESS_KEY, text),
    )
    checkpoint = read_checkpoint(note, LOG, public(LOG_KEY))
    assert checkpoint.origin == LOG
    assert checkpoint.tree_size == 1234
    assert checkpoint.root_hash == ROOT
    assert checkpoint.extensions == ("ext one", "ext two")
    assert checkpoint.body == text.encode()
    assert read_checkpoint(signed(body("0")), LOG, public(LOG_KEY)).tree_size == 0


def test_the_go_reference_note_opens() -> None:
    """The signed note of golang.org/x/mod/sumdb/note's documentation (key ID c74f20a3)."""
    vkey = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    signature = (
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZIn"
        "NIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    )
    assert vkey[0] == 0x01 and base64.b64decode(signature)[:4].hex() == "c74f20a3"
    note = f"{text}\n\u2014 PeterNeumann {signature}\n".encode()
    assert open_note(note, "PeterNeumann", vkey[1:]) == text.encode()
    with pytest.raises(C2spError, match="does not verify"):
        open_note(note.replace(b"problem is", b"problem was"), "PeterNeumann", vkey[1:])
    with pytest.raises(C2spError, match="three non-empty lines"):
        read_checkpoint(note, "PeterNeumann", vkey[1:])  # a note, but not a checkpoint


def test_the_text_ends_at_the_last_empty_line() -> None:
    text = "a poem\n\nwith an empty line\n"
    note = f"{text}\n{note_line(LOG, LOG_KEY, text)}".encode()
    assert open_note(note, LOG, public(LOG_KEY)) == text.encode()


def test_the_wrong_key_is_refused() -> None:
    with pytest.raises(C2spError, match="no signature by the known key"):
        read_checkpoint(signed(body()), LOG, public(OTHER_KEY))


def test_a_signature_under_the_logs_name_and_id_by_another_key_is_refused() -> None:
    text = body()
    forged = f"{text}\n{note_line(LOG, OTHER_KEY, text, id_of=LOG_KEY)}".encode()
    with pytest.raises(C2spError, match="does not verify"):
        read(forged)
    # a failing signature of the known key spoils the note even beside a good one
    with pytest.raises(C2spError, match="does not verify"):
        read(signed(text, note_line(LOG, OTHER_KEY, text, id_of=LOG_KEY)))


def test_a_tampered_size_is_refused() -> None:
    note = signed(body("5"))
    assert read(note).tree_size == 5
    with pytest.raises(C2spError, match="does not verify"):
        read(note.replace(b"\n5\n", b"\n6\n", 1))


def test_a_tampered_root_is_refused() -> None:
    other_root = base64.b64encode(hashlib.sha256(b"another root").digest())
    with pytest.raises(C2spError, match="does not verify"):
        read(signed(body()).replace(ROOT_B64.encode(), other_root, 1))


def test_a_note_signed_by_unknown_keys_only_is_refused() -> None:
    text = body()
    for only in (
        note_line("someone.example/else", OTHER_KEY, text),
        note_line(LOG, OTHER_KEY, text),
    ):
        with pytest.raises(C2spError, match="no signature by the known key"):
            read(f"{text}\n{only}".encode())


def test_a_note_without_the_blank_line_is_refused() -> None:
    text = body()
    with pytest.raises(C2spError, match="no blank line"):
        read(f"{text}{note_line(LOG, LOG_KEY, text)}".encode())
    with pytest.raises(C2spError, match="no blank line"):  # signature lines alone
        open_note(note_line(LOG, LOG_KEY, "").encode(), LOG, public(LOG_KEY))


def test_a_note_without_its_final_newline_is_refused() -> None:
    note = signed(body())
    assert read(note).tree_size == 5
    with pytest.raises(C2spError, match="ends in a newline"):
        read(note[:-1])
    with pytest.raises(C2spError, match="not a signature line"):  # the last empty line ends it
        read(note + b"\n")


@pytest.mark.parametrize("control", ["\t", "\r", "\x00", "\x1b", "\x0b"])
def test_a_control_character_is_refused(control: str) -> None:
    with pytest.raises(C2spError, match="control character"):
        read(signed(body("5", ROOT_B64, f"ext{control}ension")))


def test_bytes_that_are_not_utf8_are_refused() -> None:
    text = body("5", ROOT_B64, "ext").encode().replace(b"ext", b"e\xffxt")
    log_line = line(LOG, key_id(LOG, 0x01, LOG_KEY) + LOG_KEY.sign(text))
    with pytest.raises(C2spError, match="UTF-8"):
        read(text + b"\n" + log_line.encode())


def _noncanonical(b64: str) -> str:
    """The same bytes in base64 with the unused bits of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    data = b64.rstrip("=")
    last = alphabet.index(data[-1]) | 1
    spelled = data[:-1] + alphabet[last] + b64[len(data) :]
    assert spelled != b64 and base64.b64decode(spelled) == base64.b64decode(b64)
    return spelled


@pytest.mark.parametrize(
    "root",
    [
        ROOT_B64[:10] + "*" + ROOT_B64[10:],  # a lenient decoder drops the '*'
        ROOT_B64[:10] + "\u00e9" + ROOT_B64[10:],
        ROOT_B64.rstrip("="),
        ROOT_B64 + "==",
        _noncanonical(ROOT_B64),
        base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),
    ],
)
def test_a_root_in_bad_base64_is_refused(root: str) -> None:
    with pytest.raises(C2spError, match="bad base64"):
        read(signed(body("5", root)))


def test_a_signature_in_bad_base64_is_refused() -> None:
    text = body()
    good = note_line(LOG, LOG_KEY, text)
    blob = good.split(" ")[2].rstrip("\n")
    assert read(f"{text}\n{good}".encode())
    for bad in (_noncanonical(blob), blob[:8] + "!" + blob[8:], blob.rstrip("=")):
        with pytest.raises(C2spError, match="bad base64"):
            read(f"{text}\n{good.replace(blob, bad)}".encode())


@pytest.mark.parametrize("size", ["05", "00", "+5", "-5", " 5", "5 ", "\u0665", "0x5"])
def test_a_tree_size_not_in_plain_decimal_is_refused(size: str) -> None:
    with pytest.raises(C2spError, match="bad tree size"):
        read(signed(body(size)))


@pytest.mark.parametrize("length", [1, 31, 33, 64])
def test_a_root_that_is_not_32_bytes_is_refused(length: int) -> None:
    with pytest.raises(C2spError, match="32 bytes"):
        read(signed(body("5", base64.b64encode(bytes(range(length))).decode())))


def test_an_empty_extension_line_is_refused() -> None:
    with pytest.raises(C2spError, match="non-empty lines"):
        read(signed(body("5", ROOT_B64, "", "ext")))


def test_a_bad_key_name_is_refused_even_on_an_unknown_key() -> None:
    text = body()
    for name in ("bad+name", "bad\u00a0name"):
        with pytest.raises(C2spError, match="bad key name"):
            read(signed(text, note_line(name, OTHER_KEY, text)))


def test_a_cosignature_verifies_and_gives_its_timestamp() -> None:
    text = body("5", ROOT_B64, "ext")
    note = signed(text, cosignature_line(WITNESS, WITNESS_KEY, text))
    assert cosignature_time(note, WITNESS, public(WITNESS_KEY)) == TIME
    zero = signed(text, cosignature_line(WITNESS, WITNESS_KEY, text, 0))
    assert cosignature_time(zero, WITNESS, public(WITNESS_KEY)) == 0


def test_a_cosignature_over_another_body_is_refused() -> None:
    text, other = body("6"), body("5")
    note = signed(text, cosignature_line(WITNESS, WITNESS_KEY, other))
    with pytest.raises(C2spError, match="does not verify"):
        cosignature_time(note, WITNESS, public(WITNESS_KEY))
    # the extension lines are part of the cosigned body
    with_extension = body("5", ROOT_B64, "ext")
    note = signed(with_extension, cosignature_line(WITNESS, WITNESS_KEY, other))
    with pytest.raises(C2spError, match="does not verify"):
        cosignature_time(note, WITNESS, public(WITNESS_KEY))


def test_a_cosignature_with_a_changed_timestamp_is_refused() -> None:
    text = body()
    good = cosignature_line(WITNESS, WITNESS_KEY, text)
    blob = bytearray(base64.b64decode(good.split(" ")[2]))
    blob[4:12] = struct.pack(">Q", TIME + 1)
    with pytest.raises(C2spError, match="does not verify"):
        cosignature_time(signed(text, line(WITNESS, bytes(blob))), WITNESS, public(WITNESS_KEY))


def test_a_malformed_cosignature_of_the_witness_is_refused() -> None:
    text = body()
    known_id = key_id(WITNESS, 0x04, WITNESS_KEY)
    message = f"cosignature/v1\ntime {TIME}\n{text}".encode()
    untimed = line(WITNESS, known_id + WITNESS_KEY.sign(message))  # no timestamp
    too_late = cosignature_line(WITNESS, WITNESS_KEY, text, 2**63)
    for bad, fault in ((untimed, "u64 timestamp"), (too_late, r"2\^63")):
        with pytest.raises(C2spError, match=fault):
            cosignature_time(signed(text, bad), WITNESS, public(WITNESS_KEY))


def test_a_cosignature_on_a_note_that_is_no_checkpoint_is_refused() -> None:
    text = body("05")
    note = signed(text, cosignature_line(WITNESS, WITNESS_KEY, text))
    with pytest.raises(C2spError, match="bad tree size"):
        cosignature_time(note, WITNESS, public(WITNESS_KEY))


def test_an_unrelated_witness_gives_none() -> None:
    text = body()
    note = signed(text, cosignature_line(WITNESS, WITNESS_KEY, text))
    assert cosignature_time(note, "witness.example/w2", public(OTHER_KEY)) is None
    assert cosignature_time(note, WITNESS, public(OTHER_KEY)) is None
    assert cosignature_time(note, "witness.example/w2", public(WITNESS_KEY)) is None
    # a plain note signature by the witness's key is no cosignature (its key ID uses type 0x01)
    plain = signed(text, note_line(WITNESS, WITNESS_KEY, text))
    assert cosignature_time(plain, WITNESS, public(WITNESS_KEY)) is None
