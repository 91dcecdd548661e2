"""``sigex data``: generate a synthetic dataset and run the reference signal finders over it."""

from __future__ import annotations

import random
import sys
from datetime import datetime
from pathlib import Path

import click

from sigex.cli.options import connect, connection_options, settings_with
from sigex.clock import SystemClock
from sigex.identity import load_directory, load_party
from sigex.partners.producers.finders import FINDERS, finder_named, write_jsonl
from sigex.partners.producers.publishing import PublicationReport, publish_findings
from sigex.partners.producers.stamps import Progress
from sigex.partners.synthetic.generator import DEFAULT_AS_OF, DEFAULT_MONTHS, generate_dataset
from sigex.policies.compiler import load_policy
from sigex.producers.publisher import Publisher, load_or_create_record_key
from sigex.schemas.catalogue import load_catalogue


@click.group("data")
def data() -> None:
    """Synthetic datasets and the reference signal finders (no Kafka)."""


@data.command("generate")
@click.option("--people", type=click.IntRange(1), required=True, help="BRP persons to make.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same files.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the CSV files and manifest.json to.",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=DEFAULT_AS_OF.isoformat(),
    show_default=True,
    help="The dataset's 'today': the last payroll month is this date's month.",
)
@click.option("--months", type=click.IntRange(2, 24), default=DEFAULT_MONTHS, show_default=True)
def generate(people: int, seed: int, out_dir: Path, as_of: datetime, months: int) -> None:
    """Write a synthetic BRP extract, payroll filings, uitlener register and hires."""
    as_of_date = as_of.date()

    def show(done: int, total: int) -> None:
        click.echo(f"\rgenerating: {done:,} of {total:,} people", err=True, nl=False)

    summary = generate_dataset(
        out_dir, people=people, seed=seed, as_of=as_of_date, months=months, progress=show
    )
    click.echo("", err=True)
    click.echo(f"wrote {out_dir} (seed {seed}, {people:,} people, as of {as_of_date})")
    for file_name, rows in summary.rows_per_file:
        click.echo(f"  {file_name:<24} {rows:>12,} rows")
    click.echo("planted patterns:")
    for pattern, count in summary.planted:
        click.echo(f"  {pattern:<32} {count:>10,}")


@data.command("find")
@click.option(
    "--kind",
    type=click.Choice([f.kind for f in FINDERS]),
    required=True,
    help="Which reference finder to run.",
)
@click.option(
    "--in",
    "in_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Dataset directory written by 'sigex data generate' (or the same layout).",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON Lines file for the signal records ('-' for standard output).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for signal ids.")
def find(kind: str, in_dir: Path, out_file: Path, seed: int) -> None:
    """Run one reference finder over a dataset and write its signal records as JSON Lines."""
    finder = finder_named(kind)

    def show(progress: Progress) -> None:
        line = (
            f"\r{progress.finder}: {progress.rows_read:,} rows read, "
            f"{progress.signals_found:,} signals"
        )
        click.echo(line, err=True, nl=progress.finished)

    # A seeded Random only makes signal ids reproducible; it guards no secret.
    rng = random.Random(seed)  # noqa: S311
    records = finder.find(in_dir, clock=SystemClock(), rng=rng, progress=show)
    if str(out_file) == "-":
        written = write_jsonl(records, sys.stdout)
    else:
        # Write beside the target and rename, so a failed run leaves no partial file.
        partial = out_file.with_name(out_file.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8") as handle:
                written = write_jsonl(records, handle)
            partial.replace(out_file)
        finally:
            partial.unlink(missing_ok=True)
    click.echo(f"{finder.sender} {finder.signal}: {written:,} records -> {out_file}", err=True)


@data.command("publish")
@click.option(
    "--kind",
    type=click.Choice([f.kind for f in FINDERS]),
    required=True,
    help="Which reference producer (finder) to run.",
)
@click.option(
    "--in",
    "in_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Dataset directory (the layout 'sigex data generate' writes).",
)
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    required=True,
    help="Purpose to publish each finding for; repeatable.",
)
@connection_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for signal ids.")
@click.option(
    "--batch", "batch_size", default=256, show_default=True, help="Records per signed batch."
)
def publish_command(
    kind: str,
    in_dir: Path,
    purposes: tuple[str, ...],
    state_dir: Path | None,
    bootstrap: str | None,
    plaintext: bool,
    seed: int,
    batch_size: int,
) -> None:
    """Find signals in a dataset and publish them as the finder's party, streaming."""

    finder = finder_named(kind)
    settings = settings_with(state_dir, bootstrap)
    rng = random.Random(seed)  # noqa: S311 - reproducible signal ids, not a secret

    def show(report: PublicationReport) -> None:
        sent = sum(report.published.values())
        refused = sum(report.refused.values())
        click.echo(
            f"\r{finder.kind}: {report.found:,} found, {sent:,} published, {refused:,} refused",
            err=True,
            nl=False,
        )

    with Publisher(
        identity=load_party(settings.state_dir, finder.sender),
        directory=load_directory(settings.state_dir),
        policy=load_policy(settings.policy_dir),
        catalogue=load_catalogue(),
        connection=connect(settings, finder.sender, plaintext=plaintext),
        record_key=load_or_create_record_key(settings.state_dir, finder.sender),
    ) as publisher:
        records = finder.find(in_dir, clock=SystemClock(), rng=rng)
        report = publish_findings(
            publisher, finder.signal, records, purposes, batch_size=batch_size, progress=show
        )
    click.echo("", err=True)
    for line in report.lines():
        click.echo(line)
