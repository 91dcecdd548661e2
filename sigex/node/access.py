"""Who calls the node, what that client may do, and how often.

On loopback (the default) every caller is the party's own machine: the
client is ``loopback``. Beyond loopback the node requires mutual TLS, and a
client is the common name of the certificate it presented, signed by the CA
the party configured for its own systems (:mod:`sigex.http_tls` puts it
into the request's scope). ``allowed`` optionally limits which client may
publish which signal; receiving and explaining are open to every client the
TLS layer let in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigex.http_tls import common_name, peer_certificate
from sigex.node.errors import NotAllowed, TooManyRequests

LOOPBACK_CLIENT = "loopback"


def client_of(scope: Mapping[str, Any]) -> str:
    """The calling client's name: its certificate's common name, or ``loopback``."""
    name = common_name(peer_certificate(scope))
    return name or LOOPBACK_CLIENT


@dataclass(frozen=True)
class PublishGrants:
    """Which client may publish which signals; ``None`` lets every client publish all."""

    by_client: Mapping[str, frozenset[str]] | None = None

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> PublishGrants:
        """``CLIENT=SIGNAL[,SIGNAL...]`` entries (from ``--allow``); none: no limit."""
        if not entries:
            return cls(None)
        grants: dict[str, set[str]] = {}
        for entry in entries:
            client, sep, signals = entry.partition("=")
            if not sep or not client or not signals:
                raise ValueError(f"--allow {entry!r}: expected CLIENT=SIGNAL[,SIGNAL...]")
            grants.setdefault(client, set()).update(s for s in signals.split(",") if s)
        return cls({client: frozenset(signals) for client, signals in grants.items()})

    def check(self, client: str, signal: str) -> None:
        if self.by_client is None:
            return
        if signal not in self.by_client.get(client, frozenset()):
            raise NotAllowed(
                f"client {client!r} may not publish {signal} through this node "
                "(the node's --allow settings)"
            )


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per client: ``rate`` requests per second, bursts of ``burst``."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, client: str) -> None:
        """Count one request of ``client``; :class:`TooManyRequests` when it has none left."""
        if self.rate <= 0:
            return
        now = self.clock()
        with self._lock:
            bucket = self._buckets.setdefault(client, _Bucket(float(self.burst), now))
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / self.rate
                raise TooManyRequests(
                    f"more than {self.rate:g} requests per second (bursts of {self.burst}) "
                    "from this client",
                    retry_after=max(1, int(wait + 0.999)),
                )
            bucket.tokens -= 1.0
