"""The ``sigex`` command line: one group per concern, each defined beside its code."""

from __future__ import annotations

import os
import sys

import click

from sigex import __version__
from sigex.cli.audit import audit
from sigex.cli.broker import broker
from sigex.cli.config import config
from sigex.cli.data import data
from sigex.cli.gateway import gateway
from sigex.cli.keys import keys
from sigex.cli.policy import policy
from sigex.cli.provision import provision
from sigex.cli.publish import publish
from sigex.cli.subscribe import subscribe
from sigex.config import load_settings
from sigex.errors import SigexError
from sigex.observability import configure_logging
from sigex.partners.demo import demo


class _SigexGroup(click.Group):
    """Turns a SigexError into a one-line message and exit code 2, never a stack trace."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SigexError as error:
            click.echo(f"sigex: {error}", err=True)
            sys.exit(2)


@click.group(cls=_SigexGroup)
@click.version_option(__version__, prog_name="sigex")
def main() -> None:
    """sigex: a secure signal exchange between Dutch supervisors, over Apache Kafka."""
    # Strict settings: an unknown or malformed SIGEX_* variable stops every command here.
    configure_logging(load_settings(os.environ))


for command in (
    broker,
    policy,
    keys,
    audit,
    config,
    data,
    publish,
    subscribe,
    provision,
    gateway,
    demo,
):
    main.add_command(command)
