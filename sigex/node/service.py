"""The partner node as an object: one party's Publisher, Subscriber, inbox and settings.

:func:`build_node` makes one from a state directory (as ``sigex node serve``
does); tests build one the same way against the real broker.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sigex import __version__
from sigex.clock import Clock, SystemClock
from sigex.config import party_dir
from sigex.consumers.subscriber import Subscriber
from sigex.errors import SigexError
from sigex.identity import load_directory, load_party
from sigex.node.access import PublishGrants, RateLimiter
from sigex.node.deliveries import delivery_json
from sigex.node.errors import BrokerUnavailable
from sigex.node.idempotency import IdempotencyStore
from sigex.node.inbox import DeliveryInbox
from sigex.node.metrics import NodeMetrics
from sigex.node.openapi import openapi_document
from sigex.node.publishing import PublishingDesk
from sigex.node.pump import DeliveryPump
from sigex.node.webhook import WebhookPusher, WebhookSettings
from sigex.policies.compiled import CompiledPolicy, parse_moment
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.schemas.catalogue import Catalogue
from sigex.transport import KafkaConnection

DEFAULT_PORT = 8470
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
CONNECT_RETRY_SECONDS = 5.0
#: how long a stopping node waits for its pump to finish the poll it is in
STOP_SECONDS = 5.0


class NodeSettingsError(SigexError):
    """The node's settings cannot work together (e.g. beyond loopback without mutual TLS)."""


@dataclass(frozen=True)
class NodeSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: the node's own certificate and key, and the CA of the clients it lets in (mutual TLS)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: requests per second per client (0: no limit), and the burst allowed above it
    rate: float = 50.0
    burst: int = 100
    lease_seconds: float = 60.0
    inbox_capacity: int = 1000
    #: the purposes this party receives for; empty: every purpose an agreement delivers it for
    purposes: tuple[str, ...] = ()
    #: the consumer group's name (``sigex.sub.<PARTY>.<name>``); two nodes with one name share
    group_name: str = "node"
    #: push deliveries to this endpoint of the partner's own (see :mod:`sigex.node.webhook`)
    webhook: WebhookSettings | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def check(self) -> None:
        """Refuse settings that would expose the node: beyond loopback only with mutual TLS."""
        parts = (self.tls_cert, self.tls_key, self.client_ca)
        if any(parts) and not all(parts):
            raise NodeSettingsError(
                "mutual TLS needs all three of --tls-cert, --tls-key and --client-ca"
            )
        for path in parts:
            if path is not None and not path.is_file():
                raise NodeSettingsError(f"{path}: no such file")
        if self.webhook is not None:
            self.webhook.context()  # an address that is not http(s) stops the node here
        if not self.tls and not is_loopback(self.host):
            raise NodeSettingsError(
                f"the node listens on {self.host}, beyond loopback: that needs mutual TLS "
                "(--tls-cert, --tls-key and --client-ca for the CA of your own systems)"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def receivable_purposes(policy: CompiledPolicy, party: str) -> tuple[str, ...]:
    """Every purpose some agreement can deliver a signal to ``party`` for."""
    return tuple(sorted({a.purpose for a in policy.agreements_for_recipient(party)}))


class PartnerNode:
    """Everything a request needs; started and stopped with the HTTP application."""

    def __init__(
        self,
        *,
        party: str,
        settings: NodeSettings,
        catalogue: Catalogue,
        policy: CompiledPolicy,
        publisher_factory: Callable[[], Publisher],
        subscriber_factory: Callable[[], Subscriber] | None,
        idempotency: IdempotencyStore,
        grants: PublishGrants | None = None,
        clock: Clock | None = None,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.party = party
        self.settings = settings
        self.catalogue = catalogue
        self.policy = policy
        self.clock = clock or SystemClock()
        self.metrics = metrics or NodeMetrics()
        self.grants = grants or PublishGrants()
        self.limiter = RateLimiter(settings.rate, settings.burst)
        self.idempotency = idempotency
        self.desk = PublishingDesk(party, publisher_factory)
        self.inbox = DeliveryInbox(settings.inbox_capacity, settings.lease_seconds)
        self.receives = subscriber_factory is not None
        self.pump = DeliveryPump(subscriber_factory or _receives_nothing, self.inbox, party=party)
        self.openapi: dict[str, Any] = openapi_document(catalogue, policy, party, __version__)
        self.pusher = (
            None
            if settings.webhook is None or not self.receives
            else WebhookPusher(settings.webhook, self.inbox, self.metrics, delivery_json)
        )
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the long polls of ``loop`` whenever signals come in or come back."""
        self._loop = loop
        self._changed = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(self._pulse)

        self.inbox.listen(wake)

    def _pulse(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change; take it before looking at the inbox."""
        return self._changed

    def start(self) -> None:
        if self.receives:
            self.pump.start()
        if self.pusher is not None:
            self.pusher.start()
        threading.Thread(
            target=self._connect_publisher, name="sigex-node-connect", daemon=True
        ).start()

    def _connect_publisher(self) -> None:
        while not self._stop.is_set() and not self.desk.connected:
            try:
                self.desk.connect()
            except BrokerUnavailable:
                self._stop.wait(CONNECT_RETRY_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self.pusher is not None:
            self.pusher.stop()
        if self.receives:
            self.pump.stop(timeout=STOP_SECONDS)
        self.desk.close()
        self.idempotency.close()

    # -- state -----------------------------------------------------------------------------------

    def not_ready(self) -> list[str]:
        """Why the node cannot do its work now (empty: ready)."""
        reasons = []
        if not self.desk.connected:
            reasons.append("publisher-not-connected")
        if self.receives:
            if not self.pump.alive:
                reasons.append("pump-stopped")
            elif self.pump.problem is not None:
                reasons.append(f"receiving-{self.pump.problem}")
        return reasons

    def moment(self, text: str | None) -> datetime:
        return self.clock.now() if text is None else parse_moment(text, self.policy)


def _receives_nothing() -> Subscriber:
    raise NodeSettingsError("this party receives no signals under any agreement")


def build_node(
    *,
    state_dir: Path,
    party: str,
    settings: NodeSettings,
    connection: KafkaConnection,
    catalogue: Catalogue,
    policy: CompiledPolicy,
    clock: Clock | None = None,
    grants: PublishGrants | None = None,
    idempotency_path: Path | None = None,
) -> PartnerNode:
    """A node of ``party`` from its state directory (keys, federation directory)."""
    settings.check()
    clock = clock or SystemClock()
    identity = load_party(state_dir, party)
    directory = load_directory(state_dir)
    record_key = load_or_create_record_key(state_dir, party)
    purposes = settings.purposes or receivable_purposes(policy, party)
    metrics = NodeMetrics()

    def publisher() -> Publisher:
        return Publisher(
            identity=identity,
            directory=directory,
            policy=policy,
            catalogue=catalogue,
            connection=connection,
            record_key=record_key,
            clock=clock,
        )

    def subscriber() -> Subscriber:
        return Subscriber(
            identity=identity,
            directory=directory,
            catalogue=catalogue,
            connection=connection,
            purposes=purposes,
            policy=policy,
            name=settings.group_name,
            clock=clock,
            metrics=metrics.subscriber,
        )

    path = idempotency_path or party_dir(state_dir, party) / "node" / "idempotency.sqlite"
    return PartnerNode(
        party=party,
        settings=settings,
        catalogue=catalogue,
        policy=policy,
        publisher_factory=publisher,
        subscriber_factory=subscriber if purposes else None,
        idempotency=IdempotencyStore(path),
        grants=grants,
        clock=clock,
        metrics=metrics,
    )
