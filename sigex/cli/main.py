"""The ``sigex`` command line: one group per concern, each defined beside its code."""

from __future__ import annotations

import os
import sys

import click
from kafka.errors import KafkaError

from sigex import __version__
from sigex.cli.audit import audit
from sigex.cli.broker import broker
from sigex.cli.config import config
from sigex.cli.data import data
from sigex.cli.gateway import gateway
from sigex.cli.keys import keys
from sigex.cli.node import node
from sigex.cli.policy import policy
from sigex.cli.provision import provision
from sigex.cli.publish import publish
from sigex.cli.subscribe import subscribe
from sigex.config import load_settings
from sigex.errors import SigexError
from sigex.observability import configure_logging
from sigex.partners.demo import demo

#: Exit codes (sysexits.h): what a script calling sigex can tell apart.
EXIT_USAGE_OR_REFUSED = 2  # a SigexError: bad input, settings, a refusal (click's usage errors too)
EXIT_UNAVAILABLE = 69  # the broker did not answer or failed: try again later
EXIT_SOFTWARE = 70  # a defect in sigex: run again with --debug and report it
EXIT_IO = 74  # a file could not be read or written
EXIT_INTERRUPTED = 130


class _SigexGroup(click.Group):
    """Every failure ends in one line on standard error and a non-zero exit, never a trace.

    ``--debug`` (or SIGEX_DEBUG=1) shows the traceback instead, for a bug report.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # click's own: usage errors and deliberate exits
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
        except Exception as error:
            if _debugging(ctx):
                raise
            message, code = describe_failure(error)
            click.echo(f"sigex: {message}", err=True)
            sys.exit(code)


def describe_failure(error: Exception) -> tuple[str, int]:
    """One line for the user and the exit code, for any exception a command let through.

    The line never repeats input data (a record's values may hold a BSN): it names the
    kind of failure and where, not what was read.
    """
    if isinstance(error, SigexError):
        return str(error), EXIT_USAGE_OR_REFUSED
    if isinstance(error, KafkaError):
        return (
            f"the Kafka client failed ({type(error).__name__}); check that the broker is up "
            "and that this party may do this (sigex config check; SIGEX_LOG_LEVEL=INFO for "
            "the client's log)",
            EXIT_UNAVAILABLE,
        )
    if isinstance(error, UnicodeDecodeError):
        return (
            f"the input is not UTF-8 text (a bad byte at position {error.start})",
            EXIT_USAGE_OR_REFUSED,
        )
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{(error.strerror or type(error).__name__).lower()}", EXIT_IO
    return (
        f"internal error ({type(error).__name__}); run again with --debug (or SIGEX_DEBUG=1) "
        "for the traceback, and report it",
        EXIT_SOFTWARE,
    )


def _debugging(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("SIGEX_DEBUG", "").strip().lower() in (
        "1",
        "true",
        "yes",
    )


@click.group(cls=_SigexGroup)
@click.version_option(__version__, prog_name="sigex")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the traceback of a failure instead of one line (also SIGEX_DEBUG=1).",
)
def main(debug: bool) -> None:
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
    node,
    demo,
):
    main.add_command(command)
