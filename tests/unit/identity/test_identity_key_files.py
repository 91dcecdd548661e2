"""Private key files: made by ``keys init`` only, refused when group or others may read them.

The check is on the mode bits, as ssh's: CI runs as root, which reads a 0600
file anyway, so these tests look at what the code decides, not at access.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from sigex.audit.checkpoint import generate_signing_key, load_private_key
from sigex.audit.errors import ApiIdentityMissing
from sigex.audit.tls import api_identity, api_identity_paths
from sigex.cli import main
from sigex.clock import FixedClock
from sigex.exchange.pseudonyms import load_pseudonym_key, pseudonym_key_path
from sigex.identity import (
    InsecureKeyFile,
    PartySpec,
    init_federation,
    load_party,
    rotate_party,
)
from sigex.identity import _primitives as primitives
from sigex.identity import load_pseudonym_key as load_record_key_pseudonym_key
from sigex.producers.publisher import RECORD_KEY_FILE, load_or_create_record_key
from sigex.transport import KafkaConnection

NOW = datetime(2027, 2, 1, tzinfo=UTC)
SPECS = (
    PartySpec("NLA", "Nederlandse Arbeidsinspectie", "00000099000000021000", "authority"),
    PartySpec("AUDIT", "sigex audit service", "00000099000000090002", "service"),
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    init_federation(folder, SPECS, FixedClock(NOW), broker_hosts=("kafka", "10.0.0.7"))
    return folder


def _refused(path: Path, load: object) -> None:
    """``load()`` works at 0600 and raises InsecureKeyFile naming the file at 0644 and 0640."""
    assert callable(load)
    os.chmod(path, 0o600)
    load()
    for mode in (0o644, 0o640, 0o604):
        os.chmod(path, mode)
        with pytest.raises(InsecureKeyFile) as raised:
            load()
        message = str(raised.value)
        assert str(path) in message and f"chmod 600 {path}" in message and "\n" not in message
    os.chmod(path, 0o600)


# --- finding 9: the audit pseudonym key is made by keys init, once --------------------------


def test_keys_init_makes_the_audit_pseudonym_key_once(state: Path, tmp_path: Path) -> None:
    path = pseudonym_key_path(state)
    assert _mode(path) == 0o600
    key = load_pseudonym_key(state)
    assert len(key) == 32
    result = CliRunner().invoke(
        main, ["keys", "init", "--state-dir", str(state), "--parties", str(_parties(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    assert "kept the existing federation" in result.output
    assert load_pseudonym_key(state) == key, "a second init replaced the pseudonym key"


def test_keys_init_adds_the_audit_files_an_older_federation_lacks(
    state: Path, tmp_path: Path
) -> None:
    certificate, api_key = api_identity_paths(state)
    for path in (certificate, api_key):
        path.unlink()
    init = ["keys", "init", "--state-dir", str(state), "--parties", str(_parties(tmp_path))]
    result = CliRunner().invoke(main, init)
    assert result.exit_code == 0, result.output
    assert f"added the missing {certificate}" in result.output
    assert api_identity(state) == (certificate, api_key)


def test_keys_init_never_silently_replaces_a_lost_pseudonym_key(
    state: Path, tmp_path: Path
) -> None:
    path = pseudonym_key_path(state)
    path.unlink()  # lost: the access log holds pseudonyms made with it
    init = ["keys", "init", "--state-dir", str(state), "--parties", str(_parties(tmp_path))]
    result = CliRunner().invoke(main, init)
    assert result.exit_code == 2, result.output
    assert f"no audit pseudonym key {path}: restore it from the federation backup" in (
        result.output
    )
    assert not path.exists()
    result = CliRunner().invoke(main, [*init, "--new-pseudonym-key"])  # it never had one
    assert result.exit_code == 0, result.output
    assert f"added the missing {path}" in result.output
    assert _mode(path) == 0o600 and len(load_pseudonym_key(state)) == 32


def _parties(tmp_path: Path) -> Path:
    path = tmp_path / "parties.yaml"
    lines = ["parties:"]
    for spec in SPECS:
        lines += [f"  - code: {spec.code}", f"    name: {spec.name}", f"    oin: '{spec.oin}'"]
        lines.append(f"    kind: {spec.kind}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- finding 10: the audit API's certificate is issued by keys init -------------------------


def test_keys_init_issues_the_audit_api_server_certificate(state: Path) -> None:
    certificate_path, key_path = api_identity(state)
    assert _mode(key_path) == 0o600
    chain = x509.load_pem_x509_certificates(certificate_path.read_bytes())
    ca = x509.load_pem_x509_certificate((state / "federation" / "ca.pem").read_bytes())
    chain[0].verify_directly_issued_by(ca)
    assert chain[0].subject.rfc4514_string().startswith("CN=AUDIT,")
    usage = chain[0].extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "kafka"}
    addresses = {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    assert addresses == {"127.0.0.1", "10.0.0.7"}
    key = primitives.load_tls_key(key_path.read_bytes())
    assert key.public_key().public_numbers() == chain[0].public_key().public_numbers()  # type: ignore[union-attr]


def test_audit_serve_loads_the_certificate_and_never_makes_one(state: Path) -> None:
    certificate, key = api_identity_paths(state)
    certificate.unlink()
    key.unlink()
    with pytest.raises(ApiIdentityMissing, match="sigex keys init"):
        api_identity(state)
    result = CliRunner().invoke(
        main,
        ["audit", "serve", "--state-dir", str(state), "--db", str(state / "a.sqlite")],
    )
    assert result.exit_code == 2, result.output
    assert f"audit API TLS file {certificate} is missing" in result.output
    assert "Traceback" not in result.output
    assert not certificate.exists() and not key.exists()


def test_an_audit_api_key_readable_by_others_is_refused(state: Path) -> None:
    _, key = api_identity_paths(state)
    _refused(key, lambda: api_identity(state))


# --- finding 10: every private key file sigex reads -----------------------------------------


@pytest.mark.parametrize(
    "name", ["signing.key", "encryption.key", "tls.key", "client.pem", "retired"]
)
def test_a_party_key_readable_by_others_is_refused(state: Path, name: str) -> None:
    folder = state / "federation" / "parties" / "NLA"
    if name == "retired":
        rotate_party(state, "NLA", FixedClock(NOW))
        path = next((folder / "retired").glob("encryption-*.key"))
    else:
        path = folder / name
    _refused(path, lambda: load_party(state, "NLA"))


def test_federation_keys_readable_by_others_are_refused(state: Path) -> None:
    root = state / "federation"
    _refused(root / "pseudonym.key", lambda: load_record_key_pseudonym_key(state))
    _refused(root / "operator.key", lambda: rotate_party(state, "NLA", FixedClock(NOW)))


def test_a_record_key_secret_readable_by_others_is_refused(state: Path) -> None:
    secret = load_or_create_record_key(state, "NLA")
    path = state / "federation" / "parties" / "NLA" / RECORD_KEY_FILE
    assert _mode(path) == 0o600
    _refused(path, lambda: load_or_create_record_key(state, "NLA"))
    assert load_or_create_record_key(state, "NLA") == secret


def test_a_kafka_tls_key_readable_by_others_is_refused(state: Path) -> None:
    connection = KafkaConnection.for_party("127.0.0.1:9093", state, "NLA")
    assert connection.tls is not None
    _refused(connection.tls.key, connection.options)


def test_a_checkpoint_signing_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.pem"
    path.write_bytes(primitives.private_pem(generate_signing_key()))
    _refused(path, lambda: load_private_key(path))


def test_a_refused_key_stops_the_command_with_one_line(state: Path) -> None:
    path = state / "federation" / "parties" / "AUDIT" / "signing.key"
    os.chmod(path, 0o644)
    result = CliRunner().invoke(
        main, ["audit", "checkpoint", "--state-dir", str(state), "--db", str(state / "a.sqlite")]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"sigex: private key file {path} has mode 0644 (readable by group or others);"
        f" refusing to use it: run 'chmod 600 {path}'"
    )
