"""The auditor's console, page by page, on SQLite and PostgreSQL (no TLS, no browser here).

Who may look, that every question is in the access log before it is answered,
that a BSN travels only in POST bodies, the strict headers, and that each page
shows what the log holds. The proof check itself runs in a real browser in
``tests/integration/test_audit_console_browser.py``; here its inputs are checked
with the project's own Merkle code.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.console.app import CONTENT_SECURITY_POLICY, STATIC
from sigex.audit.console.service import PAGE_SIZE
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.clock import FixedClock
from sigex.exchange.access_record import NO_SUBJECT, AccessRecord, EventKind, Outcome
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.merkle import leaf_hash, root_from_inclusion
from tests.unit.audit.conftest import BACKENDS, PEOPLE, RecordFactory
from tests.unit.audit.console_kit import ConsoleKit, console_kit

PERSON, OTHER = PEOPLE[0], PEOPLE[1]
TEMPLATES = STATIC.parent / "templates"


pytestmark = pytest.mark.parametrize("store_location", BACKENDS, indirect=True)


@pytest.fixture
def kit(
    store_location: str,
    make_record: RecordFactory,
    pseudonymiser: SubjectPseudonymiser,
    clock: FixedClock,
    signing_key: Ed25519PrivateKey,
    tmp_path: Path,
) -> Iterator[ConsoleKit]:
    location = store_location
    night = datetime(2027, 1, 30, 1, 30, tzinfo=UTC)  # 02:30 in Amsterdam, a Saturday
    records = [
        make_record(bsn=PERSON),
        make_record(bsn=PERSON, recipient="NLA", purpose="SUWI64_ARB", legal_basis="NL.SUWI.64"),
        make_record(bsn=PERSON, kind=EventKind.REFUSED_FOR_RECIPIENT, recipient="BD"),
        make_record(bsn=OTHER),
        make_record(bsn=PERSON, kind=EventKind.PUBLISHED, recipient=None, disclosed_fields=()),
        *(make_record(bsn=OTHER, recipient="NLA", occurred_at=night) for _ in range(6)),
        *(
            make_record(bsn=OTHER, sender="UWV", kind=EventKind.REFUSED_AT_PUBLISH, recipient=None)
            for _ in range(3)
        ),
    ]
    with AccessLogStore.open(location) as store:
        store.append(records)
        store.checkpoint(signing_key, clock)
    with console_kit(
        location, pseudonymiser, clock, signing_key, tmp_path / "last-verification.json"
    ) as built:
        yield built


def consultations(kit: ConsoleKit) -> list[AccessRecord]:
    with kit.open_store() as store:
        return [s.record for s in store.query_all(RecordFilter(kind=EventKind.CONSULTED))]


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


# -- who may look, and the record of every look --------------------------------------------


def test_only_auditors_get_the_console_and_a_party_that_tries_is_logged(kit: ConsoleKit) -> None:
    assert kit.get("/overview").status_code == 200
    for principal in ("GM0363", "STRANGER", None):
        answer = kit.get("/overview", principal=principal)
        assert answer.status_code == 403, principal
        assert "is not an auditor" in answer.text
    looked = consultations(kit)
    assert [(r.sender, r.signal, r.outcome) for r in looked] == [
        ("AUDITOR", "console.overview", Outcome.PERMIT),
        ("GM0363", "console.refused", Outcome.DENY),  # a known party; strangers have no code
    ]


def test_every_question_is_in_the_log_before_the_answer_and_covered_by_a_checkpoint(
    kit: ConsoleKit,
) -> None:
    kit.get("/overview")
    kit.post("/search", {"bsn": PERSON})
    kit.get("/records/1")
    kit.get("/health")
    kit.get("/usage")
    kit.post("/report", {"bsn": PERSON, "lang": "nl"})
    views = [r.signal for r in consultations(kit)]
    assert views == [
        "console.overview",
        "console.search",
        "console.record",
        "console.health",
        "console.usage",
        "console.report",
    ]
    with kit.open_store() as store:
        latest = store.latest_checkpoint()
        assert latest is not None and latest.tree_size == store.size()


def test_a_question_that_cannot_be_logged_is_not_answered(
    kit: ConsoleKit,
    pseudonymiser: SubjectPseudonymiser,
    clock: FixedClock,
    signing_key: Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    read_only = lambda: AccessLogStore.open(kit.location, create=False)  # noqa: E731
    with console_kit(
        kit.location, pseudonymiser, clock, signing_key, tmp_path / "v.json", open_store=read_only
    ) as blind:
        answer = blind.post("/search", {"bsn": PERSON})
    assert answer.status_code == 503
    assert "could not write this question to the access log" in answer.text
    assert "<table" not in answer.text, "nothing of the log is shown"


# -- search by BSN, only by POST -----------------------------------------------------------


def test_search_by_bsn_finds_exactly_that_persons_records(
    kit: ConsoleKit, pseudonymiser: SubjectPseudonymiser
) -> None:
    answer = kit.post("/search", {"bsn": PERSON})
    assert answer.status_code == 200
    leaves = [int(n) for n in re.findall(r'href="/records/(\d+)"', answer.text)]
    with kit.open_store() as store:
        found = list(store.query_all(RecordFilter(subject=pseudonymiser.pseudonym(PERSON))))
    assert leaves == [s.leaf_index for s in found]
    # the person's four records, then this very look-up: who looked at them is part of the answer
    assert [s.record.kind for s in found][-1] is EventKind.CONSULTED and len(found) == 5
    assert PERSON not in answer.text, "the BSN is not echoed into the page"
    looked = consultations(kit)[-1]
    assert looked.subject == pseudonymiser.pseudonym(PERSON)
    assert looked.reason_codes == ("filter.bsn",), "the filter is named, its value is not"


def test_a_bsn_in_a_url_is_never_searched_and_a_bad_one_is_refused_without_echo(
    kit: ConsoleKit,
) -> None:
    answer = kit.get("/search", bsn=PERSON)
    assert answer.status_code == 200 and 'href="/records/' not in answer.text
    assert all(r.signal != "console.search" for r in consultations(kit))
    refused = kit.post("/search", {"bsn": "123456789"})
    assert refused.status_code == 400
    assert "not a valid citizen service number" in refused.text
    assert "123456789" not in refused.text


def test_a_form_from_another_site_is_refused(kit: ConsoleKit) -> None:
    for origin in (None, "https://evil.example", "null"):
        answer = kit.post("/search", {"bsn": PERSON}, origin=origin)
        assert answer.status_code == 400, origin
        assert "console's own pages" in text_of(answer.text)
    assert all(r.signal != "console.search" for r in consultations(kit))


def test_search_pages_on_without_carrying_the_bsn(
    kit: ConsoleKit, make_record: RecordFactory, pseudonymiser: SubjectPseudonymiser
) -> None:
    with kit.open_store() as store:
        store.append([make_record(bsn=PERSON) for _ in range(PAGE_SIZE + 5)])
    first = kit.post("/search", {"bsn": PERSON})
    assert "Next page" in first.text
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', first.text))
    assert hidden["subject"] == pseudonymiser.pseudonym(PERSON) and "bsn" not in hidden
    assert PERSON not in first.text
    second = kit.post("/search", hidden)
    assert second.status_code == 200
    first_leaves = re.findall(r'href="/records/(\d+)"', first.text)
    second_leaves = re.findall(r'href="/records/(\d+)"', second.text)
    # 4 + 55 records about the person, and the two look-ups themselves
    assert len(first_leaves) == PAGE_SIZE and len(second_leaves) == 4 + 55 + 2 - PAGE_SIZE
    assert not set(first_leaves) & set(second_leaves)


def test_csv_export_has_every_match_and_is_safe_for_spreadsheets(kit: ConsoleKit) -> None:
    answer = kit.post("/search.csv", {"party": "NLA"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 7 and {r["recipient"] for r in rows} == {"NLA"}
    assert consultations(kit)[-1].signal == "console.export"


def test_search_by_legal_basis_and_outcome(kit: ConsoleKit) -> None:
    answer = kit.post("/search", {"legal_basis": "NL.SUWI.64"})
    assert len(re.findall(r'href="/records/(\d+)"', answer.text)) == 1
    refused = kit.post("/search", {"outcome": "DENY", "sender": "UWV"})
    assert len(re.findall(r'href="/records/(\d+)"', refused.text)) == 3
    empty = kit.post("/search", {})
    assert empty.status_code == 400 and "at least one filter" in empty.text


# -- one record, and the proof the browser checks ------------------------------------------


def test_a_record_page_carries_a_proof_that_verifies_and_shows_what_the_entry_says(
    kit: ConsoleKit, signing_key: Ed25519PrivateKey
) -> None:
    answer = kit.get("/records/1")
    assert answer.status_code == 200
    block = re.search(r'<script type="application/json" id="proof">(.*?)</script>', answer.text)
    assert block, "the proof is embedded as data, not as script"
    proof = json.loads(block.group(1))
    checkpoint = proof["checkpoint"]
    root = root_from_inclusion(
        leaf_hash(proof["entry"].encode()),
        proof["leaf_index"],
        checkpoint["tree_size"],
        [bytes.fromhex(p) for p in proof["path"]],
    )
    assert root.hex() == checkpoint["root"]
    signed = (  # the C2SP checkpoint's note text: origin, size, root
        f"{checkpoint['origin']}\n{checkpoint['tree_size']}\n{base64.b64encode(root).decode()}\n"
    ).encode()
    assert checkpoint["note"].startswith(signed.decode() + "\n\u2014 ")
    signing_key.public_key().verify(bytes.fromhex(checkpoint["signature"]), signed)
    entry = json.loads(proof["entry"])
    shown = dict(re.findall(r'<td data-field="(\w+)">([^<]*)</td>', answer.text))
    assert shown["recipient"] == entry["recipient"] == "NLA"
    assert shown["disclosed_fields"] == ", ".join(entry["disclosed_fields"])
    assert shown["occurred_at"] == entry["occurred_at"][:19].replace("T", " ")
    assert consultations(kit)[-1].message_id == entry["message_id"]


def test_an_unknown_record_is_a_404_page(kit: ConsoleKit) -> None:
    answer = kit.get("/records/99999")
    assert answer.status_code == 404 and "not in the log" in answer.text


# -- overview, usage, health ---------------------------------------------------------------


def test_the_overview_counts_disclosures_and_refusals(kit: ConsoleKit) -> None:
    answer = kit.get("/overview", since="2027-01-01", until="2027-02-01")
    assert answer.status_code == 200
    assert re.search(r'id="total-disclosed">9<', answer.text)
    assert re.search(r'id="total-refused">4<', answer.text)
    page = text_of(answer.text)
    assert "NO_AGREEMENT" in page and "Per legal basis" in page
    assert "<svg" in answer.text and "<script" not in answer.text, "charts need no JavaScript"


def test_usage_reports_flag_what_passes_each_threshold(
    kit: ConsoleKit, pseudonymiser: SubjectPseudonymiser
) -> None:
    answer = kit.get("/usage", since="2027-01-01", until="2027-02-02", refusals_per_day="3")
    assert answer.status_code == 200
    many = answer.text.split('id="many-about-one"')[1].split("</section>")[0]
    assert pseudonymiser.pseudonym(OTHER) in many and ">6<" in many
    unusual = answer.text.split('id="unusual-hours"')[1].split("</section>")[0]
    assert "2027-01-30" in unusual and "02h" in unusual
    spikes = answer.text.split('id="refusal-spikes"')[1].split("</section>")[0]
    assert "UWV" in spikes
    stricter = kit.get("/usage", since="2027-01-01", per_person="7", refusals_per_day="4")
    assert "None above the threshold." in stricter.text.split('id="many-about-one"')[1]
    assert kit.get("/usage", per_person="0").status_code == 400


def test_log_health_lists_checkpoints_and_keeps_the_last_verification(kit: ConsoleKit) -> None:
    kit.get("/overview")  # a second checkpoint, so that the log's growth is drawn
    before = kit.get("/health")
    assert "has not been verified" in before.text and ">valid<" in before.text
    assert '<polyline class="growth" points="0.0,' in before.text
    assert kit.post("/health/verify", {}).status_code == 303
    after = kit.get("/health")
    assert re.search(r'id="last-verification" class="ok"><strong>ok: \d+ records', after.text)
    with kit.open_store() as store:
        store.backend.execute(
            "UPDATE checkpoints SET signature = ? WHERE tree_size = 14", [b"\0" * 64]
        )
    kit.post("/health/verify", {})
    damaged = kit.get("/health")
    assert 'id="last-verification" class="failed"' in damaged.text
    assert "INVALID" in damaged.text


# -- the article 15 report -----------------------------------------------------------------


def test_the_article_15_report_in_dutch_and_english_and_as_pdf(kit: ConsoleKit) -> None:
    dutch = kit.post("/report", {"bsn": PERSON, "lang": "nl"})
    assert dutch.status_code == 200 and '<html lang="nl">' in dutch.text
    page = text_of(dutch.text)
    assert "Overzicht van verstrekkingen" in page and "Aantal verstrekkingen: 2." in page
    assert "Gemeente Amsterdam (GM0363)" in page and "Wet BRP" in page
    assert PERSON not in dutch.text
    english = kit.post("/report", {"bsn": PERSON, "lang": "en"})
    assert "Disclosures: 2." in text_of(english.text)
    pdf = kit.post("/report", {"bsn": PERSON, "lang": "nl", "format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert kit.post("/report", {"bsn": PERSON, "lang": "de"}).status_code == 400


# -- what every answer carries, and what the console ships -----------------------------------


def test_every_answer_carries_the_strict_headers(kit: ConsoleKit) -> None:
    for answer in (
        kit.get("/overview"),
        kit.get("/overview", principal="GM0363"),
        kit.get("/static/proof.js"),
        kit.get("/records/99999"),
    ):
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY


def test_the_console_ships_every_asset_and_loads_nothing_from_elsewhere(
    store_location: str,
) -> None:
    shipped = [*TEMPLATES.glob("*.html"), *STATIC.iterdir()]
    assert {p.name for p in STATIC.iterdir()} >= {"console.css", "proof.js", "tlog.js", "key.js"}
    for path in shipped:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path.name
        assert not re.search(r"""(import|from)\s*["']https?:""", text), path.name
        assert " style=" not in text and "onclick" not in text, (
            f"{path.name}: inline style or handler"
        )
    for template in TEMPLATES.glob("*.html"):
        scripts = re.findall(r"<script([^>]*)>", template.read_text(encoding="utf-8"))
        assert all("src=" in s or 'type="application/json"' in s for s in scripts), template.name


def test_no_subject_is_what_a_question_about_nobody_records(kit: ConsoleKit) -> None:
    kit.get("/overview")
    assert consultations(kit)[-1].subject == NO_SUBJECT
    assert datetime(2027, 2, 1, 9, tzinfo=UTC) - timedelta(0) == consultations(kit)[-1].occurred_at


def test_a_database_that_dropped_its_connections_is_reconnected(
    kit: ConsoleKit, store_location: str
) -> None:
    if not store_location.startswith("postgresql"):
        pytest.skip("a PostgreSQL server's restart, as the compose drill does")
    import psycopg

    assert kit.post("/search", {"bsn": PERSON}).status_code == 200
    with psycopg.connect(store_location, autocommit=True) as admin:
        # what a restart does to every open connection, the console's included
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database()"
        )
    again = kit.post("/search", {"bsn": PERSON})
    assert again.status_code == 200, text_of(again.text)
    assert [r.signal for r in consultations(kit)][-2:] == ["console.search", "console.search"]
