"""``sigex policy``: check the policy files, explain a decision, list the routes they allow.

Exit codes: 0 when the policy compiles / the delivery is allowed, 1 when the
policy has problems / the delivery is refused, 2 for a usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sigex.clock import SystemClock
from sigex.policies.compiled import parse_moment
from sigex.policies.compiler import check_policy, load_policy
from sigex.policies.decide import Decision, DecisionRequest, decide

_DIRECTORY = click.option(
    "--directory",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Policy directory to use instead of the shipped one.",
)


@click.group(name="policy")
def policy() -> None:
    """The exchange agreements: check them, explain a decision, list the routes."""


@policy.command()
@_DIRECTORY
def check(directory: Path | None) -> None:
    """Compile every policy file; list each problem with its file and line (exit 1 if any)."""
    problems = check_policy(directory)
    if problems:
        for problem in problems:
            click.echo(str(problem))
        click.echo(f"{len(problems)} problem(s); the policy does not compile", err=True)
        sys.exit(1)
    compiled = load_policy(directory)
    click.echo(
        f"policy {compiled.version} (sha256 {compiled.content_hash}): OK, "
        f"{len(compiled.agreements)} agreements, {len(compiled.routes())} routes"
    )


def describe(decision: Decision, request: DecisionRequest, day: str) -> list[str]:
    """The decision in plain words, one line per fact."""
    verdict = "ALLOWED" if decision.allowed else "REFUSED"
    lines = [
        f"{verdict}: {request.sender} -> {request.recipient}, signal {request.signal}, "
        f"purpose {request.purpose}, on {day}",
        f"  policy: version {decision.policy_version}, sha256 {decision.policy_hash[:16]}",
    ]
    if decision.agreement_id is not None:
        lines.append(
            f"  agreement: {decision.agreement_id} version {decision.agreement_version}, "
            f"legal basis {decision.legal_basis}"
        )
    if decision.allowed:
        lines.append(f"  fields disclosed: {', '.join(sorted(decision.fields))}")
        lines.append(f"  retention: {decision.retention_days} days")
    else:
        lines.append("  fields disclosed: none")
    lines.append("  because:")
    lines.extend(f"    - {reason.text} [{reason.code}]" for reason in decision.reasons)
    return lines


@policy.command()
@click.option("--sender", required=True, help="Party code of the sender, e.g. UWV.")
@click.option("--signal", required=True, help="Signal name, e.g. payroll.bsn-mismatch.")
@click.option("--recipient", required=True, help="Party code of the recipient, e.g. GM0363.")
@click.option("--purpose", required=True, help="Purpose code, e.g. BRP_TERUGMELDING.")
@click.option("--at", "at_text", default=None, help="Date or ISO moment; default: now.")
@click.option(
    "--classification",
    "classifications",
    multiple=True,
    help="A data classification the delivery carries (repeatable).",
)
@_DIRECTORY
def explain(
    sender: str,
    signal: str,
    recipient: str,
    purpose: str,
    at_text: str | None,
    classifications: tuple[str, ...],
    directory: Path | None,
) -> None:
    """Decide one delivery and print the decision with its reasons (exit 1 when refused)."""
    compiled = load_policy(directory)
    at = SystemClock().now() if at_text is None else parse_moment(at_text, compiled, "--at")
    request = DecisionRequest(sender, signal, recipient, purpose, frozenset(classifications))
    decision = decide(request, compiled, at)
    for line in describe(decision, request, compiled.local_day(at).isoformat()):
        click.echo(line)
    if not decision.allowed:
        sys.exit(1)


@policy.command()
@click.option("--signal", default=None, help="Only the routes of this signal.")
@_DIRECTORY
def routes(signal: str | None, directory: Path | None) -> None:
    """List every sender -> recipient route an agreement can allow (input for topics and ACLs)."""
    compiled = load_policy(directory)
    for route in compiled.routes():
        if signal is None or route.signal == signal:
            click.echo(
                f"{route.signal}\t{route.sender}\t{route.recipient}\t{route.purpose}\t"
                f"{route.agreement_id} v{route.agreement_version}"
            )
