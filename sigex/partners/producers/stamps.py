"""What every signal record carries (``signal_id``, ``detected_at``) and progress reports."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sigex.clock import Clock

#: A signal record: the field names of the signal's Avro schema, with Python values.
SignalRecord = dict[str, object]


class SignalStamper:
    """Gives each record a signal id drawn from a seeded Random and the detection time.

    Ids are UUID version 4 built from ``rng``, so a run with the same seed
    yields the same ids; ``detected_at`` is the clock's time cut to whole
    milliseconds (the schema's timestamp-millis), in UTC.
    """

    def __init__(self, clock: Clock, rng: random.Random) -> None:
        self._clock = clock
        self._rng = rng

    def new_signal_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def detected_at(self) -> datetime:
        now = self._clock.now().astimezone(UTC)
        return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a finder got: rows read from its inputs and signals found so far."""

    finder: str
    rows_read: int
    signals_found: int
    finished: bool


#: Called by a finder every ``progress_every`` input rows and once when it finishes.
ProgressCallback = Callable[[Progress], None]


def ignore_progress(_progress: Progress) -> None:
    """The default progress callback: does nothing."""
