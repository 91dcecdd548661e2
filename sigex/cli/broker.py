"""``sigex broker``: fetch, start, stop and inspect the local Kafka broker."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sigex.broker import local
from sigex.broker.jars import ensure_jars, kafka_version
from sigex.identity.keyfiles import check_private
from sigex.roles import Role


def _settings(
    home: Path | None,
    port: int,
    controller_port: int,
    tls_keystore: Path | None = None,
    tls_truststore: Path | None = None,
    super_users: tuple[str, ...] = (),
) -> local.BrokerSettings:
    tls = None
    if tls_keystore or tls_truststore:
        if not (tls_keystore and tls_truststore):
            raise click.UsageError("--tls-keystore and --tls-truststore go together")
        if tls_keystore.exists():
            check_private(tls_keystore)  # it holds the broker's private key
        tls = local.TlsSettings(
            keystore_pem=tls_keystore.resolve(),
            truststore_pem=tls_truststore.resolve(),
            super_users=super_users or (Role.BROKER, Role.ADMIN),
        )
    return local.BrokerSettings(
        home=(home or local.default_home()).resolve(),
        port=port,
        controller_port=controller_port,
        tls=tls,
    )


_home = click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the broker's config, data, log and pid [default: $SIGEX_STATE_DIR/broker].",
)
_port = click.option("--port", default=9092, show_default=True, help="Client listener port.")
_cport = click.option(
    "--controller-port", default=9093, show_default=True, help="KRaft controller port."
)


@click.group()
def broker() -> None:
    """Run a local Apache Kafka broker (KRaft, loopback) for development and tests."""


@broker.command()
def fetch() -> None:
    """Fetch the broker's jars from Maven Central into the cache (start does this too)."""
    path = ensure_jars()
    click.echo(f"Kafka {kafka_version()} jars ready in {path}")


@broker.command()
@_home
@_port
@_cport
@click.option(
    "--tls-keystore",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="PEM with the broker's key, certificate and CA: turns on mutual TLS and ACLs.",
)
@click.option(
    "--tls-truststore",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="PEM with the CA that issues client certificates.",
)
@click.option(
    "--super-user",
    "super_users",
    multiple=True,
    help="Principal (certificate CN) that bypasses ACLs; repeatable [default: BROKER and ADMIN].",
)
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for it.")
def start(
    home: Path | None,
    port: int,
    controller_port: int,
    tls_keystore: Path | None,
    tls_truststore: Path | None,
    super_users: tuple[str, ...],
    timeout: float,
) -> None:
    """Start the broker and wait until it answers (harmless if it already runs)."""
    settings = _settings(home, port, controller_port, tls_keystore, tls_truststore, super_users)
    before = local.status(settings)
    result = local.start(settings, timeout=timeout)
    verb = "already running" if before.state is local.BrokerState.RUNNING else "started"
    mode = "mutual TLS + ACLs" if settings.tls else "plaintext, development only"
    click.echo(f"broker {verb} at {result.bootstrap} ({mode}), pid {result.pid}")
    click.echo(f"log: {result.log_path}")


@broker.command()
@_home
@_port
@_cport
def stop(home: Path | None, port: int, controller_port: int) -> None:
    """Stop the broker cleanly."""
    settings = _settings(home, port, controller_port)
    was = local.status(settings)
    local.stop(settings)
    if was.state is local.BrokerState.RUNNING:
        click.echo(f"broker stopped (was pid {was.pid})")
    else:
        click.echo("broker was not running")


@broker.command()
@_home
@_port
@_cport
def status(home: Path | None, port: int, controller_port: int) -> None:
    """Say whether the broker runs; exit 0 running, 1 stopped, 3 crashed."""
    result = local.status(_settings(home, port, controller_port))
    if result.state is local.BrokerState.RUNNING:
        click.echo(f"running at {result.bootstrap}, pid {result.pid}")
        return
    if result.state is local.BrokerState.STOPPED:
        click.echo("stopped")
        sys.exit(1)
    click.echo(f"crashed: {result.detail}")
    sys.exit(3)
