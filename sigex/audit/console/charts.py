"""Bar charts as plain SVG geometry, drawn by the templates: no JavaScript, no inline style.

Colours come from CSS classes (the page's Content-Security-Policy allows no
inline styles); sizes are SVG attributes, which it does not restrict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigex.audit.console.overview import Tally

BAR_WIDTH = 290.0
COLUMN_HEIGHT = 120.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One horizontal bar: a label, its two parts' lengths and their counts."""

    label: str
    disclosed: int
    refused: int
    disclosed_length: float
    refused_length: float


@dataclass(frozen=True, slots=True)
class Column:
    """One day's column: the heights of its two parts, from the baseline up."""

    label: str
    disclosed: int
    refused: int
    x: float
    disclosed_height: float
    refused_height: float


def bars(tallies: Sequence[Tally], width: float = BAR_WIDTH) -> list[Bar]:
    top = max((t.total for t in tallies), default=0) or 1
    return [
        Bar(
            t.label or "(none)",
            t.disclosed,
            t.refused,
            round(width * t.disclosed / top, 1),
            round(width * t.refused / top, 1),
        )
        for t in tallies
    ]


def columns(days: Sequence[Tally], step: float, height: float = COLUMN_HEIGHT) -> list[Column]:
    top = max((t.total for t in days), default=0) or 1
    return [
        Column(
            t.label,
            t.disclosed,
            t.refused,
            round(index * step, 1),
            round(height * t.disclosed / top, 1),
            round(height * t.refused / top, 1),
        )
        for index, t in enumerate(days)
    ]


def growth_line(sizes: Sequence[int], width: float = 640.0, height: float = 90.0) -> str:
    """The ``points`` of a polyline of the log's size over successive checkpoints."""
    if not sizes:
        return ""
    low, high = min(sizes), max(sizes)
    span = (high - low) or 1
    step = width / max(len(sizes) - 1, 1)
    return " ".join(
        f"{round(index * step, 1)},{round(height - height * (size - low) / span, 1)}"
        for index, size in enumerate(sizes)
    )
