"""docker/stack.py on a real engine: a missing image is one line, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.stack.conftest import REPO


def test_a_missing_image_is_one_line_naming_it() -> None:
    absent = "sigex-local/kafka:absent"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(REPO / "docker" / "stack.py"), "up", "-p", "sigex-absent",
         "--make-secret", "--env-file", str(REPO / "docker/images/local.env")],
        env=os.environ | {"KAFKA_IMAGE": absent},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("stack:")]
    assert len(errors) == 1 and absent in errors[0] and "build.sh" in errors[0], done.stderr
    assert time.monotonic() - started < 300
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=sigex-absent"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert not leftovers.strip(), "nothing is started when an image is missing"
