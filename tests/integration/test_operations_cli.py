"""The commands the containers run, run here the same way against a real broker with TLS and ACLs.

keys init → broker start → provision → gateway run (with its metrics and
health endpoints) → publish → subscribe → audit index → audit verify / query
→ audit serve, each as a separate process, as docker/compose.yaml runs them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.unit.schemas.conftest import LHN_A, make_bsn

SIGEX = str(Path(sys.executable).parent / "sigex")


class Operator:
    def __init__(self, state: Path, port: int, controller_port: int) -> None:
        self.state = state
        self.port = port
        self.controller_port = controller_port
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SIGEX_")}
        self.env |= {"SIGEX_STATE_DIR": str(state), "SIGEX_BOOTSTRAP": self.bootstrap}

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [SIGEX, *args],
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"sigex {' '.join(args)}:\n{result.stderr}"
        return result

    def start(self, *args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            return subprocess.Popen(
                [SIGEX, *args], env=self.env | env, stdout=sink, stderr=subprocess.STDOUT
            )

    def broker_args(self) -> list[str]:
        return [
            "--home",
            str(self.state / "broker"),
            "--port",
            str(self.port),
            "--controller-port",
            str(self.controller_port),
        ]


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    state = tmp_path_factory.mktemp("operations")
    ops = Operator(state, free_port(), free_port())
    ops.run("keys", "init", "--state-dir", str(state))
    federation = state / "federation" / "broker"
    ops.run(
        "broker",
        "start",
        *ops.broker_args(),
        "--tls-keystore",
        str(federation / "keystore.pem"),
        "--tls-truststore",
        str(federation / "truststore.pem"),
    )
    try:
        yield ops
    finally:
        ops.run("broker", "stop", *ops.broker_args(), check=False)


def http_get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


def wait_until(check: object, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.3)
    return False


def test_the_container_commands_run_the_exchange(operator: Operator, tmp_path: Path) -> None:
    provisioned = operator.run("provision", "--partitions", "2")
    assert "topics created" in provisioned.stdout
    assert "1 broker(s): topics with replication factor 1" in provisioned.stdout
    again = operator.run("provision", "--partitions", "2")
    assert "nothing to change" in again.stdout

    metrics_port = free_port()
    gateway = operator.start(
        "gateway",
        "run",
        "--instance",
        "ops-1",
        log=tmp_path / "gateway.log",
        SIGEX_METRICS_PORT=str(metrics_port),
    )
    try:
        base = f"http://127.0.0.1:{metrics_port}"
        assert wait_until(lambda: http_get(f"{base}/readyz")[0] == 200), (
            tmp_path / "gateway.log"
        ).read_text()
        assert http_get(f"{base}/livez")[0] == 200

        bsns = [make_bsn(uuid.uuid4().int % 10**8) for _ in range(3)]
        records = tmp_path / "records.jsonl"
        records.write_text(
            "".join(
                json.dumps(
                    {
                        "signal_id": str(uuid.uuid4()),
                        "detected_at": "2026-11-01T09:00:00+00:00",
                        "bsn": bsn,
                        "kind": "BSN_UNKNOWN_IN_BRP",
                        "employer_loonheffingennummer": LHN_A,
                        "employer_kvk": "12345678",
                        "payroll_period": "2026-10-01",
                        "municipality": None,
                        "family_name": None,
                        "birth_date": None,
                    }
                )
                + "\n"
                for bsn in bsns
            )
        )
        published = operator.run(
            "publish",
            "--as",
            "UWV",
            "--signal",
            "payroll.bsn-mismatch",
            "--purpose",
            "SUWI64_ARB",
            str(records),
        )
        assert "published 3" in published.stdout

        refused = operator.run(
            "publish",
            "--as",
            "UWV",
            "--signal",
            "payroll.bsn-mismatch",
            "--purpose",
            "LA_BSN_FEEDBACK",
            str(records),
            check=False,
        )
        assert refused.returncode == 1
        assert "BASIS_UNDER_REVIEW" in refused.stderr
        assert all(bsn not in refused.stderr + refused.stdout for bsn in bsns)

        dataset = tmp_path / "dataset"
        operator.run("data", "generate", "--people", "1500", "--seed", "3", "--out", str(dataset))
        streamed = operator.run(
            "data",
            "publish",
            "--kind",
            "bsn-mismatch",
            "--in",
            str(dataset),
            "--purpose",
            "SUWI64_ARB",
            "--purpose",
            "LA_BSN_FEEDBACK",
        )
        found = re.search(r"for SUWI64_ARB: ([\d,]+) published, 0 refused", streamed.stdout)
        assert found and int(found.group(1).replace(",", "")) > 0, streamed.stdout
        assert re.search(
            r"for LA_BSN_FEEDBACK: 0 published, [\d,]+ refused \(BASIS_UNDER_REVIEW",
            streamed.stdout,
        ), streamed.stdout

        out = tmp_path / "nla.jsonl"
        expected = 3 + int(found.group(1).replace(",", ""))
        received = operator.run(
            "subscribe",
            "--as",
            "NLA",
            "--purpose",
            "SUWI64_ARB",
            "--max",
            str(expected),
            "--idle-timeout",
            "60",
            "--out",
            str(out),
        )
        assert f"received {expected}" in received.stderr
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(lines) == expected
        assert set(bsns) <= {line["fields"]["bsn"] for line in lines}
        assert all(line["legal_basis"] == "NL.SUWI.64" for line in lines)
        assert all("family_name" not in line["fields"] for line in lines)

        status, body = http_get(f"{base}/metrics")
        assert status == 200
        text = body.decode()
        assert f'gateway_signals_in_total{{signal="payroll.bsn-mismatch"}} {expected}.0' in text
        assert 'recipient="NLA"' in text
        assert all(bsn not in text for bsn in bsns)
    finally:
        gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(timeout=60)
        assert code == 0, (tmp_path / "gateway.log").read_text()

    db = operator.state / "audit.sqlite"
    operator.run(
        "audit", "index", "--db", str(db), "--bootstrap", operator.bootstrap, "--idle-exit", "5"
    )
    # signed by the audit service, but no witness has co-signed it yet
    unwitnessed = operator.run("audit", "verify", "--db", str(db), check=False)
    assert unwitnessed.returncode == 1, unwitnessed.stdout + unwitnessed.stderr
    assert "no checkpoint has the co-signatures the witness policy needs" in unwitnessed.stdout
    query = operator.run("audit", "query", "--db", str(db), "--bsn", bsns[0], "--format", "json")
    kinds = {row["record"]["kind"] for row in json.loads(query.stdout)["records"]}
    assert {"PUBLISHED", "DELIVERED", "ACKNOWLEDGED"} <= kinds

    api_port = free_port()
    api = operator.start(
        "audit", "serve", "--db", str(db), "--port", str(api_port), "--console-port", "0",
        log=tmp_path / "api.log",
    )  # fmt: skip
    try:
        federation = operator.state / "federation"
        context = ssl.create_default_context(cafile=str(federation / "ca.pem"))
        party = federation / "parties" / "NLA"
        context.load_cert_chain(str(party / "tls.pem"), str(party / "tls.key"))
        url = f"https://localhost:{api_port}/v1/records"
        assert wait_until(lambda: http_get(f"{url}?recipient=NLA", context)[0] == 200), (
            tmp_path / "api.log"
        ).read_text()
        status, body = http_get(f"{url}?recipient=NLA", context)
        records_seen = json.loads(body)
        assert status == 200 and records_seen
        assert http_get(url, context)[0] == 400, "a query without a filter must be refused"
        # three of the policy's witnesses co-sign through the API; now the log verifies
        for witness in ("NLA", "UWV", "BD"):
            operator.run(
                "audit", "witness", "--as", witness, "--api", f"https://localhost:{api_port}",
                "--once",
            )  # fmt: skip
        verified = operator.run("audit", "verify", "--db", str(db))
        assert verified.stdout.startswith("witnessed: the checkpoint at "), verified.stdout
        assert "3 of 5 witnesses co-signed (BD, NLA, UWV)" in verified.stdout
        assert "\nok: " in verified.stdout
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=30)
