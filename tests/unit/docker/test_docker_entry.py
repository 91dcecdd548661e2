"""The container entry scripts, run with a stand-in ``sigex`` on PATH that records its calls."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ENTRY = REPO / "docker" / "entry"


INIT_KEYS = (
    "keys init --broker-host kafka-1 --broker-host kafka-2 --broker-host kafka-3"
    " --broker-host audit-api"
)
NODE_FILES = ("ca.pem", "ca.key", "node.pem", "node.key")
CLIENT_FILES = ("client-case-system.pem", "client-case-system.key")


def node_init(tmp_path: Path) -> str:
    return (
        f"node init --as GM0363 --tls-out {tmp_path / 'node-tls'} --host node-gm0363 "
        "--host localhost --host 127.0.0.1 --client case-system"
    )


def stand_in_sigex(folder: Path, provision_failures: int = 0) -> Path:
    """A ``sigex`` that appends its arguments to calls.log; ``keys init`` writes a federation."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "sigex"
    script.write_text(
        f"""#!/bin/sh
echo "$*" >> "{folder}/calls.log"
case "$*" in
  "keys init"*)
    [ -f "$SIGEX_STATE_DIR/federation/directory.json" ] && exit 0
    mkdir -p "$SIGEX_STATE_DIR/federation/broker"
    echo key-and-cert > "$SIGEX_STATE_DIR/federation/broker/keystore.pem"
    echo ca > "$SIGEX_STATE_DIR/federation/broker/truststore.pem"
    echo {{}} > "$SIGEX_STATE_DIR/federation/directory.json" ;;
  "node init"*)
    out=$(echo "$*" | sed 's/.*--tls-out \\([^ ]*\\).*/\\1/')
    [ -f "$out/ca.pem" ] && exit 0
    for name in {" ".join(NODE_FILES + CLIENT_FILES)}; do echo made > "$out/$name"; done ;;
  "provision")
    count=$(grep -c '^provision$' "{folder}/calls.log")
    [ "$count" -gt {provision_failures} ] || exit 1 ;;
  *"--show-pgpass"*)
    cat "$PGPASSFILE" ;;
esac
""",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def run_init(tmp_path: Path, bin_dir: Path, attempts: int = 3) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SIGEX_STATE_DIR": str(tmp_path / "state"),
        "BROKER_TLS_DIR": str(tmp_path / "broker-tls"),
        "NODE_TLS_DIR": str(tmp_path / "node-tls"),
        "CASE_SYSTEM_TLS_DIR": str(tmp_path / "case-tls"),
        "INIT_ATTEMPTS": str(attempts),
        "INIT_RETRY_SECONDS": "0",
        "PYTHON": sys.executable,
    }
    for folder in ("broker-tls", "node-tls", "case-tls"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return subprocess.run(
        ["sh", str(ENTRY / "init.sh")],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def calls(bin_dir: Path) -> list[str]:
    return (bin_dir / "calls.log").read_text(encoding="utf-8").splitlines()


def test_init_creates_the_federation_once_and_provisions(tmp_path: Path) -> None:
    bin_dir = stand_in_sigex(tmp_path / "bin")
    first = run_init(tmp_path, bin_dir)
    assert first.returncode == 0, first.stderr
    assert calls(bin_dir) == [
        INIT_KEYS,
        "config check",
        node_init(tmp_path),
        "provision",
    ]
    # the case system gets the CA and its own pair; the node keeps no client key, no CA key
    for name in ("ca.pem", *CLIENT_FILES):
        copied = tmp_path / "case-tls" / name
        assert copied.read_text(encoding="utf-8") == "made\n"
        assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    left = sorted(path.name for path in (tmp_path / "node-tls").iterdir())
    assert left == ["ca.pem", "node.key", "node.pem"]
    keystore = tmp_path / "broker-tls" / "keystore.pem"
    assert keystore.read_text(encoding="utf-8") == "key-and-cert\n"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o640
    second = run_init(tmp_path, bin_dir)
    assert second.returncode == 0, second.stderr
    # keys init runs every time: it keeps the federation, adds a missing API certificate
    # (tests/unit/identity/test_identity_key_files.py checks that on a real one)
    assert calls(bin_dir)[4:] == [
        INIT_KEYS,
        "config check",
        node_init(tmp_path),
        "provision",
    ]


def test_init_retries_provisioning_then_gives_up(tmp_path: Path) -> None:
    bin_dir = stand_in_sigex(tmp_path / "bin", provision_failures=5)
    result = run_init(tmp_path, bin_dir, attempts=2)
    assert result.returncode == 1
    assert calls(bin_dir).count("provision") == 2
    assert "giving up" in result.stderr


def test_init_stops_without_a_broker_identity(tmp_path: Path) -> None:
    bin_dir = stand_in_sigex(tmp_path / "bin")
    federation = tmp_path / "state" / "federation"
    federation.mkdir(parents=True)
    (federation / "directory.json").write_text("{}", encoding="utf-8")
    result = run_init(tmp_path, bin_dir)
    assert result.returncode == 1
    assert "keystore.pem is missing" in result.stderr
    assert "provision" not in calls(bin_dir) if (bin_dir / "calls.log").exists() else True


def test_db_password_reaches_libpq_through_a_password_file(tmp_path: Path) -> None:
    bin_dir = stand_in_sigex(tmp_path / "bin")
    secret = tmp_path / "postgres_password"
    secret.write_text("pa:ss\\word\n", encoding="utf-8")
    result = subprocess.run(
        ["sh", str(ENTRY / "with-db-password.sh"), "audit", "index", "--show-pgpass"],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "SIGEX_AUDIT_DB_PASSWORD_FILE": str(secret),
            "TMPDIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "*:*:*:*:pa\\:ss\\\\word\n"
    assert calls(bin_dir) == ["audit index --show-pgpass"]
    assert stat.S_IMODE((tmp_path / "sigex.pgpass").stat().st_mode) == 0o600
