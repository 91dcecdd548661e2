"""``sigex audit``: query, verify, report, export, serve, checkpoint and index the access log."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from prometheus_client import CollectorRegistry

from sigex.audit._keys import Ed25519PrivateKey, Ed25519PublicKey
from sigex.audit.api import AUDITOR_KIND, AuditApi, make_server, server_tls_context
from sigex.audit.checkpoint import (
    Checkpoint,
    audit_keys,
    key_id,
    load_private_key,
    load_public_key,
    public_key_pem,
)
from sigex.audit.console.app import create_console_app
from sigex.audit.console.consultations import ConsultationLog
from sigex.audit.console.health import VERIFICATION_FILE, Verification, save_verification
from sigex.audit.console.server import bound_socket, console_server, principal_from_certificate
from sigex.audit.console.service import build_console
from sigex.audit.errors import AccessLogError, CheckpointError, WitnessError
from sigex.audit.report import build_report, citizen_document, render_text, report_context
from sigex.audit.report_pdf import render_pdf
from sigex.audit.report_texts import LANGUAGES, Language
from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.tabular import TABLE_COLUMNS, csv_text, table_row
from sigex.audit.tls import api_identity
from sigex.audit.verify import (
    Finding,
    VerificationReport,
    export_log,
    verify_export,
    verify_record,
    verify_store,
)
from sigex.audit.witness import Alarm
from sigex.audit.witness_check import WitnessReport, check_witnesses, read_alarms
from sigex.audit.witness_policy import Witnessing, WitnessPolicy, load_witness_policy
from sigex.cli.options import broker_connection, settings_with
from sigex.clock import SystemClock
from sigex.config import load_settings
from sigex.errors import SigexError
from sigex.exchange.access_record import EventKind, Outcome, format_time
from sigex.exchange.pseudonyms import SubjectPseudonymiser, load_pseudonym_key
from sigex.exchange.topology import WITNESS_ALARM_TOPIC
from sigex.identity import default_state_dir
from sigex.identity.browser_tls import pkcs12_bundle
from sigex.identity.directory import PartyEntry
from sigex.identity.federation import load_directory, load_party
from sigex.identity.keyfiles import write_private
from sigex.observability import AuditMetrics, Readiness, WitnessMetrics, start_operations
from sigex.policies.compiler import load_policy
from sigex.roles import Role
from sigex.transport import KafkaConnection


def _default_state_dir() -> Path:
    return default_state_dir()


def resolve_db(db: str | None, state_dir: Path) -> str:
    """``--db``, else ``$SIGEX_AUDIT_DB`` (with ``$SIGEX_AUDIT_DB_PASSWORD_FILE`` filled in),
    else ``<state>/audit.sqlite``."""
    if db:
        return db
    if os.environ.get("SIGEX_AUDIT_DB") and os.environ.get("SIGEX_AUDIT_DB_PASSWORD_FILE"):
        return load_settings(os.environ).audit_dsn().reveal()
    return os.environ.get("SIGEX_AUDIT_DB") or str(state_dir / "audit.sqlite")


@contextmanager
def _open(db: str | None, state_dir: Path, *, create: bool = True) -> Iterator[AccessLogStore]:
    """The store; ``create=False`` (commands that only read) never makes a new database."""
    store = AccessLogStore.open(resolve_db(db, state_dir), create=create)
    try:
        yield store
    finally:
        store.close()


def _audit_signing_key(state_dir: Path, key_file: Path | None) -> Ed25519PrivateKey:
    if key_file is not None:
        return load_private_key(key_file)
    key = load_party(state_dir, Role.AUDIT).signing_key
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError("the AUDIT party's signing key is not Ed25519")
    return key


def _directory_parties(state_dir: Path) -> tuple[PartyEntry, ...]:
    """The parties of the signed directory, or none when this state folder has no federation."""
    try:
        return load_directory(state_dir).parties
    except SigexError:
        return ()


def _audit_public_key(state_dir: Path, key_file: Path | None) -> list[Ed25519PublicKey] | None:
    """The keys checkpoints may be signed with: a PEM file, else the AUDIT party's signing keys
    in the signed directory (current and rotated; revoked keys are not trusted)."""
    if key_file is not None:
        return [load_public_key(key_file.read_bytes())]
    entry = next((p for p in _directory_parties(state_dir) if p.code == Role.AUDIT), None)
    return audit_keys(entry) or None  # None: the caller warns that signatures are not checked


def _connection(
    bootstrap: str, state_dir: Path, plaintext: bool, party: str, *, check: bool = True
) -> KafkaConnection:
    return broker_connection(
        party, state_dir=state_dir, bootstrap=bootstrap, plaintext=plaintext, check=check
    )


plaintext_option = click.option(
    "--plaintext", is_flag=True, help="Reach the broker without TLS (local development only)."
)
as_party_option = click.option(
    "--as-party",
    "as_party",
    default=Role.AUDIT,
    show_default=True,
    help="Whose federation certificate to show the broker.",
)


def _pseudonymiser(state_dir: Path) -> SubjectPseudonymiser:
    return SubjectPseudonymiser(load_pseudonym_key(state_dir))


def _time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _read_checkpoints(path: Path) -> list[Checkpoint]:
    """Checkpoints kept outside the database: one JSON checkpoint per line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Checkpoint.from_bytes(line.encode("utf-8")) for line in lines if line.strip()]


db_option = click.option(
    "--db",
    "db",
    default=None,
    help="SQLite path or postgresql:// DSN (default $SIGEX_AUDIT_DB or <state>/audit.sqlite).",
)
state_option = click.option(
    "--state-dir",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=_default_state_dir,
    show_default="$SIGEX_STATE_DIR or ~/.local/state/sigex",
    help="Folder with the federation keys and local state.",
)

witness_policy_option = click.option(
    "--witness-policy",
    "witness_policy",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="The witness policy file (default: the shipped policies/witnesses.yaml).",
)


def _witness_policy(path: Path | None) -> WitnessPolicy:
    return load_witness_policy(path)


def _witnessing(state_dir: Path, path: Path | None) -> Witnessing:
    """The witness policy, checked against the federation, with the directory to judge by."""
    policy = _witness_policy(path)
    policy.check_parties({p.code: p.kind for p in _directory_parties(state_dir)})
    return Witnessing(policy, lambda: load_directory(state_dir), SystemClock())


@click.group()
def audit() -> None:
    """The access log: who received what about whom, when, why, on which legal basis."""


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--bsn", default=None, help="A person's BSN (pseudonymised, never stored)."),
        click.option("--subject", default=None, help="A subject pseudonym (64 hex)."),
        click.option("--party", default=None, help="Sender or recipient."),
        click.option("--sender", default=None),
        click.option("--recipient", default=None),
        click.option("--purpose", default=None),
        click.option("--agreement", "agreement_id", default=None, help="Agreement id."),
        click.option("--legal-basis", "legal_basis", default=None, help="Legal basis code."),
        click.option("--signal", default=None),
        click.option(
            "--outcome", type=click.Choice([o.value for o in Outcome], case_sensitive=False)
        ),
        click.option(
            "--kind", type=click.Choice([k.value for k in EventKind], case_sensitive=False)
        ),
        click.option("--trace-id", "trace_id", default=None),
        click.option("--message-id", "message_id", default=None),
        click.option("--since", type=click.DateTime(), default=None, help="From this time (UTC)."),
        click.option("--until", type=click.DateTime(), default=None, help="Before this time."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _record_filter(state_dir: Path, values: Mapping[str, Any]) -> RecordFilter:
    subject = values.get("subject")
    if values.get("bsn"):
        subject = _pseudonymiser(state_dir).pseudonym(str(values["bsn"]))
    return RecordFilter(
        subject=subject,
        party=values.get("party"),
        sender=values.get("sender"),
        recipient=values.get("recipient"),
        purpose=values.get("purpose"),
        agreement_id=values.get("agreement_id"),
        legal_basis=values.get("legal_basis"),
        signal=values.get("signal"),
        outcome=Outcome(values["outcome"].upper()) if values.get("outcome") else None,
        kind=EventKind(values["kind"].upper()) if values.get("kind") else None,
        trace_id=values.get("trace_id"),
        message_id=values.get("message_id"),
        since=_time(values.get("since")),
        until=_time(values.get("until")),
    )


def _render_table(rows: Sequence[dict[str, str]]) -> str:
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in TABLE_COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in TABLE_COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in TABLE_COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)


@audit.command()
@db_option
@state_option
@_filter_options
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@click.option("--after", type=int, default=None, help="Page on: the last leaf index seen.")
@click.option("--format", "output", type=click.Choice(["table", "json", "csv"]), default="table")
def query(
    db: str | None, state_dir: Path, limit: int, after: int | None, output: str, **filters: Any
) -> None:
    """List records by person, party, purpose, agreement, signal, outcome and time."""
    record_filter = _record_filter(state_dir, filters)
    with _open(db, state_dir, create=False) as store:
        page = store.query(record_filter, limit=limit, after=after)
    if output == "json":
        document = {
            "records": [
                {"leaf_index": s.leaf_index, "record": s.record.to_dict()} for s in page.records
            ],
            "next_after": page.next_after,
        }
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    rows = [table_row(s) for s in page.records]
    if output == "csv":
        click.echo(csv_text(page.records), nl=False)
        return
    click.echo(_render_table(rows))
    if page.next_after is not None:
        click.echo(f"(more: --after {page.next_after})", err=True)


def _published_checkpoints(connection: KafkaConnection) -> list[Checkpoint]:
    """The checkpoints on sigex.audit.checkpoints; a broker that cannot be read is one line."""
    from sigex.audit.checkpoint_topic import fetch_published_checkpoints  # noqa: PLC0415  # Kafka layer

    connection.check()
    return fetch_published_checkpoints(connection)


def _keep_verification(state_dir: Path, report: VerificationReport) -> None:
    """Keep the outcome for the console's log health page (best effort: a read-only state
    folder only loses that page's line, never the verification)."""
    try:
        verification = Verification.of(report, SystemClock().now())
        save_verification(state_dir / "audit" / VERIFICATION_FILE, verification)
    except OSError as error:
        click.echo(f"note: the outcome was not kept for the console ({error.strerror})", err=True)


def _print_report(report: VerificationReport) -> None:
    for finding in report.findings[:200]:
        click.echo(f"  {finding}")
    if len(report.findings) > 200:
        click.echo(f"  ... and {len(report.findings) - 200} more")
    click.echo(report.summary())


@audit.command()
@db_option
@state_option
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM public key (or certificate) of the audit service; default from the directory.",
)
@click.option(
    "--checkpoints",
    "checkpoints_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Published checkpoints kept elsewhere (JSON lines).",
)
@click.option(
    "--bootstrap",
    envvar="SIGEX_BOOTSTRAP",
    default=None,
    help="Read published checkpoints from this broker (default: $SIGEX_BOOTSTRAP when set).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Do not read published checkpoints from the broker, even when one is configured.",
)
@plaintext_option
@as_party_option
@click.option("--record", "leaf_index", type=int, default=None, help="Check one record's proof.")
@click.option(
    "--export",
    "export_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Verify an export file offline instead of the database.",
)
@click.option(
    "--allow-uncovered",
    is_flag=True,
    help="Do not fail on records newer than the last checkpoint.",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Do not fail on a log without records (published checkpoints still must match).",
)
@witness_policy_option
@click.option(
    "--alarms",
    "alarm_paths",
    type=click.Path(path_type=Path, exists=True),
    multiple=True,
    help="Witness alarm evidence (a witness's alarms/ folder or one file); repeatable.",
)
@click.option(
    "--allow-unwitnessed",
    is_flag=True,
    help="Do not fail when no checkpoint has the co-signatures the witness policy needs.",
)
@click.pass_context
def verify(
    ctx: click.Context,
    db: str | None,
    state_dir: Path,
    public_key: Path | None,
    checkpoints_file: Path | None,
    bootstrap: str | None,
    offline: bool,
    plaintext: bool,
    as_party: str,
    leaf_index: int | None,
    export_file: Path | None,
    allow_uncovered: bool,
    allow_empty: bool,
    witness_policy: Path | None,
    alarm_paths: tuple[Path, ...],
    allow_unwitnessed: bool,
) -> None:
    """Verify the whole log against its checkpoints, one record, or an export offline.

    Opens the database read only and never creates one. When a broker is configured
    (--bootstrap or $SIGEX_BOOTSTRAP) the checkpoints published on sigex.audit.checkpoints are
    read back and must match, unless --offline. An empty log fails unless --allow-empty.
    With the federation's directory, it also says which checkpoint the witness policy's
    quorum co-signed, and fails when none did (unless --allow-unwitnessed) or when an alarm
    (--alarms) proves the log signed two conflicting checkpoints.
    """
    key = _audit_public_key(state_dir, public_key)
    if key is None:
        click.echo("warning: no audit public key found; signatures are NOT checked", err=True)
    external = _read_checkpoints(checkpoints_file) if checkpoints_file else []
    broker = None
    if bootstrap and not offline:
        # checked when it is asked, after the log was found
        broker = _connection(bootstrap, state_dir, plaintext, as_party, check=False)
    if export_file is not None:
        external += _published_checkpoints(broker) if broker else []
        report = verify_export(export_file, public_key=key, external_checkpoints=external)
        _print_report(report)
        ctx.exit(0 if report.ok else 1)
    with _open(db, state_dir, create=False) as store:  # no log: fail before asking the broker
        external += _published_checkpoints(broker) if broker else []
        if leaf_index is not None:
            latest = store.latest_checkpoint()
            if latest is None:
                raise CheckpointError("no checkpoint in the store yet")
            findings = verify_record(store, leaf_index, latest, key)
            for finding in findings:
                click.echo(f"  {finding}")
            if findings:
                click.echo(f"FAILED: record {leaf_index}")
                ctx.exit(1)
            click.echo(
                f"ok: record {leaf_index} is in the log of the checkpoint at tree size "
                f"{latest.tree_size} (issued {format_time(latest.issued_at)})"
            )
            return
        report = verify_store(
            store,
            public_key=key,
            external_checkpoints=external,
            require_coverage=not allow_uncovered,
            allow_empty=allow_empty,
        )
        alarms = read_alarms(alarm_paths)
        if broker is not None:
            alarms += [(f"topic {WITNESS_ALARM_TOPIC}", a) for a in _published_alarms(broker)]
        witnesses = _witness_lines(store, state_dir, key, witness_policy, alarms)
    problems = witnesses.problems(require_witnessed=not allow_unwitnessed) if witnesses else []
    report = report.with_findings(Finding("witnesses", problem) for problem in problems)
    _keep_verification(state_dir, report)
    for line in witnesses.lines() if witnesses else []:
        click.echo(line)
    _print_report(report)
    ctx.exit(0 if report.ok else 1)


def _witness_lines(
    store: AccessLogStore,
    state_dir: Path,
    key: list[Ed25519PublicKey] | None,
    witness_policy: Path | None,
    alarms: Sequence[tuple[str, Alarm]],
) -> WitnessReport | None:
    """What the witnesses say, when the directory and the audit key are there to judge it."""
    if key is None or not _directory_parties(state_dir):
        click.echo("note: no party directory or audit key: witnesses are NOT checked", err=True)
        return None
    return check_witnesses(store, _witnessing(state_dir, witness_policy), key, alarms)


def _published_alarms(connection: KafkaConnection) -> list[Alarm]:
    """The alarms witnesses published; a broker that cannot be read is one line."""
    from sigex.audit.alarm_topic import fetch_published_alarms  # noqa: PLC0415  # Kafka layer

    return fetch_published_alarms(connection)


@audit.command()
@db_option
@state_option
@click.option("--bsn", required=True, help="The person's BSN (pseudonymised, never stored).")
@click.option(
    "--lang",
    "language",
    type=click.Choice(LANGUAGES),
    default="nl",
    show_default=True,
    help="The report's language: Dutch (for the citizen) or English.",
)
@click.option("--format", "output", type=click.Choice(["text", "json", "pdf"]), default="text")
@click.option(
    "--out",
    "destination",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report to this file (required for --format pdf).",
)
def report(
    db: str | None,
    state_dir: Path,
    bsn: str,
    language: Language,
    output: str,
    destination: Path | None,
) -> None:
    """The GDPR article 15 answer for one person: every recipient, purpose, basis and date."""
    if output == "pdf" and destination is None:
        raise click.UsageError("--format pdf writes a file: give --out")
    subject = _pseudonymiser(state_dir).pseudonym(bsn)
    with _open(db, state_dir, create=False) as store:
        records = list(store.query_all(RecordFilter(subject=subject)))
        latest = store.latest_checkpoint()
    answer = build_report(records, SystemClock().now(), latest.tree_size if latest else None)
    if output == "json":
        _emit(json.dumps(answer.to_dict(), indent=2, sort_keys=True) + "\n", destination)
        return
    names = {p.code: p.name for p in _directory_parties(state_dir)}
    context = report_context(names, load_policy(settings_with(state_dir).policy_dir))
    document = citizen_document(answer, language, context)
    if output == "pdf":
        assert destination is not None  # checked above
        _write_file(destination, render_pdf(document))
        click.echo(f"wrote the report to {destination}", err=True)
        return
    _emit(render_text(document), destination)


def _emit(text: str, destination: Path | None) -> None:
    if destination is None:
        click.echo(text, nl=False)
    else:
        _write_file(destination, text.encode("utf-8"))


def _write_file(destination: Path, content: bytes) -> None:
    """Write whole or not at all: a partial file is never left under the name asked for."""
    partial = destination.with_name(destination.name + ".partial")
    try:
        partial.write_bytes(content)
        os.replace(partial, destination)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise click.FileError(str(destination), hint=error.strerror or "cannot write") from None


@audit.command()
@db_option
@state_option
@click.option(
    "--out", "destination", type=click.Path(path_type=Path, dir_okay=False), required=True
)
@click.option("--bsn", default=None, help="Export only this person's records, with proofs.")
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM public key to embed (default: the AUDIT key from the directory).",
)
def export(
    db: str | None, state_dir: Path, destination: Path, bsn: str | None, public_key: Path | None
) -> None:
    """Write the log (or one person's records with inclusion proofs) for offline verification."""
    key = _audit_public_key(state_dir, public_key)
    record_filter = None
    if bsn:
        record_filter = RecordFilter(subject=_pseudonymiser(state_dir).pseudonym(bsn))
    with _open(db, state_dir, create=False) as store:
        count = export_log(store, destination, public_key=key, record_filter=record_filter)
    click.echo(f"exported {count} records to {destination}")


@audit.command(name="key")
@state_option
def audit_key(state_dir: Path) -> None:
    """Print the audit service's public key and its key id, to pin in the console out of band."""
    keys = _audit_public_key(state_dir, None)
    if not keys:
        raise CheckpointError("no audit key in this state folder's signed directory")
    for public_key in keys:
        click.echo(f"key id {key_id(public_key)}")
        click.echo(public_key_pem(public_key).decode("ascii"), nl=False)


@audit.command(name="browser-certificate")
@state_option
@click.option(
    "--as", "party", default="AUDITOR", show_default=True, help="The auditor party whose key."
)
@click.option(
    "--out", "destination", type=click.Path(path_type=Path, dir_okay=False), required=True
)
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Read the PKCS#12 password from this file (default: ask).",
)
def browser_certificate(
    state_dir: Path, party: str, destination: Path, password_file: Path | None
) -> None:
    """Write an auditor's certificate and key as a PKCS#12 file to import into a browser."""
    kinds = {p.code: p.kind for p in _directory_parties(state_dir)}
    if kinds.get(party) != AUDITOR_KIND:
        raise click.BadParameter(f"{party} is not an auditor in the directory", param_hint="--as")
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").strip()
    else:
        password = click.prompt("Password for the file", hide_input=True, confirmation_prompt=True)
    identity = load_party(state_dir, party)
    files = (identity.tls_certificate, identity.tls_key, identity.ca_certificate)
    if files[0] is None or files[1] is None or files[2] is None:
        raise click.UsageError(f"{party} has no TLS certificate in this state folder")
    bundle = pkcs12_bundle(
        files[0],
        files[1],
        files[2],
        password.encode("utf-8"),
        f"sigex {party}",
    )
    write_private(destination, bundle)
    click.echo(f"wrote {destination}: import it into the browser the auditor uses", err=True)


@audit.command()
@db_option
@state_option
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM Ed25519 key (default: the AUDIT party's signing key).",
)
@click.option("--bootstrap", default=None, help="Also publish it to sigex.audit.checkpoints.")
@plaintext_option
@witness_policy_option
def checkpoint(
    db: str | None,
    state_dir: Path,
    signing_key: Path | None,
    bootstrap: str | None,
    plaintext: bool,
    witness_policy: Path | None,
) -> None:
    """Sign the log's current size and root, keep the checkpoint, and publish it."""
    key = _audit_signing_key(state_dir, signing_key)
    origin = _witness_policy(witness_policy).origin
    with _open(db, state_dir) as store:
        signed = store.checkpoint(key, SystemClock(), origin)
    if bootstrap:
        from sigex.audit.checkpoint_topic import publish_checkpoint  # noqa: PLC0415  # Kafka layer, lazily

        publish_checkpoint(_connection(bootstrap, state_dir, plaintext, Role.AUDIT), signed)
    click.echo(signed.to_bytes().decode("utf-8"))


@audit.command()
@db_option
@state_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8443, show_default=True, help="The JSON API's port.")
@click.option(
    "--console-port",
    type=int,
    default=8444,
    show_default=True,
    help="The auditor's console (web pages) on this port; 0 picks one.",
)
@click.option("--no-console", is_flag=True, help="Serve the JSON API only.")
@click.option("--cert", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--key", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--ca", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM Ed25519 key to sign checkpoints over the records of the questions asked "
    "(default: the AUDIT party's signing key, when this state folder has it).",
)
@witness_policy_option
def serve(
    db: str | None,
    state_dir: Path,
    host: str,
    port: int,
    console_port: int,
    no_console: bool,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    signing_key: Path | None,
    witness_policy: Path | None,
) -> None:
    """The JSON API and the auditor's console, over mutual TLS with federation certificates."""

    cert, key = api_identity(state_dir, cert, key)
    client_ca = ca or state_dir / "federation" / "ca.pem"
    context = server_tls_context(cert, key, client_ca)
    location = resolve_db(db, state_dir)
    try:
        pseudonymiser: SubjectPseudonymiser | None = _pseudonymiser(state_dir)
    except AccessLogError:
        pseudonymiser = None
    parties = _directory_parties(state_dir)
    signing = _console_signing_key(state_dir, signing_key)
    witnessing = _witnessing(state_dir, witness_policy) if parties else None
    # the API's questions are written to the log before they are answered, as the console's are
    api = AuditApi(
        lambda: AccessLogStore.open(location),
        {p.code: p.kind for p in parties},
        pseudonymiser,
        ConsultationLog(SystemClock(), signing),
        witnessing,
    )

    def generations() -> Mapping[str, int]:
        return load_directory(state_dir).generations()

    server = make_server(api, host, port, context, generations=generations)
    click.echo(f"serving the access log API on https://{host}:{server.server_address[1]}", err=True)
    if no_console:
        _serve_api(server)
        return
    console = build_console(
        location,
        parties,
        pseudonymiser,
        load_policy(settings_with(state_dir).policy_dir),
        signing,
        _audit_public_key(state_dir, None),
        state_dir / "audit" / VERIFICATION_FILE,
        witnessing=witnessing,
    )
    app = create_console_app(console, principal_from_certificate(generations))
    web = console_server(app, host, console_port, cert, key, client_ca)
    listening = bound_socket(host, console_port)  # bound here, so that port 0 can be printed
    threading.Thread(target=_serve_api, args=(server,), name="audit-api", daemon=True).start()
    click.echo(
        f"serving the auditor's console on https://{host}:{listening.getsockname()[1]}/", err=True
    )
    try:
        web.run(sockets=[listening])
    finally:
        server.shutdown()


def _serve_api(server: Any) -> None:
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _console_signing_key(state_dir: Path, key_file: Path | None) -> Ed25519PrivateKey | None:
    """The key for checkpoints over console records; without one the indexer covers them."""
    try:
        return _audit_signing_key(state_dir, key_file)
    except SigexError:
        if key_file is not None:
            raise
        click.echo(
            "no audit signing key here: the console's own records wait for the indexer's "
            "next checkpoint",
            err=True,
        )
        return None


@audit.command()
@db_option
@state_option
@click.option(
    "--bootstrap", envvar="SIGEX_BOOTSTRAP", required=True, help="Kafka bootstrap servers."
)
@plaintext_option
@click.option("--group-id", default="sigex-audit-indexer", show_default=True)
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM Ed25519 key (default: the AUDIT party's signing key).",
)
@click.option(
    "--publish-every",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Publish a checkpoint after this many new records.",
)
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    help="Stop once nothing waits and no event came for this many seconds, counted from "
    "when the group assigned the partitions (default: run until stopped). Exits non-zero "
    "rather than stop with events waiting that it could not read.",
)
@click.option("--no-metrics", is_flag=True, help="Do not serve /metrics, /livez and /readyz.")
@witness_policy_option
def index(
    db: str | None,
    state_dir: Path,
    bootstrap: str,
    plaintext: bool,
    group_id: str,
    signing_key: Path | None,
    publish_every: int,
    idle_exit: float | None,
    no_metrics: bool,
    witness_policy: Path | None,
) -> None:
    """Consume sigex.audit and sigex.receipts into the log, checkpointing as it goes.

    Serves /metrics, /livez and /readyz on SIGEX_METRICS_PORT (SIGEX_HEALTH_PORT);
    SIGTERM or SIGINT finishes the batch in hand, then stops.
    """
    from sigex.audit.indexer import IndexerSettings, run_indexer  # noqa: PLC0415  # lazily
    from sigex.exchange.party_events import PartyEventReader  # noqa: PLC0415  # lazily

    key = _audit_signing_key(state_dir, signing_key)
    reader = PartyEventReader.for_audit_service(state_dir, SystemClock())  # the pseudonym key
    settings = IndexerSettings(
        connection=_connection(bootstrap, state_dir, plaintext, Role.AUDIT),
        group_id=group_id,
        publish_every=publish_every,
        idle_exit_seconds=idle_exit,
        origin=_witness_policy(witness_policy).origin,
    )
    stop = threading.Event()
    ready = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    metrics = AuditMetrics(CollectorRegistry(), SystemClock())
    servers = None
    if not no_metrics:
        process = load_settings(os.environ)
        servers = start_operations(
            registry=metrics.registry,
            readiness=lambda: Readiness.yes() if ready.is_set() else Readiness.no(("joining",)),
            metrics_port=process.metrics_port,
            health_port=process.health_port,
        )
    try:
        with _open(db, state_dir) as store:
            stats = run_indexer(
                store,
                key,
                SystemClock(),
                settings,
                stop=stop,
                party_events=reader,
                metrics=metrics,
                on_ready=ready.set,
            )
    finally:
        if servers is not None:
            servers.stop()
    click.echo(
        f"indexed {stats.appended} new records ({stats.skipped} replayed, "
        f"{stats.rejected} rejected), tree size {stats.tree_size}, "
        f"{stats.published} checkpoint(s) published",
        err=True,
    )
    if stats.conflicts:
        click.echo(
            f"ALARM: {stats.conflicts} record(s) conflict with a different record under the same "
            "key; the first stands (see the indexer log: audit_record_conflict)",
            err=True,
        )
    sys.stdout.flush()


@audit.command()
@state_option
@click.option("--as", "party", required=True, help="The party whose witness this is.")
@click.option(
    "--api",
    "api_url",
    default="https://127.0.0.1:8443",
    show_default=True,
    help="The audit API to fetch checkpoints from and hand cosignatures to.",
)
@click.option(
    "--bootstrap",
    envvar="SIGEX_BOOTSTRAP",
    default=None,
    help="Publish alarms on sigex.audit.witness-alarms at this broker (default: "
    "$SIGEX_BOOTSTRAP when set; without one the evidence stays in the witness's folder).",
)
@plaintext_option
@click.option("--once", is_flag=True, help="One round, then exit (0 co-signed, 1 not, 3 alarm).")
@click.option(
    "--interval",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between rounds when running on.",
)
@witness_policy_option
def witness(
    state_dir: Path,
    party: str,
    api_url: str,
    bootstrap: str | None,
    plaintext: bool,
    once: bool,
    interval: float,
    witness_policy: Path | None,
) -> None:
    """Witness the access log as PARTY: co-sign each checkpoint that extends the last one.

    The witness keeps the last checkpoint it co-signed in <state>/witness/PARTY; a
    checkpoint that conflicts with it is refused and kept there as evidence (alarms/),
    and the command exits 3 (with --once) or logs the alarm and runs on.
    """
    from sigex.audit.witness import Witness  # noqa: PLC0415  # lazily
    from sigex.audit.witness_client import AuditApiClient, witness_round  # noqa: PLC0415

    policy = _witness_policy(witness_policy)
    if party not in policy.witnesses:
        raise click.UsageError(f"{party} is not a witness in the witness policy")
    log_keys = _audit_public_key(state_dir, None)
    if not log_keys:
        raise click.UsageError("the party directory lists no signing key of the audit service")
    observer = Witness.for_party(
        state_dir, party, origin=policy.origin, log_keys=log_keys, clock=SystemClock()
    )
    client = AuditApiClient(api_url, load_party(state_dir, party))
    broker = _connection(bootstrap, state_dir, plaintext, party, check=False) if bootstrap else None
    if once:
        outcome = witness_round(client, observer)
        _say_round(party, outcome.alarm, outcome.detail, None if outcome.repeated else broker)
        sys.exit(3 if outcome.alarm is not None else 0 if outcome.cosigned else 1)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    metrics = WitnessMetrics(CollectorRegistry())
    reached = threading.Event()  # ready while the audit API answers its rounds
    process = load_settings(os.environ)
    servers = start_operations(
        registry=metrics.registry,
        readiness=lambda: Readiness.yes() if reached.is_set() else Readiness.no(("no round",)),
        metrics_port=process.metrics_port,
        health_port=process.health_port,
    )
    try:
        while not stop.is_set():
            outcome = witness_round(client, observer)
            _say_round(party, outcome.alarm, outcome.detail, None if outcome.repeated else broker)
            if outcome.answered:
                reached.set()
            else:
                reached.clear()
            size = outcome.checkpoint.tree_size if outcome.checkpoint else None
            metrics.round(
                cosigned=outcome.cosigned, alarm=outcome.alarm is not None, tree_size=size
            )
            stop.wait(interval)
    finally:
        servers.stop()


def _say_round(
    party: str, alarm: Alarm | None, detail: str, broker: KafkaConnection | None
) -> None:
    """Say what a round did; publish an alarm's evidence where every auditor reads it."""
    if alarm is None:
        click.echo(f"{party}: {detail}", err=True)
        return
    click.echo(f"ALARM ({party}): {detail}", err=True)
    if broker is None:
        return
    from sigex.audit.alarm_topic import publish_alarm  # noqa: PLC0415  # Kafka layer

    try:
        publish_alarm(broker, alarm)
        click.echo(f"ALARM ({party}): published on {WITNESS_ALARM_TOPIC}", err=True)
    except WitnessError as error:
        click.echo(f"ALARM ({party}): {error}; the evidence is kept in the folder", err=True)
