"""Errors of the Kafka-facing layer: the local broker, provisioning and the gateway."""

from __future__ import annotations

from sigex.errors import SigexError


class BrokerError(SigexError):
    """The local Kafka broker could not be fetched, started, stopped or reached."""


class JavaMissing(BrokerError):
    """No Java 17 or newer was found."""


class MavenMissing(BrokerError):
    """The broker's jars are not cached and ``mvn`` is not there to fetch them."""


class DownloadFailed(BrokerError):
    """Maven could not fetch the broker's jars."""


class PortInUse(BrokerError):
    """A port the broker needs is taken by another process."""


class BrokerStartFailed(BrokerError):
    """The broker process exited or did not answer in time."""


class GatewayError(SigexError):
    """The policy gateway cannot run safely (for example without its replay ledger)."""
