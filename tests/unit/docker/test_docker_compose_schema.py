"""docker/compose.yaml against the Compose specification's JSON schema.

The schema is the ``compose_spec.json`` shipped in the ``docker-compose``
1.29.2 wheel on PyPI: downloaded once with pip into the cache
(``$SIGEX_CACHE_DIR/compose-spec`` or ``~/.cache/sigex/compose-spec``) and
checked against its SHA-256 before use, so the test never trusts a changed file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "docker" / "compose.yaml"

SPEC_WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
SPEC_WHEEL_SHA256 = "8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809"
SPEC_MEMBER = "compose/config/compose_spec.json"


def cache_dir() -> Path:
    configured = os.environ.get("SIGEX_CACHE_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "sigex"
    return base / "compose-spec"


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    folder = cache_dir()
    wheel = folder / SPEC_WHEEL
    if not wheel.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--dest",
                str(folder),
                "docker-compose==1.29.2",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest == SPEC_WHEEL_SHA256, "the downloaded docker-compose wheel is not the pinned one"
    with zipfile.ZipFile(wheel) as archive:
        schema: dict[str, Any] = json.loads(archive.read(SPEC_MEMBER))
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


def test_compose_file_validates_against_the_compose_spec(
    compose_schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    assert "2019-09" in compose_schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(compose_schema)
    errors = sorted(jsonschema.Draft201909Validator(compose_schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "gateway", "restart_policy"), "always"),
        (("services", "gateway", "depends_on"), {"kafka-1": {"condition": "when_ready"}}),
        (("services", "kafka-1", "healthcheck", "every"), "10s"),
        (("volumes", "federation"), {"drive": "local"}),
    ],
)
def test_the_schema_check_catches_mistakes(
    compose_schema: dict[str, Any], compose: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    broken = json.loads(json.dumps(compose))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    validator = jsonschema.Draft201909Validator(compose_schema)
    assert not validator.is_valid(broken)
