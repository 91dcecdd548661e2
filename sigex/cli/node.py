"""``sigex node``: a party's partner node (HTTP in front of the Publisher and the Subscriber)."""

from __future__ import annotations

from pathlib import Path

import click

from sigex.cli.options import connect, connection_options, settings_with
from sigex.identity import load_party
from sigex.identity.node_tls import issue_node_certificates
from sigex.logs import get_logger
from sigex.node.access import PublishGrants
from sigex.node.service import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    NodeSettings,
    NodeSettingsError,
    build_node,
)
from sigex.node.webhook import WebhookSettings
from sigex.observability import Readiness, start_operations
from sigex.policies.compiler import load_policy
from sigex.preflight import BrokerConnectionError
from sigex.producers.publisher import load_or_create_record_key
from sigex.schemas.catalogue import load_catalogue

_log = get_logger(__name__)


@click.group(name="node")
def node() -> None:
    """A partner node: publish and receive signals over HTTP (docs/partner-node.md)."""


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise NodeSettingsError(f"--listen {text!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


@node.command()
@click.option("--as", "party", required=True, help="The party this node acts for (its code).")
@click.option(
    "--listen",
    default=f"127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    help="HOST:PORT; beyond loopback only with mutual TLS.",
)
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option(
    "--client-ca",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The CA of the party's own systems: only clients it signed get in.",
)
@click.option(
    "--allow",
    "allow",
    multiple=True,
    help="CLIENT=SIGNAL[,SIGNAL]: only these clients publish these signals (repeatable).",
)
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    help="Receive for these purposes only [default: every purpose an agreement delivers for].",
)
@click.option("--rate", default=50.0, show_default=True, help="Requests/s per client (0: none).")
@click.option("--burst", default=100, show_default=True, help="Requests above --rate at once.")
@click.option("--max-body-bytes", default=DEFAULT_MAX_BODY_BYTES, show_default=True)
@click.option("--lease-seconds", default=60.0, show_default=True)
@click.option("--inbox-capacity", default=1000, show_default=True)
@click.option("--group", "group_name", default="node", show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the node keeps its Idempotency-Keys [default: the party's folder/node].",
)
@click.option(
    "--webhook",
    default=None,
    help="Push deliveries to this URL of your own system (a 2xx answer acknowledges them).",
)
@click.option("--webhook-ca", type=click.Path(dir_okay=False), default=None)
@click.option("--webhook-cert", type=click.Path(dir_okay=False), default=None)
@click.option("--webhook-key", type=click.Path(dir_okay=False), default=None)
@click.option("--webhook-batch", default=100, show_default=True, type=click.IntRange(1, 500))
@click.option(
    "--operations",
    is_flag=True,
    help="Also serve /metrics, /livez and /readyz without TLS on SIGEX_METRICS_PORT and "
    "SIGEX_HEALTH_PORT (for a container's health check and Prometheus).",
)
@connection_options
def serve(
    party: str,
    listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    client_ca: Path | None,
    allow: tuple[str, ...],
    purposes: tuple[str, ...],
    rate: float,
    burst: int,
    max_body_bytes: int,
    lease_seconds: float,
    inbox_capacity: int,
    group_name: str,
    data_dir: Path | None,
    webhook: str | None,
    webhook_ca: str | None,
    webhook_cert: str | None,
    webhook_key: str | None,
    webhook_batch: int,
    operations: bool,
    state_dir: Path | None,
    bootstrap: str | None,
    plaintext: bool,
) -> None:
    """Serve the partner node of PARTY until SIGINT or SIGTERM.

    \b
    POST /v1/signals/{signal}   publish (Idempotency-Key makes a retry safe)
    GET  /v1/deliveries         receive (long poll), then
    POST /v1/deliveries/ack     acknowledge: receipt written, offset committed
    GET  /v1/policy/explain     decide one delivery and say why
    GET  /openapi.json, /livez, /readyz, /metrics
    """
    from sigex.node.server import serve as run_server  # noqa: PLC0415 - uvicorn loads slowly

    host, port = parse_listen(listen)
    try:
        grants = PublishGrants.parse(allow)
    except ValueError as error:
        raise NodeSettingsError(str(error)) from None
    settings = NodeSettings(
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        client_ca=client_ca,
        max_body_bytes=max_body_bytes,
        rate=rate,
        burst=burst,
        lease_seconds=lease_seconds,
        inbox_capacity=inbox_capacity,
        purposes=purposes,
        group_name=group_name,
        webhook=None
        if webhook is None
        else WebhookSettings(
            webhook, batch=webhook_batch, ca=webhook_ca, cert=webhook_cert, key=webhook_key
        ),
    )
    settings.check()
    sigex_settings = settings_with(state_dir, bootstrap)
    connection = connect(sigex_settings, party, plaintext=plaintext, check=False)
    try:
        connection.check()
    except BrokerConnectionError as error:  # serve anyway: /readyz says not ready until it is
        _log.warning("node.broker_unreachable", party=party, detail=str(error))
    policy = load_policy(sigex_settings.policy_dir)
    built = build_node(
        state_dir=sigex_settings.state_dir,
        party=party,
        settings=settings,
        connection=connection,
        catalogue=load_catalogue(),
        policy=policy,
        grants=grants,
        idempotency_path=None if data_dir is None else data_dir / "idempotency.sqlite",
    )
    servers = None
    if operations:

        def readiness() -> Readiness:
            reasons = built.not_ready()
            return Readiness.no(tuple(reasons)) if reasons else Readiness.yes()

        servers = start_operations(
            registry=built.metrics.registry,
            readiness=readiness,
            metrics_port=sigex_settings.metrics_port,
            health_port=sigex_settings.health_port,
        )
    scheme = "https" if settings.tls else "http"
    click.echo(f"sigex node of {party} on {scheme}://{host}:{port} (OpenAPI at /openapi.json)")
    try:
        run_server(built)
    finally:
        if servers is not None:
            servers.stop()


@node.command()
@click.option("--as", "party", required=True, help="The party whose node this is.")
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Folder."
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    default=("localhost", "127.0.0.1"),
    show_default=True,
    help="A name or address the node is reached at (repeatable).",
)
@click.option("--client", "clients", multiple=True, help="A client to certify (repeatable).")
def certs(party: str, out: Path, hosts: tuple[str, ...], clients: tuple[str, ...]) -> None:
    """Make a CA, the node's certificate and client certificates for trying mutual TLS.

    In operation the party uses the CA of its own systems (--client-ca) instead.
    """
    made = issue_node_certificates(out, party, hosts=hosts, clients=clients)
    click.echo(f"CA {made.ca}; node {made.server_cert} and {made.server_key}")
    for client, (cert, key) in made.clients.items():
        click.echo(f"client {client}: {cert} and {key}")


@node.command(name="init")
@click.option("--as", "party", required=True, help="The party whose node this is.")
@click.option(
    "--tls-out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also make the node's TLS files here, unless a CA is there already.",
)
@click.option("--host", "hosts", multiple=True, default=("localhost", "127.0.0.1"))
@click.option("--client", "clients", multiple=True, help="A client to certify (repeatable).")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Federation state folder [default: SIGEX_STATE_DIR].",
)
def init(
    party: str,
    tls_out: Path | None,
    hosts: tuple[str, ...],
    clients: tuple[str, ...],
    state_dir: Path | None,
) -> None:
    """Prepare PARTY's node before it runs on a read-only federation: the secret its
    record keys are derived from and, with --tls-out, its TLS files. Keeps what exists."""
    settings = settings_with(state_dir)
    load_party(settings.state_dir, party)  # the party must be in the federation
    load_or_create_record_key(settings.state_dir, party)
    click.echo(f"{party}: record key in place")
    if tls_out is None:
        return
    if (tls_out / "ca.pem").exists():
        click.echo(f"{party}: TLS files kept in {tls_out}")
        return
    made = issue_node_certificates(tls_out, party, hosts=hosts, clients=clients)
    click.echo(f"{party}: TLS files made in {tls_out} ({len(made.clients)} client(s))")
