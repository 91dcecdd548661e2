"""How often the generator plants each pattern. ``docs/reference-partners.md`` explains the choices.

The rates are plausible orders of magnitude for a population with many
labour migrants, not official statistics; change them here or per run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sigex.producers.errors import GeneratorSettingsInvalid


@dataclass(frozen=True, slots=True)
class PatternRates:
    """Probabilities (0..1) that drive the generator; each is per the population named."""

    #: share of BRP persons registered as non-resident (RNI)
    non_resident: float = 0.08
    #: share of BRP persons aged 18 or more who are frequent movers (> 4 moves in one year)
    frequent_mover: float = 0.004
    #: residents of working age (18-67): filed in the reference period / filed before only
    resident_employed: float = 0.62
    resident_stopped: float = 0.05
    #: non-residents: filed in the reference period / filed before only
    non_resident_employed: float = 0.70
    non_resident_stopped: float = 0.15
    #: non-residents filed in the reference period who have no temporary address
    non_resident_without_address: float = 0.20
    #: non-residents whose filings stopped, and who still have a temporary address
    stopped_non_resident_with_address: float = 0.60
    #: non-residents never in payroll who have a temporary address
    idle_non_resident_with_address: float = 0.30
    #: payroll-only BSNs (valid, but unknown to the BRP), per BRP person
    unknown_bsn: float = 0.002
    #: people in payroll whose filings carry a different family name or birth date
    name_or_birthdate_differs: float = 0.003
    #: employed people with a second employer
    second_employer: float = 0.08
    #: share of workers employed by an uitlener: residents, non-residents and unknown BSNs
    resident_via_uitlener: float = 0.05
    migrant_via_uitlener: float = 0.45
    #: share of uitleners that are not admitted (never registered or admission revoked)
    non_admitted_uitlener: float = 0.06
    #: people of working age with no payroll filings who are hired out by an uitlener anyway
    unregistered_hire: float = 0.01

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise GeneratorSettingsInvalid(f"rate {name} must be between 0 and 1")
        if self.resident_employed + self.resident_stopped > 1.0:
            raise GeneratorSettingsInvalid("resident_employed + resident_stopped exceeds 1")
        if self.non_resident_employed + self.non_resident_stopped > 1.0:
            raise GeneratorSettingsInvalid("non_resident_employed + non_resident_stopped exceeds 1")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


DEFAULT_RATES = PatternRates()
