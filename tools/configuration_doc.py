"""Write the settings tables of docs/configuration.md from sigex.config.SETTINGS.

The tables sit between two HTML comments; everything else in the page is prose
written by hand. ``tests/unit/config/test_configuration_doc.py`` fails when the
page and the table in the code differ; run this to bring the page in step:

    .venv/bin/python tools/configuration_doc.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from sigex.config import settings_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
BEGIN = "<!-- settings table: written by tools/configuration_doc.py -->\n"
END = "<!-- end of settings table -->\n"


def generated_part(page: str) -> str:
    """The text between the markers (ValueError when they are missing)."""
    start = page.index(BEGIN) + len(BEGIN)
    return page[start : page.index(END, start)]


def with_tables(page: str) -> str:
    start = page.index(BEGIN) + len(BEGIN)
    end = page.index(END, start)
    return page[:start] + settings_markdown() + page[end:]


def main() -> int:
    page = DOC.read_text(encoding="utf-8")
    DOC.write_text(with_tables(page), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
