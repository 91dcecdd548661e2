"""Errors of the policy layer: a policy that does not compile, a refused decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sigex.errors import SigexError

if TYPE_CHECKING:
    from sigex.policies.decision import Decision


class PolicyError(SigexError):
    """Something about the policy files or a policy question is wrong."""


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One problem in the policy files, with the file and line a person should look at."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class PolicyInvalid(PolicyError):
    """The policy files have problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems = tuple(problems)
        first = str(self.problems[0]) if self.problems else "no details"
        more = len(self.problems) - 1
        suffix = f" (and {more} more; run 'sigex policy check')" if more > 0 else ""
        super().__init__(f"policy does not compile: {first}{suffix}")


class PolicyDenied(PolicyError):
    """A delivery was refused; carries the decision with its reasons (for callers that raise)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        codes = ", ".join(reason.code for reason in decision.reasons)
        super().__init__(f"refused by policy {decision.policy_version}: {codes}")
