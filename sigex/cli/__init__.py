"""The ``sigex`` command line: one group per concern, each defined beside its code."""

from __future__ import annotations

import importlib
import os
import sys

import click

from sigex import __version__
from sigex.config import load_settings
from sigex.errors import SigexError
from sigex.observability import configure_logging

# Each entry is "module:attribute" of a click command or group. The module is
# imported when the command line starts, so a group lives beside its code.
COMMANDS = (
    "sigex.cli.broker:broker",
    "sigex.cli.policy:policy",
    "sigex.cli.keys:keys",
    "sigex.cli.audit:audit",
    "sigex.cli.config:config",
    "sigex.cli.data:data",
    "sigex.cli.publish:publish",
    "sigex.cli.subscribe:subscribe",
    "sigex.cli.provision:provision",
    "sigex.cli.gateway:gateway",
    "sigex.partners.demo:demo",
)


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


def _register() -> None:
    for entry in COMMANDS:
        module_name, _, attribute = entry.partition(":")
        module = importlib.import_module(module_name)
        main.add_command(getattr(module, attribute))


_register()
