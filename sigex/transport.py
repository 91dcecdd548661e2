"""How a process reaches the broker: bootstrap address and mutual-TLS files, as client options.

This module builds the keyword options kafka-python clients take; it does not
import kafka itself, so the core stays free of the Kafka-facing layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sigex.config import TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, TlsFiles

ADMIN = "ADMIN"


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where the broker is and, outside local development, which certificate to show it."""

    bootstrap: str
    tls: TlsFiles | None = None

    @classmethod
    def for_party(cls, bootstrap: str, state_dir: Path | None, party: str) -> KafkaConnection:
        """Mutual TLS with the party's federation certificate; plaintext without a state dir."""
        if state_dir is None:
            return cls(bootstrap)
        federation = state_dir / "federation"
        folder = federation / "admin" if party == ADMIN else federation / "parties" / party
        return cls(
            bootstrap,
            TlsFiles(
                ca=federation / TLS_CA_FILE,
                cert=folder / TLS_CERT_FILE,
                key=folder / TLS_KEY_FILE,
            ),
        )

    def options(self) -> dict[str, object]:
        """Keyword options for KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        options: dict[str, object] = {"bootstrap_servers": self.bootstrap}
        if self.tls is not None:
            options |= {
                "security_protocol": "SSL",
                "ssl_cafile": str(self.tls.ca),
                "ssl_certfile": str(self.tls.cert),
                "ssl_keyfile": str(self.tls.key),
                "ssl_check_hostname": True,
            }
        return options
