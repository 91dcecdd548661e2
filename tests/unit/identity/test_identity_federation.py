"""sigex keys init: the development federation on disk, its certificates and permissions."""

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sigex.cli.keys import keys
from sigex.clock import FixedClock
from sigex.identity import (
    DirectoryError,
    IdentityError,
    PartySpec,
    init_federation,
    load_directory,
    load_party,
    load_pseudonym_key,
    read_parties,
)

REPOSITORY = Path(__file__).resolve().parents[3]
PARTIES_FILE = REPOSITORY / "policies" / "parties.yaml"
NOW = datetime(2027, 2, 1, tzinfo=UTC)
SPECS = (
    PartySpec("NLA", "Nederlandse Arbeidsinspectie", "00000099000000021000", "authority"),
    PartySpec("GM0363", "Gemeente Amsterdam", "00000099001002564440", "municipality"),
    PartySpec("GATEWAY", "sigex policy gateway", "00000099000000090001", "service"),
)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    init_federation(state, SPECS, FixedClock(NOW))
    return state


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_parties_file_is_read(tmp_path: Path) -> None:
    specs = read_parties(PARTIES_FILE)
    codes = [s.code for s in specs]
    assert {"NLA", "GATEWAY", "AUDIT", "GM0363"} <= set(codes)
    assert all(s.oin.startswith("00000099") for s in specs)
    bad = tmp_path / "parties.yaml"
    bad.write_text("parties:\n  - code: nla\n    name: x\n    oin: '1'\n")
    with pytest.raises(IdentityError):
        read_parties(bad)


def test_layout_and_permissions(state_dir: Path) -> None:
    root = state_dir / "federation"
    for name in ("ca.pem", "ca.key", "operator.key", "operator.pub", "directory.json"):
        assert (root / name).is_file()
    for code in ("NLA", "GM0363", "GATEWAY"):
        folder = root / "parties" / code
        assert _mode(folder) == 0o700
        for name in ("signing.key", "encryption.key", "tls.key", "client.pem"):
            assert _mode(folder / name) == 0o600, name
        assert (folder / "tls.pem").is_file()
    assert len(load_pseudonym_key(state_dir)) == 32
    for private in (
        "ca.key",
        "operator.key",
        "pseudonym.key",
        "broker/keystore.pem",
        "admin/tls.key",
    ):
        assert _mode(root / private) == 0o600
    for folder in (state_dir, root, root / "parties", root / "broker", root / "admin"):
        assert _mode(folder) == 0o700


def test_client_certificate_subject_order_and_chain(state_dir: Path) -> None:
    root = state_dir / "federation"
    ca = _certificates(root / "ca.pem")[0]
    for spec in SPECS:
        cert = _certificates(root / "parties" / spec.code / "tls.pem")[0]
        assert cert.subject.rfc4514_string().startswith(f"CN={spec.code},OU=key-generation-1,")
        assert cert.subject.rfc4514_string() == (
            f"CN={spec.code},OU=key-generation-1,2.5.4.5={spec.oin},O={spec.name},C=NL"
        )
        serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
        assert serial == spec.oin
        cert.verify_directly_issued_by(ca)
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usage


def test_client_pem_holds_key_then_chain(state_dir: Path) -> None:
    folder = state_dir / "federation" / "parties" / "NLA"
    content = (folder / "client.pem").read_bytes()
    assert content.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(content, password=None)
    certificates = _certificates(folder / "client.pem")
    assert len(certificates) == 2
    assert certificates[0].public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_broker_keystore_is_kafka_pem_form(state_dir: Path) -> None:
    root = state_dir / "federation"
    content = (root / "broker" / "keystore.pem").read_bytes()
    assert content.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    certificates = _certificates(root / "broker" / "keystore.pem")
    assert len(certificates) == 2
    server, ca = certificates
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    admin = _certificates(root / "admin" / "tls.pem")[0]
    assert admin.subject.rfc4514_string() == "CN=ADMIN,O=sigex administration,C=NL"


def test_load_party_and_directory_agree(state_dir: Path) -> None:
    directory = load_directory(state_dir)
    assert directory.codes == ("NLA", "GM0363", "GATEWAY")
    party = load_party(state_dir, "NLA")
    assert party.oin == "00000099000000021000"
    assert directory.signing_key("NLA", NOW).key_id == party.signing_key_id
    assert directory.encryption_key("NLA", NOW).key_id == party.encryption_key_id
    assert party.client_pem is not None and party.client_pem.is_file()
    assert "PrivateKey" not in repr(party)  # secrets hide themselves in repr


def test_a_tampered_directory_is_refused(state_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    (copy / "federation").mkdir(parents=True)
    original = (state_dir / "federation" / "directory.json").read_text()
    (copy / "federation" / "operator.pub").write_bytes(
        (state_dir / "federation" / "operator.pub").read_bytes()
    )
    document = json.loads(original)
    document["parties"][0]["oin"] = "00000099999999999999"
    (copy / "federation" / "directory.json").write_text(json.dumps(document))
    with pytest.raises(DirectoryError):
        load_directory(copy)
    (copy / "federation" / "directory.json").write_text(original)
    assert load_directory(copy).codes
    with pytest.raises(DirectoryError):
        load_directory(copy, operator_public_key=bytes(32))
    (copy / "federation" / "directory.json").write_text("not json")
    with pytest.raises(DirectoryError):
        load_directory(copy)


def test_init_is_idempotent_and_force_replaces(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = init_federation(state, SPECS, FixedClock(NOW))
    assert first.created
    ca_before = (state / "federation" / "ca.pem").read_bytes()
    second = init_federation(state, SPECS, FixedClock(NOW))
    assert not second.created
    assert (state / "federation" / "ca.pem").read_bytes() == ca_before
    third = init_federation(state, SPECS, FixedClock(NOW), force=True)
    assert third.created
    assert (state / "federation" / "ca.pem").read_bytes() != ca_before


def test_init_works_in_a_folder_that_cannot_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a container the federation folder is a volume's mount point: empty it, never remove it.

    A fresh volume gives an empty, existing folder; ``--force`` on a used one must keep it too.
    """
    state = tmp_path / "state"
    mount_point = state / "federation"
    mount_point.mkdir(parents=True)
    real_rmdir = os.rmdir

    def rmdir(path: str, *args: Any, **kwargs: Any) -> None:
        if Path(path) == mount_point:
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", rmdir)
    assert init_federation(state, SPECS, FixedClock(NOW)).created  # the fresh volume
    ca_before = (mount_point / "ca.pem").read_bytes()
    assert init_federation(state, SPECS, FixedClock(NOW), force=True).created  # a used one
    assert (mount_point / "ca.pem").read_bytes() != ca_before
    assert set(load_directory(state).codes) == {spec.code for spec in SPECS}


def test_init_refuses_a_state_dir_inside_a_git_work_tree() -> None:
    with pytest.raises(IdentityError):
        init_federation(REPOSITORY / ".never-created-state", SPECS, FixedClock(NOW))
    assert not (REPOSITORY / ".never-created-state").exists()


def test_cli_init_show_rotate_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    state = str(tmp_path / "cli-state")
    arguments = ["init", "--state-dir", state, "--parties", str(PARTIES_FILE)]
    result = runner.invoke(keys, arguments)
    assert result.exit_code == 0, result.output
    assert "created federation" in result.output
    again = runner.invoke(keys, arguments)
    assert again.exit_code == 0 and "kept the existing federation" in again.output
    shown = runner.invoke(keys, ["show", "--state-dir", state])
    assert shown.exit_code == 0 and "GATEWAY" in shown.output
    rotated = runner.invoke(keys, ["rotate", "--state-dir", state, "NLA"])
    assert rotated.exit_code == 0, rotated.output
    revoked = runner.invoke(keys, ["revoke", "--state-dir", state, "UWV"])
    assert revoked.exit_code == 0, revoked.output
    directory = load_directory(Path(state))
    assert len(directory.party("NLA").signing_keys) == 2
    assert directory.party("UWV").signing_keys[0].revoked_at is not None


def test_default_state_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sigex.identity import default_state_dir

    monkeypatch.setenv("SIGEX_STATE_DIR", str(tmp_path))
    assert default_state_dir() == tmp_path
    monkeypatch.delenv("SIGEX_STATE_DIR")
    assert default_state_dir() == Path.home() / ".local" / "state" / "sigex"


def test_keys_are_valid_from_init_for_a_year(state_dir: Path) -> None:
    directory = load_directory(state_dir)
    record = directory.signing_key("GATEWAY", NOW)
    assert record.not_before <= NOW < record.not_after
    assert record.not_after - NOW == timedelta(days=365)


def test_the_broker_certificate_can_name_more_hosts(tmp_path: Path) -> None:
    runner = CliRunner()
    state = tmp_path / "hosts"
    arguments = ["init", "--state-dir", str(state), "--parties", str(PARTIES_FILE)]
    result = runner.invoke(keys, [*arguments, "--broker-host", "kafka", "--broker-host", "broker"])
    assert result.exit_code == 0, result.output
    server = _certificates(state / "federation" / "broker" / "keystore.pem")[0]
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "kafka", "broker"]
