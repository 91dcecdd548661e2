"""The witness policy: which parties witness the access log and how many must co-sign.

It is data (``policies/witnesses.yaml``), read here and checked against the parties of
the federation. :meth:`WitnessPolicy.verdict` is what ``sigex audit verify``, the
audit API and the auditor's console ask before they accept a checkpoint: which of the
policy's witnesses co-signed it with a key the party directory lists, and whether that
makes a quorum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from sigex.audit.checkpoint import Checkpoint, check_origin
from sigex.audit.cosignature import Cosignature, verify_cosignature
from sigex.audit.errors import CheckpointError, WitnessPolicyError
from sigex.clock import Clock
from sigex.identity import PartyDirectory
from sigex.policies.compiler import POLICY_DIRECTORY

DEFAULT_POLICY = POLICY_DIRECTORY / "witnesses.yaml"
#: parties that run sigex itself: they cannot vouch for the log they run or feed
_SERVICE_KINDS = frozenset({"service"})


@dataclass(frozen=True, slots=True)
class WitnessVerdict:
    """What the witnesses said of one checkpoint."""

    #: policy witnesses whose cosignature verified, sorted
    signed_by: tuple[str, ...]
    #: policy witnesses with a cosignature on record that did not verify
    failed: tuple[str, ...]
    quorum: int
    witnesses: tuple[str, ...]

    @property
    def met(self) -> bool:
        return len(self.signed_by) >= self.quorum

    def summary(self) -> str:
        names = ", ".join(self.signed_by) or "none"
        return (
            f"{len(self.signed_by)} of {len(self.witnesses)} witnesses co-signed "
            f"({names}); the policy needs {self.quorum}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "signed_by": list(self.signed_by),
            "failed": list(self.failed),
            "quorum": self.quorum,
            "witnesses": list(self.witnesses),
            "met": self.met,
        }


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    origin: str
    witnesses: tuple[str, ...]
    quorum: int

    def __post_init__(self) -> None:
        try:
            check_origin(self.origin)
        except CheckpointError as error:
            raise WitnessPolicyError(f"witness policy: {error}") from None
        if len(set(self.witnesses)) != len(self.witnesses) or not self.witnesses:
            raise WitnessPolicyError("witness policy: name each witness once, at least one")
        if isinstance(self.quorum, bool) or not isinstance(self.quorum, int):
            raise WitnessPolicyError("witness policy: the quorum is a whole number")
        if not len(self.witnesses) < 2 * self.quorum <= 2 * len(self.witnesses):
            raise WitnessPolicyError(
                f"witness policy: a quorum of {self.quorum} of {len(self.witnesses)} witnesses"
                " must be more than half of them and no more than all: with half or fewer,"
                " two different histories could each gather a quorum"
            )

    def check_parties(self, kinds: Mapping[str, str]) -> None:
        """Refuse witnesses the federation lacks, or that are sigex's own services."""
        unknown = sorted(w for w in self.witnesses if w not in kinds)
        if unknown:
            raise WitnessPolicyError(f"witness policy: unknown parties {', '.join(unknown)}")
        services = sorted(w for w in self.witnesses if kinds[w] in _SERVICE_KINDS)
        if services:
            raise WitnessPolicyError(
                f"witness policy: {', '.join(services)} run sigex itself and cannot witness"
            )

    def verdict(
        self,
        checkpoint: Checkpoint,
        cosignatures: Iterable[Cosignature],
        directory: PartyDirectory,
        now: datetime,
    ) -> WitnessVerdict:
        """Which policy witnesses co-signed ``checkpoint``; others' cosignatures are ignored."""
        signed: set[str] = set()
        failed: set[str] = set()
        if checkpoint.is_note and checkpoint.origin == self.origin:
            for cosignature in cosignatures:
                if cosignature.witness not in self.witnesses:
                    continue
                if verify_cosignature(cosignature, checkpoint, directory, now):
                    signed.add(cosignature.witness)
                else:
                    failed.add(cosignature.witness)
        return WitnessVerdict(
            tuple(sorted(signed)),
            tuple(sorted(failed - signed)),
            self.quorum,
            self.witnesses,
        )


def load_witness_policy(path: Path | None = None) -> WitnessPolicy:
    """The witness policy in ``path`` (default: the shipped ``policies/witnesses.yaml``)."""
    source = path or DEFAULT_POLICY
    try:
        values = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise WitnessPolicyError(f"witness policy {source}: cannot read it ({error})") from None
    except yaml.YAMLError:
        raise WitnessPolicyError(f"witness policy {source}: not valid YAML") from None
    if not isinstance(values, dict) or set(values) != {"origin", "witnesses", "quorum"}:
        raise WitnessPolicyError(
            f"witness policy {source}: exactly the keys origin, witnesses and quorum"
        )
    witnesses = values["witnesses"]
    if not isinstance(witnesses, list) or not all(isinstance(w, str) for w in witnesses):
        raise WitnessPolicyError(f"witness policy {source}: witnesses is a list of party codes")
    if not isinstance(values["origin"], str):
        raise WitnessPolicyError(f"witness policy {source}: origin is text")
    return WitnessPolicy(values["origin"], tuple(witnesses), values["quorum"])


@dataclass(frozen=True, slots=True)
class Witnessing:
    """The policy with what judging a checkpoint needs: the party directory and the time."""

    policy: WitnessPolicy
    #: the party directory as it is now (read again each time: keys rotate and are revoked)
    directory: Callable[[], PartyDirectory]
    clock: Clock

    def verdict(
        self, checkpoint: Checkpoint, cosignatures: Iterable[Cosignature]
    ) -> WitnessVerdict:
        return self.policy.verdict(checkpoint, cosignatures, self.directory(), self.clock.now())

    def check(self, checkpoint: Checkpoint, cosignature: Cosignature) -> None:
        """Refuse a cosignature that is not a policy witness's valid one of ``checkpoint``."""
        if cosignature.witness not in self.policy.witnesses:
            raise WitnessPolicyError(f"{cosignature.witness} is not a witness of this log")
        if not self.verdict(checkpoint, [cosignature]).signed_by:
            raise WitnessPolicyError(
                f"the cosignature does not verify with a key of {cosignature.witness}"
            )
