"""``sigex demo``: from nothing to a finished exchange on a local broker, in one command.

It creates (or keeps) a development federation, starts a local broker with
mutual TLS and ACLs, provisions topics and ACLs from the agreements, makes a
synthetic dataset, runs the gateway, lets RvIG, UWV and the NLA find and
publish signals, lets every recipient take them into its SQLite inbox, lets
the municipalities answer frequent movers with outcomes, indexes the access
log and prints what happened.

Everything lives under one folder (``--state-dir``, default
``$SIGEX_STATE_DIR/demo``). Running it again continues: the federation, broker,
data and inboxes are kept and the producers publish only what they have not
published before (a ledger per producer). ``--fresh`` stops the broker and
removes the folder first.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import click

from sigex.audit.api import AuditApi, make_server, server_tls_context
from sigex.audit.checkpoint import audit_keys
from sigex.audit.indexer import IndexerSettings, run_indexer
from sigex.audit.store import AccessLogStore
from sigex.audit.tls import api_identity
from sigex.audit.witness import Witness
from sigex.audit.witness_client import AuditApiClient, witness_round
from sigex.audit.witness_policy import Witnessing, WitnessVerdict, load_witness_policy
from sigex.broker import local
from sigex.broker.gateway import GatewayRunner
from sigex.broker.gateway_core import PolicyGateway
from sigex.broker.provision import provision_cluster
from sigex.clock import Clock, FixedClock, SystemClock
from sigex.consumers.subscriber import Subscriber
from sigex.exchange.party_events import PartyEventReader
from sigex.exchange.pseudonyms import SubjectPseudonyms, load_pseudonym_key
from sigex.exchange.topology import ProvisioningDefaults, compile_topology, ingress_topics
from sigex.identity import (
    default_state_dir,
    init_federation,
    load_directory,
    load_party,
    read_parties,
)
from sigex.partners import case_system
from sigex.partners.consumers.inbox import Inbox
from sigex.partners.consumers.outcomes import answer_frequent_movers
from sigex.partners.node_runner import DEFAULT_NODE_PORT, DemoNode
from sigex.partners.node_runner import PARTY as NODE_RUNNER_PARTY
from sigex.partners.producers.finders import (
    ADMISSION,
    BSN_MISMATCH,
    FREQUENT_MOVERS,
    ReferenceFinder,
)
from sigex.partners.producers.publishing import publish_findings
from sigex.partners.synthetic.generator import generate_dataset
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import POLICY_DIRECTORY, load_policy
from sigex.producers.publisher import Publisher, RefusedSignal, load_or_create_record_key
from sigex.roles import Role
from sigex.schemas.catalogue import Catalogue, load_catalogue
from sigex.transport import KafkaConnection

REPO_PARTIES = POLICY_DIRECTORY / "parties.yaml"

#: What each reference producer publishes, for which purposes.
PUBLICATIONS: tuple[tuple[ReferenceFinder, tuple[str, ...]], ...] = (
    (FREQUENT_MOVERS, ("LAA_SIGNAAL",)),
    (BSN_MISMATCH, ("BRP_TERUGMELDING", "SUWI64_ARB", "LA_BSN_FEEDBACK")),
    (ADMISSION, ("SUWI64_FISC", "WTTA_TOEZICHT")),
)

#: The purposes each receiving party declares.
INBOXES: Mapping[str, tuple[str, ...]] = {
    "NLA": ("SUWI64_ARB",),
    "BD": ("SUWI64_FISC", "WTTA_TOEZICHT"),
    "UWV": ("SUWI64_SZ", "WTTA_TOEZICHT"),
    "JUSTIS": ("WTTA_TOEZICHT",),
    "RVIG": ("LAA_TERUGKOPPELING",),
}
MUNICIPALITY_PURPOSES = ("LAA_SIGNAAL", "BRP_TERUGMELDING")
#: the municipality that takes part through its partner node and a case system calling it
NODE_PARTY = NODE_RUNNER_PARTY


def _default_state_dir() -> Path:
    return default_state_dir() / "demo"


@dataclass
class DemoReport:
    published: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    refused: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    reasons: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    received: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    example_bsn: str | None = None
    case_system: case_system.Summary | None = None

    def note_refusals(self, key: tuple[str, str, str], refusals: Iterable[RefusedSignal]) -> None:
        for refusal in refusals:
            self.refused[key] += 1
            self.reasons.setdefault(key, set()).update(refusal.reason_codes)


class Ledger:
    """Which signal ids a producer already published, so a second run continues cleanly."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS published (signal_id TEXT, purpose TEXT, "
            "PRIMARY KEY (signal_id, purpose))"
        )

    def new(self, records: list[dict[str, object]], purpose: str) -> list[dict[str, object]]:
        fresh = []
        for record in records:
            row = self._db.execute(
                "SELECT 1 FROM published WHERE signal_id = ? AND purpose = ?",
                (str(record["signal_id"]), purpose),
            ).fetchone()
            if row is None:
                fresh.append(record)
        return fresh

    def add(self, records: list[dict[str, object]], purpose: str) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO published VALUES (?, ?)",
                [(str(r["signal_id"]), purpose) for r in records],
            )

    def close(self) -> None:
        self._db.close()


def _say(step: str, text: str) -> None:
    click.echo(f"{click.style(step, bold=True)} {text}")


def _start_broker(state: Path, port: int) -> local.BrokerSettings:
    federation = state / "federation"
    settings = local.BrokerSettings(
        home=state / "broker",
        port=port,
        controller_port=port + 1,
        tls=local.TlsSettings(
            keystore_pem=federation / "broker" / "keystore.pem",
            truststore_pem=federation / "broker" / "truststore.pem",
        ),
    )
    before = local.status(settings)
    local.start(settings)
    verb = "already running" if before.state is local.BrokerState.RUNNING else "started"
    _say("broker", f"{verb} at {settings.bootstrap} with mutual TLS and ACLs ({settings.log_path})")
    return settings


def _publish(
    state: Path,
    connection: KafkaConnection,
    policy: CompiledPolicy,
    catalogue: Catalogue,
    clock: Clock,
    dataset: Path,
    report: DemoReport,
) -> int:
    total = 0
    directory = load_directory(state)
    for finder, purposes in PUBLICATIONS:
        rng = random.Random(finder.kind)  # noqa: S311 - repeatable signal ids, not secrets
        ledger = Ledger(state / "producers" / f"{finder.sender}.sqlite")
        try:
            with Publisher(
                identity=load_party(state, finder.sender),
                directory=directory,
                policy=policy,
                catalogue=catalogue,
                connection=KafkaConnection.for_party(connection.bootstrap, state, finder.sender),
                record_key=load_or_create_record_key(state, finder.sender),
                clock=clock,
            ) as publisher:
                found = publish_findings(
                    publisher,
                    finder.signal,
                    finder.find(dataset, clock=clock, rng=rng),
                    purposes,
                    already_published=ledger.new,
                    on_published=ledger.add,
                )
        finally:
            ledger.close()
        for purpose in purposes:
            key = (finder.sender, finder.signal, purpose)
            report.published[key] += found.published[purpose]
            report.refused[key] += found.refused[purpose]
            report.reasons.setdefault(key, set()).update(found.reasons.get(purpose, {}))
            total += found.published[purpose]
            _say(
                "publish",
                f"{finder.sender:<6} {finder.signal:<28} {purpose:<18} "
                f"{report.published[key]:>6} sent, {report.refused[key]:>6} refused",
            )
        if report.example_bsn is None and found.example_subjects:
            report.example_bsn = found.example_subjects[0]
    return total


def _receive(
    state: Path,
    bootstrap: str,
    policy: CompiledPolicy,
    catalogue: Catalogue,
    clock: Clock,
    parties: Mapping[str, tuple[str, ...]],
    idle_seconds: float = 1.5,
) -> dict[str, Inbox]:
    inboxes: dict[str, Inbox] = {}
    directory = load_directory(state)
    for party, purposes in parties.items():
        inbox = Inbox(state / "inboxes" / f"{party}.sqlite")
        inboxes[party] = inbox
        with Subscriber(
            identity=load_party(state, party),
            directory=directory,
            catalogue=catalogue,
            connection=KafkaConnection.for_party(bootstrap, state, party),
            purposes=purposes,
            policy=policy,
            clock=clock,
            already_handed=inbox.message_ids(),
        ) as subscriber:
            subscriber.drain(inbox.store, idle_seconds=idle_seconds)
    return inboxes


def _wait_for_gateway(runner: GatewayRunner, target: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while runner.processed < target and time.monotonic() < deadline:
        time.sleep(0.2)


@click.command()
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for everything the demo makes [default: $SIGEX_STATE_DIR/demo].",
)
@click.option("--fresh", is_flag=True, help="Stop the demo broker and start from nothing.")
@click.option("--people", default=20_000, show_default=True, help="People in the synthetic BRP.")
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic data.")
@click.option("--port", default=9092, show_default=True, help="Broker port (controller: +1).")
@click.option(
    "--node-port",
    default=DEFAULT_NODE_PORT,
    show_default=True,
    help=f"Port of {NODE_PARTY}'s partner node (on 127.0.0.1).",
)
@click.option(
    "--at",
    "at_day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Pretend it is this day (at noon UTC), to see legal bases come into force.",
)
def demo(
    state_dir: Path | None,
    fresh: bool,
    people: int,
    seed: int,
    port: int,
    node_port: int,
    at_day: datetime | None,
) -> None:
    """Run a whole exchange on a local broker and summarise who received what."""
    state = (state_dir or _default_state_dir()).resolve()
    if fresh and state.exists():
        local.stop(local.BrokerSettings(home=state / "broker", port=port, controller_port=port + 1))
        shutil.rmtree(state)
        _say("fresh", f"removed {state}")
    state.mkdir(parents=True, exist_ok=True)
    (state / "producers").mkdir(exist_ok=True)
    clock: Clock = (
        FixedClock(datetime(at_day.year, at_day.month, at_day.day, 12, tzinfo=UTC))
        if at_day
        else SystemClock()
    )
    today = clock.now().date()

    created = init_federation(state, read_parties(REPO_PARTIES), SystemClock()).created
    _say(
        "keys",
        f"{'created' if created else 'kept'} the development federation in {state / 'federation'}",
    )
    broker = _start_broker(state, port)
    bootstrap = broker.bootstrap
    policy = load_policy()
    catalogue = load_catalogue()
    provisioned = provision_cluster(
        KafkaConnection.for_party(bootstrap, state, Role.ADMIN),
        compile_topology(
            policy,
            ProvisioningDefaults(partitions=3),
            at=clock.now(),  # the agreements in force on the demo's day
            generations=load_directory(state).generations(),
        ),
    )
    _say(
        "provision",
        f"policy {policy.version}: {len(provisioned.topics_created)} topics and "
        f"{len(provisioned.acls_created)} ACLs created (the agreements compiled to Kafka ACLs)",
    )

    dataset = state / "data" / f"people-{people}-seed-{seed}"
    if not (dataset / "manifest.json").exists():
        generate_dataset(dataset, people=people, seed=seed, as_of=today)
    _say("data", f"{people:,} synthetic people (seed {seed}) in {dataset}")

    report, inboxes = _exchange(state, bootstrap, policy, catalogue, clock, dataset, node_port)
    audit_db = state / "audit.sqlite"
    with AccessLogStore.open(str(audit_db)) as store:
        stats = run_indexer(
            store,
            load_party(state, Role.AUDIT).signing_key,
            SystemClock(),
            IndexerSettings(
                connection=KafkaConnection.for_party(bootstrap, state, Role.AUDIT),
                idle_exit_seconds=4.0,
                publish_every=10_000,
                origin=load_witness_policy().origin,
            ),
            party_events=PartyEventReader.for_audit_service(state, SystemClock()),
        )
    witnessed = witness_the_log(state, audit_db)
    _say("witnesses", witnessed.summary())
    _summary(policy, report, inboxes, stats.tree_size, audit_db, state, today, witnessed)
    for inbox in inboxes.values():
        inbox.close()


def _exchange(
    state: Path,
    bootstrap: str,
    policy: CompiledPolicy,
    catalogue: Catalogue,
    clock: Clock,
    dataset: Path,
    node_port: int = DEFAULT_NODE_PORT,
) -> tuple[DemoReport, dict[str, Inbox]]:
    """Run the gateway while the producers publish and the recipients take their signals.

    The municipality :data:`NODE_PARTY` takes part through its partner node, with the
    reference case system (standard library only) calling the node over HTTP.
    """
    core = PolicyGateway(
        identity=load_party(state, Role.GATEWAY),
        directory=load_directory(state),
        policy=policy,
        catalogue=catalogue,
        pseudonymiser=SubjectPseudonyms(load_pseudonym_key(state)),
        clock=clock,
    )
    connection = KafkaConnection.for_party(bootstrap, state, Role.GATEWAY)
    runner = GatewayRunner(
        core, connection, ingress_topics(policy), instance="demo-1", group="sigex-gateway-demo"
    )
    stop = threading.Event()
    gateway_thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    gateway_thread.start()
    _say("gateway", "running (one instance, transactional, exactly once)")

    report = DemoReport()
    node = DemoNode.start(state, bootstrap, policy, catalogue, clock, node_port)
    _say("node", f"{NODE_PARTY}'s partner node on {node.url} (its case system calls it)")
    try:
        sent = _publish(state, connection, policy, catalogue, clock, dataset, report)
        _wait_for_gateway(runner, sent)
        municipalities = sorted(policy.parties_of_kind("municipality"))
        parties = {**{m: MUNICIPALITY_PURPOSES for m in municipalities}, **INBOXES}
        inboxes = _receive(
            state,
            bootstrap,
            policy,
            catalogue,
            clock,
            {p: v for p, v in parties.items() if p not in ("RVIG", NODE_PARTY)},
        )
        outcome_sent = 0
        cases = node.run_case_system(state, clock.now())
        report.case_system = cases
        outcome_sent += cases.answered
        key = (NODE_PARTY, "laa.investigation-outcome", "LAA_TERUGKOPPELING")
        report.published[key] += cases.answered
        for municipality in municipalities:
            if municipality == NODE_PARTY:
                continue
            with Publisher(
                identity=load_party(state, municipality),
                directory=load_directory(state),
                policy=policy,
                catalogue=catalogue,
                connection=KafkaConnection.for_party(bootstrap, state, municipality),
                record_key=load_or_create_record_key(state, municipality),
                clock=clock,
            ) as publisher:
                result = answer_frequent_movers(
                    municipality, inboxes[municipality], publisher, clock.now()
                )
            outcome_sent += len(result.published)
            key = (municipality, "laa.investigation-outcome", "LAA_TERUGKOPPELING")
            report.published[key] += len(result.published)
            report.note_refusals(key, result.refused)
        _wait_for_gateway(runner, sent + outcome_sent)
        inboxes |= _receive(state, bootstrap, policy, catalogue, clock, {"RVIG": INBOXES["RVIG"]})
    finally:
        node.stop()
        stop.set()
        gateway_thread.join(timeout=60)

    return report, inboxes


def _summary(
    policy: CompiledPolicy,
    report: DemoReport,
    inboxes: Mapping[str, Inbox],
    log_size: int,
    audit_db: Path,
    state: Path,
    today: date,
    witnessed: WitnessVerdict,
) -> None:
    click.echo()
    click.echo(click.style(f"What happened (policy date {today})", bold=True))
    click.echo("Published in this run, by sender, signal and purpose:")
    for (sender, signal, purpose), count in sorted(report.published.items()):
        click.echo(f"  {sender:<7} {signal:<28} {purpose:<20} {count:>6}")
    click.echo("Refused in this run before leaving the sender, with the policy's reason:")
    refused = {key: count for key, count in report.refused.items() if count}
    if not refused:
        click.echo("  nothing")
    for (sender, signal, purpose), count in sorted(refused.items()):
        codes = ", ".join(sorted(report.reasons[(sender, signal, purpose)]))
        click.echo(f"  {sender:<7} {signal:<28} {purpose:<20} {count:>6}  {codes}")
    click.echo("Received so far (each party's SQLite inbox):")
    for party, inbox in sorted(inboxes.items()):
        counts = inbox.counts()
        if not counts:
            click.echo(f"  {party:<7} nothing (no agreement delivered to it)")
        for (signal, purpose), count in sorted(counts.items()):
            click.echo(f"  {party:<7} {signal:<28} {purpose:<20} {count:>6}")
    if report.case_system is not None:
        cases = report.case_system
        click.echo(
            f"  {NODE_PARTY:<7} through its partner node: {cases.received} signals into its case "
            f"system ({state / 'case-system' / f'{NODE_PARTY}.sqlite'}), "
            f"{cases.answered} frequent movers answered"
        )
    click.echo(f"Access log: {log_size:,} records in {audit_db}")
    click.echo(f"Its last checkpoint: {witnessed.summary()}")
    if today < date(2027, 1, 1):
        click.echo(
            "The Wtta basis is not in force yet on this date: run the demo again with "
            "--at 2027-02-01 --fresh to see admission violations flow under it."
        )
    click.echo()
    click.echo("Try:")
    db = f"--db {audit_db}"
    example = report.example_bsn or _example_bsn(inboxes)
    if example:
        click.echo(
            f"  .venv/bin/sigex audit report --bsn {report.example_bsn} {db} --state-dir {state}"
        )
    click.echo(f"  .venv/bin/sigex audit verify {db} --state-dir {state}")
    click.echo(
        f"  .venv/bin/sigex audit serve {db} --state-dir {state}   "
        "# the auditor's console: docs/access-log.md"
    )
    click.echo(
        "  .venv/bin/sigex policy explain --sender NLA --signal waadi.admission-violation "
        "--recipient BD --purpose WTTA_TOEZICHT --at 2027-02-01"
    )
    click.echo(f"  .venv/bin/sigex broker stop --home {state / 'broker'}")


def witness_the_log(state: Path, audit_db: Path) -> WitnessVerdict:
    """Serve the audit API for a moment and let every witness of the policy do one round.

    Each witness reaches the API over mutual TLS with its own federation certificate,
    checks the latest checkpoint against the last one it co-signed (kept in
    ``<state>/witness/<PARTY>``) and hands in its cosignature. Returns what the policy
    makes of the latest checkpoint's cosignatures.
    """
    policy = load_witness_policy()
    directory = load_directory(state)
    witnessing = Witnessing(policy, lambda: load_directory(state), SystemClock())
    api = AuditApi(
        lambda: AccessLogStore.open(str(audit_db)),
        {party.code: party.kind for party in directory.parties},
        None,
        None,
        witnessing,
    )
    certificate, key = api_identity(state)
    context = server_tls_context(certificate, key, state / "federation" / "ca.pem")
    server = make_server(api, "127.0.0.1", 0, context, generations=directory.generations)
    serving = threading.Thread(target=server.serve_forever, name="demo-audit-api", daemon=True)
    serving.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    log_keys = audit_keys(directory.party(Role.AUDIT))
    try:
        for party in policy.witnesses:
            observer = Witness.for_party(
                state, party, origin=policy.origin, log_keys=log_keys, clock=SystemClock()
            )
            outcome = witness_round(AuditApiClient(url, load_party(state, party)), observer)
            if not outcome.cosigned:
                _say("witnesses", f"{party} did not co-sign: {outcome.detail}")
    finally:
        server.shutdown()
        server.server_close()
    with AccessLogStore.open(str(audit_db)) as store:
        latest = store.latest_checkpoint()
        if latest is None:
            return WitnessVerdict((), (), policy.quorum, policy.witnesses)
        return witnessing.verdict(latest, store.cosignatures(latest))


def _example_bsn(inboxes: Mapping[str, Inbox]) -> str | None:
    """A BSN some municipality received, for the access-report example."""
    for party in sorted(inboxes):
        for signal in ("laa.frequent-mover", "payroll.bsn-mismatch"):
            for _, fields in inboxes[party].open_items(signal):
                bsn = fields.get("bsn")
                if isinstance(bsn, str):
                    return bsn
    return None
