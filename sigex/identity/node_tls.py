"""Certificates for a partner node's mutual TLS with the party's own systems.

A party normally brings its own CA for its systems; ``sigex node certs``
makes one for trying the node beyond loopback, for the compose stack and
for the tests: a CA, a server certificate for the node's host names, and a
client certificate per named client (its common name is the client's name
in the node's log and in its ``--allow`` settings). Keys are written 0600.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from sigex.identity._primitives import (
    ca_certificate,
    certificate_pem,
    leaf_certificate,
    new_tls_key,
    private_pem,
)
from sigex.identity.keyfiles import write_private

VALIDITY = _dt.timedelta(days=825)


@dataclass(frozen=True, slots=True)
class NodeCertificates:
    ca: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]]


def _name(common_name: str, party: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{party} systems"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue_node_certificates(
    out: Path,
    party: str,
    *,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    clients: Sequence[str] = (),
    now: _dt.datetime | None = None,
) -> NodeCertificates:
    """A new CA in ``out`` (``ca.pem``), the node's server pair, and one pair per client."""
    out.mkdir(parents=True, exist_ok=True)
    start = (now or _dt.datetime.now(_dt.UTC)) - _dt.timedelta(minutes=5)
    end = start + VALIDITY
    ca_key = new_tls_key()
    ca = ca_certificate(ca_key, _name(f"{party} node clients CA", party), start, end)
    write_private(out / "ca.key", private_pem(ca_key))
    (out / "ca.pem").write_bytes(certificate_pem(ca))
    names = [h for h in hosts if not _is_ip(h)]
    ips = [h for h in hosts if _is_ip(h)]

    def issue(stem: str, common_name: str, server: bool) -> tuple[Path, Path]:
        key = new_tls_key()
        cert = leaf_certificate(
            ca_key=ca_key,
            ca_cert=ca,
            key=key,
            name=_name(common_name, party),
            not_before=start,
            not_after=end,
            server_names=names if server else (),
            server_ips=ips if server else (),
        )
        write_private(out / f"{stem}.key", private_pem(key))
        (out / f"{stem}.pem").write_bytes(certificate_pem(cert))
        return out / f"{stem}.pem", out / f"{stem}.key"

    server_cert, server_key = issue("node", f"{party} node", server=True)
    issued = {client: issue(f"client-{client}", client, server=False) for client in clients}
    return NodeCertificates(out / "ca.pem", server_cert, server_key, issued)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
