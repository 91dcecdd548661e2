"""docker/stack.py: what stops the stack is said in one line, before anything hangs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "docker" / "stack.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sigex_stack_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_secret_is_one_line_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "postgres_password.txt"
    done = run("up", "--secret", str(missing))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "missing" in lines[0]
    assert not missing.exists()


def test_an_empty_secret_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "postgres_password.txt"
    empty.write_text("\n", encoding="utf-8")
    done = run("up", "--secret", str(empty))
    assert done.returncode == 1 and "is empty" in done.stderr


def test_make_secret_writes_a_password_readable_in_a_private_folder(tmp_path: Path) -> None:
    stack = load_script()
    secret = tmp_path / "secrets" / "postgres_password.txt"
    stack.check_secret(secret, make=True)
    assert len(secret.read_text(encoding="utf-8").strip()) >= 32
    assert secret.parent.stat().st_mode & 0o777 == 0o700
    assert secret.stat().st_mode & 0o777 == 0o644


def test_not_ready_names_each_service_and_why() -> None:
    stack = load_script()
    states = [
        {"Name": "p_init_1", "Status": "exited", "ExitCode": 0},
        {"Name": "p_gateway_1", "Status": "running", "Health": {"Status": "healthy"}},
        {"Name": "p_postgres_1", "Status": "running"},
        {
            "Name": "p_kafka-2_1",
            "Status": "running",
            "Health": {"Status": "unhealthy", "Log": [{"Output": "x\nno TLS handshake\n"}]},
        },
        {"Name": "p_audit-api_1", "Status": "exited", "ExitCode": 3},
        {"Name": "p_gateway_2", "Status": "restarting"},
    ]
    assert stack.not_ready(states) == [
        "p_kafka-2_1 is unhealthy (last check: no TLS handshake)",
        "p_audit-api_1 exited with status 3",
        "p_gateway_2 is restarting",
    ]
