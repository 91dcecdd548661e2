"""How a process reaches the broker: bootstrap address and mutual-TLS files, as client options.

This module builds the keyword options kafka-python clients take; it does not
import kafka itself, so the core stays free of the Kafka-facing layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sigex.config import (
    TLS_CA_FILE,
    TLS_CERT_FILE,
    TLS_KEY_FILE,
    Security,
    Settings,
    TlsFiles,
    federation_dir,
    party_dir,
)
from sigex.errors import ConfigurationError
from sigex.identity.keyfiles import check_private
from sigex.preflight import DEFAULT_TIMEOUT, check_broker

#: How old the cluster's metadata may be before a client asks again. kafka-python (3.0)
#: does not ask when a fetch fails because the partition's leader is gone (a broker
#: killed: its name no longer resolves, or it refuses), so a consumer keeps fetching from
#: the dead leader until the metadata ages out: five minutes by default. The stack's
#: broker drill saw 34 of 300 signals wait 415 s for it. Ten seconds bounds that wait for
#: one small request per client every ten seconds.
METADATA_MAX_AGE_MS = 10_000


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
        folder = party_dir(state_dir, party)
        return cls(
            bootstrap,
            TlsFiles(
                ca=federation_dir(state_dir) / TLS_CA_FILE,
                cert=folder / TLS_CERT_FILE,
                key=folder / TLS_KEY_FILE,
            ),
        )

    def check(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Ask a broker whether it answers and takes this client; raise what is wrong.

        Returns the address that answered. See :mod:`sigex.preflight`.
        """
        return check_broker(self.bootstrap, self.tls, timeout)

    def options(self) -> dict[str, object]:
        """Keyword options for KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap,
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        }
        if self.tls is not None:
            if self.tls.key.exists():  # a missing file is kafka-python's to report
                check_private(self.tls.key)
            options |= {
                "security_protocol": "SSL",
                "ssl_cafile": str(self.tls.ca),
                "ssl_certfile": str(self.tls.cert),
                "ssl_keyfile": str(self.tls.key),
                "ssl_check_hostname": True,
            }
        return options


def connection_for(settings: Settings, party: str, *, plaintext: bool = False) -> KafkaConnection:
    """The connection a process acting as ``party`` uses, from its settings.

    Mutual TLS unless the settings (or a ``--plaintext`` flag, honoured only in
    a local environment) say plaintext. TLS files come from SIGEX_TLS_* when
    set, otherwise from the party's folder in the federation.
    """
    if plaintext and not settings.env.is_local:
        raise ConfigurationError(
            "--plaintext is allowed only when SIGEX_ENV is development or test"
        )
    if plaintext or settings.security is Security.PLAINTEXT:
        return KafkaConnection(settings.bootstrap_servers)
    if settings.party == party and settings.tls_cert is not None:
        return KafkaConnection(settings.bootstrap_servers, settings.require_tls())
    return KafkaConnection.for_party(settings.bootstrap_servers, settings.state_dir, party)
