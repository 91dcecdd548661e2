"""``sigex audit`` end to end on a SQLite log: query, checkpoint, verify, report, export."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from sigex.audit.checkpoint import key_id, load_public_key
from sigex.audit.store import AccessLogStore
from sigex.cli.audit import audit
from sigex.exchange.access_record import AccessRecord, EventKind
from sigex.exchange.pseudonyms import SubjectPseudonymiser, load_pseudonym_key
from tests.witnessing import witness_latest

from .conftest import PEOPLE, RecordFactory


@pytest.fixture
def logged(
    federation_state: Path, tmp_path: Path, make_record: RecordFactory
) -> tuple[Path, str, list[AccessRecord]]:
    """A log with a few records about two people, written with the state's pseudonym key."""
    pseudonymiser = SubjectPseudonymiser(load_pseudonym_key(federation_state))
    person, other = PEOPLE[0], PEOPLE[1]

    def about(bsn: str, **fields: object) -> AccessRecord:
        return make_record(subject=pseudonymiser.pseudonym(bsn), **fields)

    records = [
        about(person, kind=EventKind.PUBLISHED, recipient=None, disclosed_fields=()),
        about(person),
        about(person, recipient="NLA", purpose="SUWI64_ARB", legal_basis="NL.SUWI.64"),
        about(person, kind=EventKind.REFUSED_FOR_RECIPIENT, recipient="BD"),
        about(other),
        about(person, kind=EventKind.ACKNOWLEDGED, recipient="GM0363"),
    ]
    # the acknowledgement names the message it acknowledges
    records[5] = about(
        person,
        kind=EventKind.ACKNOWLEDGED,
        recipient="GM0363",
        message_id=records[1].message_id,
        disclosed_fields=(),
    )
    db = tmp_path / "audit.sqlite"
    with AccessLogStore.open(str(db)) as store:
        store.append(records)
    return db, person, records


def _run(state: Path, db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        audit, [args[0], "--db", str(db), "--state-dir", str(state), *args[1:]]
    )
    return result.exit_code, result.output


def test_query_by_bsn_in_three_formats(
    federation_state: Path, logged: tuple[Path, str, list[AccessRecord]]
) -> None:
    db, person, _ = logged
    code, table = _run(federation_state, db, "query", "--bsn", person)
    assert code == 0, table
    assert person not in table
    assert table.count("laa.frequent-mover") == 5
    code, text = _run(federation_state, db, "query", "--bsn", person, "--format", "json")
    document = json.loads(text)
    assert [r["leaf_index"] for r in document["records"]] == [0, 1, 2, 3, 5]
    code, text = _run(federation_state, db, "query", "--party", "NLA", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["leaf_index"], r["recipient"], r["legal_basis"]) for r in rows] == [
        ("2", "NLA", "NL.SUWI.64")
    ]
    code, text = _run(federation_state, db, "query", "--bsn", "123456789")
    assert code != 0
    assert "123456789" not in text


def test_checkpoint_then_verify_passes_and_a_change_fails(
    federation_state: Path, logged: tuple[Path, str, list[AccessRecord]]
) -> None:
    db, _, _ = logged
    code, text = _run(federation_state, db, "verify")
    assert code == 1 and "not covered by any signed checkpoint" in text
    code, text = _run(federation_state, db, "checkpoint")
    assert code == 0, text
    assert json.loads(text)["tree_size"] == 6
    code, text = _run(federation_state, db, "verify")
    assert code == 1, "signed by the log alone is not enough: the witnesses have not co-signed"
    assert "no checkpoint has the co-signatures the witness policy needs" in text
    assert "0 of 5 witnesses co-signed" in text
    witness_latest(federation_state, str(db), ["NLA", "UWV"])
    code, text = _run(federation_state, db, "verify")
    assert code == 1 and "2 of 5 witnesses co-signed (NLA, UWV); the policy needs 3" in text
    code, text = _run(federation_state, db, "verify", "--allow-unwitnessed")
    assert code == 0, text
    witness_latest(federation_state, str(db), ["BD"])
    code, text = _run(federation_state, db, "verify")
    assert code == 0, text
    assert text.startswith(
        "witnessed: the checkpoint at 6 records; 3 of 5 witnesses co-signed (BD, NLA, UWV)"
    )
    assert "ok: 6 records, 1 signed checkpoints match" in text
    code, text = _run(federation_state, db, "verify", "--record", "3")
    assert code == 0 and "record 3 is in the log" in text
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE access_records SET recipient = 'BD' WHERE leaf_index = 2")
    code, text = _run(federation_state, db, "verify")
    assert code == 1
    assert "record 2: column(s) recipient differ from the entry" in text


def test_report_lists_exactly_the_deliveries(
    federation_state: Path, logged: tuple[Path, str, list[AccessRecord]]
) -> None:
    db, person, _ = logged
    code, text = _run(federation_state, db, "report", "--bsn", person, "--format", "json")
    assert code == 0, text
    document = json.loads(text)
    assert [(d["recipient"], d["purpose"], d["acknowledged"]) for d in document["disclosures"]] == [
        ("GM0363", "LAA_SIGNAAL", True),
        ("NLA", "SUWI64_ARB", False),
    ]
    assert document["refusals"] == 1
    code, text = _run(federation_state, db, "report", "--bsn", person, "--lang", "en")
    assert code == 0, text
    assert re.search(r"Recipient: +Gemeente Amsterdam \(GM0363\)", text)
    assert re.search(r"Legal basis: +Wet SUWI art\. 64 \(NL\.SUWI\.64\)", text)
    assert "Disclosures: 2." in text
    assert person not in text
    # Dutch is the default: the person reading it is Dutch
    code, dutch = _run(federation_state, db, "report", "--bsn", person)
    assert code == 0, dutch
    assert dutch.startswith("Overzicht van verstrekkingen van uw gegevens (AVG, artikel 15)")
    assert re.search(r"Wettelijke grondslag: +Wet SUWI art\. 64", dutch)
    assert "Aantal verstrekkingen: 2." in dutch
    assert "autoriteitpersoonsgegevens.nl" in dutch, "the report says where to complain"
    assert person not in dutch


def test_report_as_pdf(
    federation_state: Path, logged: tuple[Path, str, list[AccessRecord]], tmp_path: Path
) -> None:
    db, person, _ = logged
    code, text = _run(federation_state, db, "report", "--bsn", person, "--format", "pdf")
    assert code == 2 and "--out" in text
    pdf = tmp_path / "report.pdf"
    code, text = _run(
        federation_state, db, "report", "--bsn", person, "--format", "pdf", "--out", str(pdf)
    )
    assert code == 0, text
    content = pdf.read_bytes()
    assert content.startswith(b"%PDF-") and b"%%EOF" in content[-32:]
    assert person.encode() not in content


def test_export_verifies_offline_and_a_changed_export_does_not(
    federation_state: Path, logged: tuple[Path, str, list[AccessRecord]], tmp_path: Path
) -> None:
    db, person, _ = logged
    _run(federation_state, db, "checkpoint")
    whole = tmp_path / "whole.jsonl"
    code, text = _run(federation_state, db, "export", "--out", str(whole))
    assert code == 0 and "exported 6 records" in text
    code, text = _run(federation_state, db, "verify", "--export", str(whole))
    assert code == 0, text
    mine = tmp_path / "mine.jsonl"
    code, text = _run(federation_state, db, "export", "--out", str(mine), "--bsn", person)
    assert code == 0 and "exported 5 records" in text
    code, text = _run(federation_state, db, "verify", "--export", str(mine))
    assert code == 0, text
    lines = whole.read_text().splitlines()
    item = json.loads(lines[-1])
    other = json.loads(lines[-2])
    item["entry"] = other["entry"]
    lines[-1] = json.dumps(item)
    whole.write_text("\n".join(lines) + "\n")
    code, text = _run(federation_state, db, "verify", "--export", str(whole))
    assert code == 1
    assert "root differs from the records: a change among records 0..5" in text


def test_the_database_location_comes_from_the_option_the_environment_or_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sigex.cli.audit import resolve_db

    monkeypatch.delenv("SIGEX_AUDIT_DB", raising=False)
    monkeypatch.delenv("SIGEX_AUDIT_DB_PASSWORD_FILE", raising=False)
    assert resolve_db(None, tmp_path) == str(tmp_path / "audit.sqlite")
    assert resolve_db("/x/y.sqlite", tmp_path) == "/x/y.sqlite"
    monkeypatch.setenv("SIGEX_AUDIT_DB", "postgresql://audit@db.example/sigex")
    assert resolve_db(None, tmp_path) == "postgresql://audit@db.example/sigex"
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    monkeypatch.setenv("SIGEX_AUDIT_DB_PASSWORD_FILE", str(password))
    assert resolve_db(None, tmp_path) == "postgresql://audit:s3cret@db.example/sigex"


def test_the_audit_key_and_an_auditors_browser_certificate(
    federation_state: Path, tmp_path: Path
) -> None:
    printed = CliRunner().invoke(audit, ["key", "--state-dir", str(federation_state)])
    assert printed.exit_code == 0, printed.output
    first, pem = printed.output.split("\n", 1)
    public_key = load_public_key(pem.encode())
    assert first == f"key id {key_id(public_key)}"

    password = tmp_path / "password"
    password.write_text("correct horse battery\n", encoding="utf-8")
    bundle = tmp_path / "auditor.p12"
    args = ["browser-certificate", "--state-dir", str(federation_state), "--out", str(bundle)]
    made = CliRunner().invoke(audit, [*args, "--password-file", str(password)])
    assert made.exit_code == 0, made.output
    assert bundle.stat().st_mode & 0o777 == 0o600
    key, certificate, authorities = pkcs12.load_key_and_certificates(
        bundle.read_bytes(), b"correct horse battery"
    )
    assert key is not None and certificate is not None and len(authorities) == 1
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "AUDITOR"

    other = CliRunner().invoke(
        audit, [*args[:-1], str(tmp_path / "nla.p12"), "--as", "NLA", "--password-file",
                str(password)]
    )  # fmt: skip
    assert other.exit_code != 0 and "not an auditor" in other.output
    password.write_text("short\n", encoding="utf-8")
    weak = CliRunner().invoke(
        audit, [*args[:-1], str(tmp_path / "weak.p12"), "--password-file", str(password)]
    )
    assert weak.exit_code != 0 and "at least 8 characters" in str(weak.exception)
    assert not (tmp_path / "weak.p12").exists()
