"""A frequent-mover signal record (laa.frequent-mover, as Python values) for tests."""

from __future__ import annotations

import uuid
from datetime import datetime


def frequent_mover(
    municipality: str, bsn: str, at: datetime, signal_id: str | None = None
) -> dict[str, object]:
    """RVIG's record of a person at an address in ``municipality``, detected ``at``."""
    return {
        "signal_id": signal_id or str(uuid.uuid4()),
        "detected_at": at,
        "bsn": bsn,
        "municipality": municipality,
        "postcode": "1011AB",
        "house_number": 12,
        "house_number_addition": None,
        "moves_in_period": 6,
        "period_start": at.date().replace(month=1, day=1),
        "period_end": at.date().replace(month=12, day=31),
        "profile": "LAA-VV-01",
    }
