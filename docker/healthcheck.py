"""Container health probe: GET a sigex operations endpoint on loopback; exit 0 on HTTP 200.

Used by the Dockerfile's HEALTHCHECK and by compose. Standard library only, so
it also runs where sigex itself cannot be imported. The port is
SIGEX_HEALTH_PORT, else SIGEX_METRICS_PORT, else 9464; the path is /readyz
unless given (``healthcheck.py /livez``). ``healthcheck.py tcp:8443`` only
checks that something accepts connections on that loopback port (for a
service that has no health endpoint of its own).
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = "9464"
TIMEOUT_SECONDS = 3.0


def probe_url(path: str, environ: dict[str, str]) -> str:
    port = environ.get("SIGEX_HEALTH_PORT") or environ.get("SIGEX_METRICS_PORT") or DEFAULT_PORT
    if not port.isdigit():
        raise ValueError("SIGEX_HEALTH_PORT must be a port number")
    if not path.startswith("/"):
        raise ValueError("the path must start with /")
    return f"http://127.0.0.1:{int(port)}{path}"


def tcp_open(port_text: str) -> bool:
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("tcp: needs a port number")
    try:
        with socket.create_connection(("127.0.0.1", int(port_text)), timeout=TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/readyz"
    if path.startswith("tcp:"):
        try:
            listening = tcp_open(path.removeprefix("tcp:"))
        except ValueError as error:
            print(f"unhealthy: {error}", file=sys.stderr)
            return 1
        if not listening:
            print(f"unhealthy: nothing listens on {path}", file=sys.stderr)
        return 0 if listening else 1
    try:
        url = probe_url(path, dict(os.environ))
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (http on loopback only)
            status = int(response.status)
    except urllib.error.HTTPError as error:
        print(f"unhealthy: {path} answered {error.code}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"unhealthy: {path}: {error}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
