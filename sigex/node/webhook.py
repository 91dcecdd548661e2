"""Pushing deliveries to the partner's own endpoint (``--webhook URL``).

Instead of (or beside) polling ``GET /v1/deliveries``, a partner system can
have the node POST signals to it. The pusher leases signals from the inbox
like any caller, POSTs them as ``{"deliveries": [...]}`` (the same objects
``GET /v1/deliveries`` returns) and treats a 2xx answer as the
acknowledgement: receipts written, then offsets committed, as for
``POST /v1/deliveries/ack``. Any other answer, or none within the timeout,
puts the signals back at once, and the pusher waits before it tries again
(1 s, doubling up to a minute). So the semantics are those of polling:
at least once, with the ``message_id`` to recognise a signal that comes
again.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from sigex.errors import SigexError
from sigex.logs import get_logger
from sigex.node.inbox import DeliveryInbox
from sigex.node.metrics import NodeMetrics

_log = get_logger(__name__)
WEBHOOK_CLIENT = "webhook"
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0


class WebhookSettingsError(SigexError):
    """The webhook's address or TLS files cannot work."""


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    batch: int = 100
    timeout_seconds: float = 30.0
    #: the CA that signed the endpoint's certificate, and the node's client pair (mutual TLS)
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext | None:
        if not self.url.startswith(("http://", "https://")):
            raise WebhookSettingsError(f"--webhook must be an http(s) address, not {self.url!r}")
        if not self.url.startswith("https://"):
            return None
        context = ssl.create_default_context(cafile=self.ca)
        if self.cert is not None:
            context.load_cert_chain(self.cert, self.key)
        return context


class WebhookPusher:
    """A thread that pushes what the inbox holds to the webhook, one batch at a time."""

    def __init__(
        self,
        settings: WebhookSettings,
        inbox: DeliveryInbox,
        metrics: NodeMetrics,
        render: Any,
    ) -> None:
        self._settings = settings
        self._context = settings.context()
        self._inbox = inbox
        self._metrics = metrics
        self._render = render
        self._stop = threading.Event()
        self._wake = threading.Event()
        inbox.listen(self._wake.set)
        self._thread = threading.Thread(target=self._run, name="sigex-node-webhook", daemon=True)
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while not self._stop.is_set():
            lent = self._inbox.lease(self._settings.batch, WEBHOOK_CLIENT)
            if not lent:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            ids = [item.signal.message_id for item in lent]
            if self._push([self._render(item) for item in lent]):
                backoff = FIRST_BACKOFF_SECONDS
                try:
                    result = self._inbox.acknowledge(ids).result(timeout=60)
                except Exception as error:  # not settled: the signals come again
                    _log.warning("node.webhook_ack_failed", error=type(error).__name__)
                    continue
                self._metrics.deliveries.labels(event="pushed").inc(len(result.acknowledged))
                continue
            self._inbox.release(ids)
            self.failures += 1
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _push(self, deliveries: list[dict[str, Any]]) -> bool:
        body = json.dumps({"deliveries": deliveries}).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in settings
            self._settings.url,
            data=body,
            method="POST",
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 - http(s) only, checked in settings
                request, timeout=self._settings.timeout_seconds, context=self._context
            ) as answer:
                status = int(answer.status)
        except urllib.error.HTTPError as error:
            status = error.code
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            _log.warning("node.webhook_unreachable", error=type(error).__name__)
            self._metrics.webhook_failures.inc()
            return False
        if 200 <= status < 300:
            _log.info("node.webhook_pushed", count=len(deliveries), status=status)
            return True
        _log.warning("node.webhook_refused", count=len(deliveries), status=status)
        self._metrics.webhook_failures.inc()
        return False
