"""Before a command builds Kafka clients: will a broker answer, and will it take this client?

kafka-python reports a broker that is down, a wrong port, a missing certificate
file and a certificate from another federation all alike, after its whole
bootstrap timeout: ``KafkaTimeoutError: Unable to bootstrap``. An operator needs
to know which of those it is. :func:`check_broker` finds out in a few seconds,
with the standard library only: it checks the TLS files, opens a TCP connection
to each bootstrap address in turn, makes the TLS handshake with the party's
certificate, and asks the broker for its API versions (Kafka's ``ApiVersions``
request, version 0, which every broker answers before authorisation). Each way
this can fail is its own error with one line that says what to check.
"""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

from sigex.config import TlsFiles
from sigex.errors import SigexError

#: Seconds to wait for each address to connect, shake hands and answer.
DEFAULT_TIMEOUT = 5.0

_API_VERSIONS = 18
_CORRELATION_ID = 0x5167_6578  # "Sgex"
_CLIENT_ID = b"sigex-preflight"


class BrokerConnectionError(SigexError):
    """The broker cannot be reached, or it does not take this client."""


class TlsFileUnusable(BrokerConnectionError):
    """A TLS file that the connection needs is missing, unreadable or not PEM."""


class BrokerUnreachable(BrokerConnectionError):
    """No bootstrap address accepted a TCP connection."""


class TlsRefused(BrokerConnectionError):
    """The TLS handshake failed: the broker's certificate, or ours, was not accepted."""


class NotAKafkaBroker(BrokerConnectionError):
    """Something answered at the address, but not as a Kafka broker does."""


def check_broker(bootstrap: str, tls: TlsFiles | None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Return the first address that answered as a broker; raise what went wrong otherwise."""
    context = _tls_context(tls) if tls is not None else None
    failures: list[str] = []
    for address in _addresses(bootstrap):
        try:
            raw = socket.create_connection(address, timeout=timeout)
        except OSError as error:
            failures.append(f"{_show(address)} ({_why(error)})")
            continue
        with raw:
            if context is not None and tls is not None:
                _ask_over_tls(raw, address, context, tls)
            else:
                _ask_plaintext(raw, address)
        return _show(address)
    raise BrokerUnreachable(f"no broker answered at {', '.join(failures)}")


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    addresses = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise BrokerUnreachable(f"{item.strip()!r} is not a host:port broker address")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _show(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _why(error: OSError) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "no answer in time"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    return (error.strerror or type(error).__name__).lower()


def _tls_context(tls: TlsFiles) -> ssl.SSLContext:
    for role, path in (("CA certificate", tls.ca), ("certificate", tls.cert), ("key", tls.key)):
        _require_readable(role, path)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        context.load_verify_locations(cafile=str(tls.ca))
    except (ssl.SSLError, ValueError):
        raise TlsFileUnusable(f"{tls.ca}: not a PEM CA certificate") from None
    try:
        context.load_cert_chain(certfile=str(tls.cert), keyfile=str(tls.key))
    except (ssl.SSLError, ValueError):
        raise TlsFileUnusable(
            f"{tls.cert} and {tls.key}: not a PEM certificate with its own private key"
        ) from None
    return context


def _require_readable(role: str, path: Path) -> None:
    if not path.exists():
        raise TlsFileUnusable(f"the TLS {role} {path} is missing (made by 'sigex keys init')")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise TlsFileUnusable(f"the TLS {role} {path} cannot be read ({_why(error)})") from None


def _api_versions_request() -> bytes:
    header = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION_ID, len(_CLIENT_ID))
    body = header + _CLIENT_ID
    return struct.pack(">i", len(body)) + body


def _answered(stream: socket.socket) -> bool:
    """True when the peer answered the ApiVersions request as a Kafka broker does."""
    stream.sendall(_api_versions_request())
    received = b""
    while len(received) < 8:
        chunk = stream.recv(8 - len(received))
        if not chunk:
            break
        received += chunk
    if len(received) < 8:
        raise ConnectionResetError("closed")
    size: int
    correlation: int
    size, correlation = struct.unpack(">ii", received)
    return size > 4 and correlation == _CORRELATION_ID


def _ask_plaintext(raw: socket.socket, address: tuple[str, int]) -> None:
    where = _show(address)
    try:
        answered = _answered(raw)
    except OSError as error:
        raise NotAKafkaBroker(
            f"{where} closed the connection without answering ({_why(error)}): is it a TLS "
            "listener? Plaintext is only for a local development broker"
        ) from None
    if not answered:
        raise NotAKafkaBroker(f"{where} answered, but not as a Kafka broker: is the port right?")


def _ask_over_tls(
    raw: socket.socket, address: tuple[str, int], context: ssl.SSLContext, tls: TlsFiles
) -> None:
    where = _show(address)
    try:
        stream = context.wrap_socket(raw, server_hostname=address[0])
    except ssl.SSLCertVerificationError as error:
        raise TlsRefused(
            f"TLS handshake with {where} failed: the broker's certificate does not verify "
            f"against {tls.ca} ({error.verify_message}); is that this federation's CA?"
        ) from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        raise TlsRefused(
            f"TLS handshake with {where} broken off (the peer closed the connection): is it a "
            "plaintext listener, or does it refuse this certificate?"
        ) from None
    except ssl.SSLError as error:
        raise TlsRefused(
            f"TLS handshake with {where} refused ({_reason(error)}): the broker does not "
            f"accept the certificate {tls.cert}; is it from this federation, and current?"
        ) from None
    except OSError as error:
        raise TlsRefused(
            f"TLS handshake with {where} broken off ({_why(error)}): is it a plaintext "
            "listener, or does it refuse this certificate?"
        ) from None
    with stream:
        try:
            answered = _answered(stream)
        except ssl.SSLError as error:  # TLS 1.3: the broker's verdict on us comes after
            raise TlsRefused(
                f"the broker at {where} refused the certificate {tls.cert} ({_reason(error)}); "
                "is it from this federation, and current?"
            ) from None
        except OSError as error:
            raise TlsRefused(
                f"the broker at {where} closed the connection after the TLS handshake "
                f"({_why(error)}): it does not accept the certificate {tls.cert}"
            ) from None
    if not answered:
        raise NotAKafkaBroker(f"{where} answered, but not as a Kafka broker: is the port right?")


def _reason(error: ssl.SSLError) -> str:
    return (error.reason or type(error).__name__).lower().replace("_", " ")
