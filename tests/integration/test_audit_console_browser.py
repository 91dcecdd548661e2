"""The auditor's console in a real browser: Debian's Chromium, headless, driven by Playwright.

A demo exchange writes an access log; ``sigex audit serve`` serves it over
mutual TLS; the browser presents the AUDITOR party's certificate. The tests
pin the audit key, click through the overview and a search by BSN, open a
record and see its proof verified by the page's own JavaScript; check that the
browser's verdict agrees with ``verify_record`` (what ``sigex audit verify
--record`` runs) on every record of the demo log; and change rows of a copy of
the database to see the same pages fail. Screenshots of the main pages are
saved (``$SIGEX_TEST_SCREENSHOT_DIR``, else ``build/screenshots``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sigex.audit.checkpoint import load_private_key
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.verify import verify_record
from sigex.exchange.access_record import EventKind
from sigex.identity.federation import load_directory
from tests.conftest import free_port
from tests.integration.conftest import REPO

playwright_api = pytest.importorskip("playwright.sync_api")

SIGEX = str(Path(sys.executable).parent / "sigex")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Chromium on a machine without a network: no background connections, no sandbox as root
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("SIGEX_TEST_SCREENSHOT_DIR") or REPO / "build" / "screenshots")


def own_environment() -> dict[str, str]:
    """This process's environment without sigex settings: the demo's folder says it all (in
    CI, ``SIGEX_BOOTSTRAP`` names the test session's broker, which the demo's keys cannot
    reach)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")}


def sigex(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [SIGEX, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env if env is not None else own_environment(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass(frozen=True)
class Demo:
    state: Path
    db: Path
    bsn: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A demo exchange's state and access log (its broker stopped once it has run)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("SIGEX_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package")
        pytest.skip("no Chromium here (apt install chromium)")
    root = tmp_path_factory.mktemp("console")
    state = root / "demo"
    port = free_port()
    env = own_environment()
    env["SIGEX_STATE_DIR"] = str(root)
    args = ["demo", "--state-dir", str(state), "--port", str(port), "--people", "2000"]
    try:
        summary = sigex(*args, "--node-port", str(free_port()), env=env)
    finally:
        subprocess.run(
            [SIGEX, "broker", "stop", "--home", str(state / "broker"), "--port", str(port)],
            env=env,
            capture_output=True,
            check=False,
            timeout=120,
        )
    found = re.search(r"audit report --bsn (\d{9})", summary)
    assert found, summary
    yield Demo(state, state / "audit.sqlite", found.group(1))


@dataclass(frozen=True)
class Console:
    url: str
    state: Path
    db: Path

    def client_certificate(self) -> dict[str, str]:
        party = self.state / "federation" / "parties" / "AUDITOR"
        return {
            "origin": self.url.rstrip("/"),
            "certPath": str(party / "tls.pem"),
            "keyPath": str(party / "tls.key"),
        }


def wait_for_tls(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    while time.monotonic() < deadline:
        assert process.poll() is None, "sigex audit serve ended"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the console did not start listening")


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start ``sigex audit serve`` over a state folder and database; stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(state: Path, db: Path, *extra: str) -> Console:
        port = free_port()
        process = subprocess.Popen(
            [
                SIGEX,
                *("audit", "serve", "--state-dir", str(state), "--db", str(db)),
                *("--port", str(free_port()), "--console-port", str(port), *extra),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=own_environment(),
        )
        started.append(process)
        wait_for_tls(port, process)
        return Console(f"https://127.0.0.1:{port}/", state, db)

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser: Any, console: Console, *, javascript: bool = True) -> Any:
    context = browser.new_context(
        # the server's certificate is the federation's development CA, which this browser does
        # not know; the client certificate is what the test is about
        ignore_https_errors=True,
        client_certificates=[console.client_certificate()],
        java_script_enabled=javascript,
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def pin_audit_key(page: Any, console: Console) -> str:
    printed = sigex("audit", "key", "--state-dir", str(console.state))
    key_id = printed.split()[2]
    page.goto(f"{console.url}key")
    page.fill("#key-text", printed.split("\n", 1)[1])
    page.click("#pin-key")
    page.wait_for_selector(f"#pinned-key[data-key-id='{key_id}']")
    return key_id


def verdict_of(page: Any) -> tuple[str, str]:
    page.wait_for_selector("#proof-status:not([data-verdict='unchecked'])")
    status = page.locator("#proof-status")
    return str(status.get_attribute("data-verdict")), str(status.inner_text())


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_auditor_finds_a_persons_deliveries_and_sees_each_proof_verified(
    demo: Demo, serve: Any, browser: Any
) -> None:
    console = serve(demo.state, demo.db)
    page = open_page(browser, console)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    key_id = pin_audit_key(page, console)
    shoot(page, "console-key")

    page.goto(f"{console.url}overview")
    disclosed = int(page.inner_text("#total-disclosed"))
    assert disclosed > 0
    shoot(page, "console-overview")

    page.click("text=Search")
    page.fill("input[name=bsn]", demo.bsn)
    page.click("#search-button")
    page.wait_for_selector("#results")
    rows = page.locator("table.records tbody tr")
    assert rows.count() > 0
    assert demo.bsn not in page.content(), "the page does not show the BSN back"
    shoot(page, "console-search")

    delivered = page.locator("table.records tbody tr", has_text="DELIVERED").first
    delivered.locator("a").click()
    verdict, text = verdict_of(page)
    assert verdict == "verified", text
    assert key_id in text
    shoot(page, "console-record-verified")

    for path in ("usage", "health"):
        page.goto(f"{console.url}{path}")
        shoot(page, f"console-{path}")
    page.goto(f"{console.url}report")
    page.fill("input[name=bsn]", demo.bsn)
    page.click("#make-report")
    page.wait_for_selector("article h1")
    assert "Overzicht van verstrekkingen" in page.inner_text("h1")
    shoot(page, "console-report-nl")

    assert asked and not [url for url in asked if demo.bsn in url], "a BSN in a URL"
    history = page.evaluate("() => window.history.length")
    assert history > 1
    # the auditor's every look is in the log, with the person looked up (not the BSN)
    with AccessLogStore.open(str(demo.db), create=False) as store:
        looked = [
            s.record.signal
            for s in store.query_all(RecordFilter(kind=EventKind.CONSULTED, sender="AUDITOR"))
        ]
    assert {"console.overview", "console.search", "console.record", "console.report"} <= set(looked)


CHECK_EVERY_RECORD = """
async ([first, last]) => {
  const tlog = await import("/static/tlog.js");
  const key = tlog.pinnedKey();
  const verdicts = {};
  for (let leaf = first; leaf < last; leaf += 1) {
    const html = await (await fetch(`/records/${leaf}`)).text();
    const found = html.match(
      /<script type="application\\/json" id="proof">([\\s\\S]*?)<\\/script>/);
    if (!found) { verdicts[leaf] = "no proof"; continue; }
    try {
      await tlog.checkProof(JSON.parse(found[1]), key);
      verdicts[leaf] = "verified";
    } catch (error) {
      verdicts[leaf] = `failed: ${error.message}`;
    }
  }
  return verdicts;
}
"""


def browser_verdicts(page: Any, console: Console, first: int, last: int) -> dict[int, str]:
    page.goto(f"{console.url}key")
    found = page.evaluate(CHECK_EVERY_RECORD, [first, last])
    return {int(leaf): str(verdict) for leaf, verdict in found.items()}


def python_verdicts(console: Console, leaves: range) -> dict[int, bool]:
    keys = [
        Ed25519PublicKey.from_public_bytes(record.public_key)
        for record in load_directory(console.state).party("AUDIT").signing_keys
    ]
    with AccessLogStore.open(str(console.db), create=False) as store:
        latest = store.latest_checkpoint()
        assert latest is not None
        return {leaf: not verify_record(store, leaf, latest, keys) for leaf in leaves}


def test_the_browser_agrees_with_verify_record_on_every_record_of_the_demo_log(
    demo: Demo, serve: Any, browser: Any
) -> None:
    console = serve(demo.state, demo.db)
    page = open_page(browser, console)
    pin_audit_key(page, console)
    with AccessLogStore.open(str(demo.db), create=False) as store:
        size = store.size()
    verdicts = browser_verdicts(page, console, 0, size)
    assert len(verdicts) == size > 100
    assert set(verdicts.values()) == {"verified"}, {
        k: v for k, v in verdicts.items() if v != "verified"
    }
    assert all(python_verdicts(console, range(size)).values())
    for leaf in (0, size // 2, size - 1):  # and the command itself, on a few
        printed = sigex(
            "audit",
            "verify",
            "--record",
            str(leaf),
            "--db",
            str(demo.db),
            "--state-dir",
            str(demo.state),
        )
        assert printed.startswith(f"ok: record {leaf} is in the log")


def test_changed_rows_make_the_same_pages_fail(
    demo: Demo, serve: Any, browser: Any, tmp_path: Path
) -> None:
    copy = tmp_path / "audit.sqlite"
    with sqlite3.connect(demo.db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    console = serve(demo.state, copy)
    page = open_page(browser, console)
    pin_audit_key(page, console)
    with sqlite3.connect(copy) as db:
        delivered = [
            int(row[0])
            for row in db.execute(
                "SELECT leaf_index FROM access_records WHERE kind = 'DELIVERED' "
                "AND leaf_index >= 32 ORDER BY leaf_index LIMIT 2"
            )
        ]
        # (a) the entry says another recipient; its stored leaf hash is left as it was
        changed_entry = delivered[0]
        entry = db.execute(
            "SELECT entry FROM access_records WHERE leaf_index = ?", (changed_entry,)
        ).fetchone()[0]
        db.execute(
            "UPDATE access_records SET entry = ?, recipient = 'JUSTIS' WHERE leaf_index = ?",
            (re.sub(rb'"recipient":"[A-Z0-9]+"', b'"recipient":"JUSTIS"', entry), changed_entry),
        )
        # (b) a row rewritten whole: entry and leaf hash consistent with each other
        rewritten = delivered[1]
        entry = db.execute(
            "SELECT entry FROM access_records WHERE leaf_index = ?", (rewritten,)
        ).fetchone()[0]
        forged = re.sub(rb'"purpose":"[A-Z0-9_]+"', b'"purpose":"WTTA_REGISTER"', entry)
        db.execute(
            "UPDATE access_records SET entry = ?, leaf_hash = ?, purpose = 'WTTA_REGISTER' "
            "WHERE leaf_index = ?",
            (forged, hashlib.sha256(b"\0" + forged).digest(), rewritten),
        )
        # (c) a stored subtree (records 0..15) replaced: every proof that passes by it breaks
        db.execute(
            "UPDATE merkle_nodes SET hash = ? WHERE level = 4 AND node_index = 0", (b"\1" * 32,)
        )
    tampered = {changed_entry, rewritten, 16, 17, 31}
    for leaf in sorted(tampered):
        page.goto(f"{console.url}records/{leaf}")
        verdict, text = verdict_of(page)
        assert verdict == "failed", (leaf, text)
        if leaf == changed_entry:
            shoot(page, "console-record-failed")
    checked = range(max(tampered) + 1)
    verdicts = browser_verdicts(page, console, 0, len(checked))
    python = python_verdicts(console, checked)
    assert {leaf for leaf, ok in python.items() if not ok} >= tampered
    assert {leaf for leaf, v in verdicts.items() if v != "verified"} == {
        leaf for leaf, ok in python.items() if not ok
    }, "the browser and verify_record agree on every record"


def test_a_checkpoint_signed_by_another_key_fails_in_the_browser(
    demo: Demo, serve: Any, browser: Any, tmp_path: Path
) -> None:
    copy = tmp_path / "audit.sqlite"
    with sqlite3.connect(demo.db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    other_key = tmp_path / "other.pem"
    sigex_python = Path(sys.executable)
    subprocess.run(
        [
            str(sigex_python),
            "-c",
            "import sys; from pathlib import Path; "
            "from sigex.audit.checkpoint import generate_signing_key; "
            "from cryptography.hazmat.primitives import serialization as s; "
            "k = generate_signing_key(); p = Path(sys.argv[1]); "
            "p.write_bytes(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, "
            "s.NoEncryption())); p.chmod(0o600)",
            str(other_key),
        ],
        check=True,
    )
    load_private_key(other_key)
    # an operator who re-signs the log with a key of its own
    console = serve(demo.state, copy, "--signing-key", str(other_key))
    page = open_page(browser, console)
    pin_audit_key(page, console)
    page.goto(f"{console.url}records/3")
    verdict, text = verdict_of(page)
    assert verdict == "failed" and "no signature by the pinned audit key" in text


def test_pages_read_without_javascript(demo: Demo, serve: Any, browser: Any) -> None:
    console = serve(demo.state, demo.db)
    page = open_page(browser, console, javascript=False)
    page.goto(f"{console.url}search")
    page.fill("input[name=bsn]", demo.bsn)
    page.click("#search-button")
    assert page.locator("table.records tbody tr").count() > 0
    page.goto(f"{console.url}records/1")
    assert page.locator("#proof-status").get_attribute("data-verdict") == "unchecked"
    assert "sigex audit verify --record 1" in page.inner_text("#proof-status")
