"""`sigex demo` (the README's first command) from nothing, then again; the auditor's view of it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sigex.audit.cosignature import with_cosignatures
from sigex.audit.store import AccessLogStore
from sigex.audit.witness_policy import load_witness_policy
from sigex.identity.federation import load_directory
from tests.c2sp_reader import cosignature_time, read_checkpoint
from tests.conftest import free_port

SIGEX = str(Path(sys.executable).parent / "sigex")


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [SIGEX, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def inbox_lines(summary: str) -> list[str]:
    """The "Received so far" lines of a demo summary."""
    section = summary.split("Received so far")[1].split("Access log", maxsplit=1)[0]
    return re.findall(r"^  \w+\s+\S+\s+\S+\s+\d+$", section, flags=re.MULTILINE)


def deliveries_in_inboxes(state: Path, bsn: str) -> list[tuple[str, str]]:
    """(recipient, message id) of every inbox row whose fields hold ``bsn``."""
    found = []
    stores = [(path, "received_signal") for path in (state / "inboxes").glob("*.sqlite")]
    stores += [(path, "cases") for path in (state / "case-system").glob("*.sqlite")]
    for store, table in stores:
        with sqlite3.connect(store) as db:
            for message_id, fields in db.execute(f"SELECT message_id, fields FROM {table}"):
                values = json.loads(fields)
                if bsn in (values.get("bsn"), *(values.get("worker_bsns") or [])):
                    found.append((store.stem, message_id))
    return sorted(found)


@pytest.mark.slow
def test_the_demo_runs_the_exchange_and_the_auditor_can_answer_for_a_person(
    tmp_path: Path,
) -> None:
    state = tmp_path / "demo"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")}
    env["SIGEX_STATE_DIR"] = str(tmp_path)
    args = ["demo", "--state-dir", str(state), "--port", str(port), "--people", "4000"]
    args += ["--node-port", str(free_port())]
    try:
        first = run(*args, env=env).stdout
        assert "What happened" in first
        assert re.search(r"NLA\s+payroll\.bsn-mismatch\s+SUWI64_ARB\s+[1-9]", first)
        assert "BASIS_UNDER_REVIEW" in first, "the basis under review is refused and said so"
        # Amsterdam takes part through its partner node and a case system calling it
        node_line = re.search(r"GM0363 +through its partner node: (\d+) signals", first)
        assert node_line and int(node_line.group(1)) > 0, first
        match = re.search(r"audit report --bsn (\d{9})", first)
        assert match, first
        bsn = match.group(1)

        db = state / "audit.sqlite"
        report = json.loads(
            run(
                "audit",
                "report",
                "--bsn",
                bsn,
                "--db",
                str(db),
                "--state-dir",
                str(state),
                "--format",
                "json",
                env=env,
            ).stdout
        )
        listed = sorted((d["recipient"], d["message_id"]) for d in report["disclosures"])
        assert listed == deliveries_in_inboxes(state, bsn), (
            "the access report lists exactly the deliveries about that person"
        )
        assert all(d["acknowledged"] for d in report["disclosures"])
        verified = run("audit", "verify", "--db", str(db), "--state-dir", str(state), env=env)
        assert verified.stdout.startswith("witnessed: the checkpoint at "), verified.stdout
        assert "\nok: " in verified.stdout
        assert "Its last checkpoint: 5 of 5 witnesses co-signed" in first, first
        _read_with_the_spec_reader(state, str(db))

        # A second run continues: nothing is published twice, the inboxes keep their counts.
        second = run(*args, env=env).stdout
        assert "kept the development federation" in second
        published_again = re.findall(r"^publish .*?(\d+) sent", second, flags=re.MULTILINE)
        assert published_again and all(n == "0" for n in published_again)
        assert inbox_lines(first) == inbox_lines(second)
        # the witnesses remember the first run's checkpoint and co-sign what extends it
        assert "Its last checkpoint: 5 of 5 witnesses co-signed" in second, second
        assert "through its partner node: 0 signals" in second, "nothing is offered twice"
    finally:
        subprocess.run(
            [
                SIGEX,
                "broker",
                "stop",
                "--home",
                str(state / "broker"),
                "--port",
                str(port),
                "--controller-port",
                str(port + 1),
            ],
            env=env,
            capture_output=True,
            check=False,
            timeout=120,
        )


def _read_with_the_spec_reader(state: Path, db: str) -> None:
    """The demo's last checkpoint and its cosignatures, read by a reader written from the
    C2SP specifications alone (tests/c2sp_reader.py), not by sigex's own parser."""
    directory = load_directory(state)
    log_key = directory.party("AUDIT").signing_keys[-1].public_key
    with AccessLogStore.open(db, create=False) as store:
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None
        note = with_cosignatures(checkpoint, store.cosignatures(checkpoint)).encode()
        size = store.size()
        root = store.root(checkpoint.tree_size)
    read = read_checkpoint(note, checkpoint.origin, log_key)
    assert (read.origin, read.tree_size, read.root_hash) == (
        load_witness_policy().origin,
        checkpoint.tree_size,
        root,
    )
    assert read.tree_size <= size
    for witness in load_witness_policy().witnesses:
        key = directory.party(witness).signing_keys[-1].public_key
        assert cosignature_time(note, f"sigex.nl/witness/{witness}", key) is not None, witness
