"""``sigex demo``: from nothing to a running exchange on the local broker, in one command."""

from __future__ import annotations

import click

from broker import local


@click.command()
def demo() -> None:
    """Start the local broker and run a demo exchange between the parties."""
    settings = local.BrokerSettings(home=local.default_home())
    result = local.start(settings)
    click.echo(f"Kafka broker running at {result.bootstrap} (pid {result.pid}).")
    click.echo("Stop it with: .venv/bin/sigex broker stop")
