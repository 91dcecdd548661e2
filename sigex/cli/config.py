"""``sigex config``: show the effective settings (secrets masked) and check them."""

from __future__ import annotations

import json
import os

import click

from sigex.config import check_settings, load_settings
from sigex.errors import ConfigurationError


@click.group(name="config")
def config() -> None:
    """Show and check the settings from SIGEX_* variables and SIGEX_CONFIG_FILE."""


@config.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def show(as_json: bool) -> None:
    """Print every effective setting; secrets are masked."""
    settings = load_settings(os.environ)
    described = settings.describe()
    if as_json:
        click.echo(json.dumps(dict(described), indent=2))
        return
    width = max(len(name) for name, _ in described)
    for name, value in described:
        click.echo(f"{name.ljust(width)}  {value}")


@config.command(name="check")
def check() -> None:
    """Load the settings strictly and check the files they name; exit 2 on any problem."""
    settings = load_settings(os.environ)
    problems = check_settings(settings)
    if problems:
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        raise ConfigurationError(f"{len(problems)} problem(s) in the settings")
    click.echo("settings ok")
