"""Dutch identifiers and their checks: BSN, RSIN, KvK, loonheffingennummer, municipality, OIN.

Every ``check_*`` function returns the normalised value or raises
:class:`~sigex.errors.InvalidIdentifier`, whose message names the field and
the rule but never the value (a BSN is personal data wherever it appears).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sigex.errors import InvalidIdentifier

TEST_OIN_PREFIX = "00000099"

_NINE_DIGITS = re.compile(r"[0-9]{9}")
_KVK = re.compile(r"[0-9]{8}")
_LOONHEFFINGENNUMMER = re.compile(r"([0-9]{9})L([0-9]{2})")
_MUNICIPALITY = re.compile(r"GM[0-9]{4}")
_OIN = re.compile(r"[0-9]{20}")


def _weighted_sum(digits: str) -> int:
    """The elfproef sum 9*d1 + 8*d2 + ... + 2*d8 over the first eight digits."""
    return sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))


def is_valid_bsn(value: str) -> bool:
    """True when ``value`` has nine digits and passes the BSN elfproef (last weight -1)."""
    if not _NINE_DIGITS.fullmatch(value):
        return False
    total = _weighted_sum(value) - int(value[8])
    return total > 0 and total % 11 == 0


def is_valid_rsin(value: str) -> bool:
    """True when ``value`` has nine digits and passes the RSIN elfproef (last weight +1)."""
    if not _NINE_DIGITS.fullmatch(value):
        return False
    total = _weighted_sum(value) + int(value[8])
    return total > 0 and total % 11 == 0


def bsn_check_digit(first_eight: str) -> str | None:
    """The ninth digit that makes ``first_eight`` a valid BSN, or None when none does."""
    total = _weighted_sum(first_eight + "0")
    remainder = total % 11
    if remainder >= 10 or total - remainder <= 0:  # the elfproef also needs a positive sum
        return None
    return str(remainder)


def synthetic_bsn(seed: int) -> str:
    """The first number from ``seed`` on (mod 10^8) that completes to a BSN; for test data.

    A number that passes the elfproef was not thereby issued; these are for
    synthetic datasets and tests only.
    """
    number = seed
    while True:
        first_eight = f"{number % 10**8:08d}"
        digit = bsn_check_digit(first_eight)
        if digit is not None:
            return first_eight + digit
        number += 1


def synthetic_loonheffingennummer(seed: int) -> str:
    """The first fiscal number from ``seed`` on that passes the RSIN check, with L01; for tests."""
    number = seed
    while not is_valid_rsin(f"{number % 10**9:09d}") or number % 10**9 == 0:
        number += 1
    return f"{number % 10**9:09d}L01"


def check_bsn(value: str, field: str = "bsn") -> str:
    if not _NINE_DIGITS.fullmatch(value):
        raise InvalidIdentifier(field, "BSN", "must be exactly 9 digits")
    if not is_valid_bsn(value):
        raise InvalidIdentifier(field, "BSN", "fails the elfproef")
    return value


def check_rsin(value: str, field: str = "rsin") -> str:
    if not _NINE_DIGITS.fullmatch(value):
        raise InvalidIdentifier(field, "RSIN", "must be exactly 9 digits")
    if not is_valid_rsin(value):
        raise InvalidIdentifier(field, "RSIN", "fails the elfproef")
    return value


def check_kvk(value: str, field: str = "kvk") -> str:
    if not _KVK.fullmatch(value):
        raise InvalidIdentifier(field, "KvK number", "must be exactly 8 digits")
    return value


def check_loonheffingennummer(value: str, field: str = "loonheffingennummer") -> str:
    match = _LOONHEFFINGENNUMMER.fullmatch(value)
    if match is None:
        raise InvalidIdentifier(
            field, "loonheffingennummer", "must be 9 digits, the letter L and 2 digits"
        )
    if not is_valid_rsin(match.group(1)):
        raise InvalidIdentifier(field, "loonheffingennummer", "fiscal number fails the elfproef")
    return value


def check_municipality(value: str, field: str = "municipality") -> str:
    if not _MUNICIPALITY.fullmatch(value):
        raise InvalidIdentifier(field, "municipality code", "must be GM followed by 4 digits")
    return value


def check_oin(value: str, field: str = "oin") -> str:
    if not _OIN.fullmatch(value):
        raise InvalidIdentifier(field, "OIN", "must be exactly 20 digits")
    return value


#: Identifier checks by the name used in schema annotations (``"sigex.identifier"``).
CHECKS: dict[str, Callable[[str, str], str]] = {
    "bsn": check_bsn,
    "rsin": check_rsin,
    "kvk": check_kvk,
    "loonheffingennummer": check_loonheffingennummer,
    "municipality": check_municipality,
    "oin": check_oin,
}
