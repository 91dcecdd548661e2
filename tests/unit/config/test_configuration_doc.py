"""docs/configuration.md shows exactly the settings the code reads (sigex.config.SETTINGS).

The tables are written from the code by ``tools/configuration_doc.py``; a setting
added, renamed or given another default without running it fails here.
"""

from __future__ import annotations

from pathlib import Path

from sigex.config import KNOWN_VARIABLES, SETTINGS, Settings, load_settings, settings_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
BEGIN = "<!-- settings table: written by tools/configuration_doc.py -->\n"
END = "<!-- end of settings table -->\n"


def test_the_page_holds_the_tables_made_from_the_code() -> None:
    page = DOC.read_text(encoding="utf-8")
    start = page.index(BEGIN) + len(BEGIN)
    written = page[start : page.index(END, start)]
    assert written == settings_markdown(), "run: .venv/bin/python tools/configuration_doc.py"


def test_every_variable_is_a_row_and_every_row_a_variable() -> None:
    rows = [line for line in settings_markdown().splitlines() if line.startswith("| `SIGEX_")]
    documented = {row.split("`")[1] for row in rows}
    assert documented >= KNOWN_VARIABLES


def test_the_table_covers_every_field_of_the_settings_once() -> None:
    attributes = [spec.attribute for spec in SETTINGS]
    assert sorted(attributes) == sorted(Settings.__dataclass_fields__)


def test_each_setting_is_read_from_its_own_variable(tmp_path: Path) -> None:
    # a distinct value per port setting comes back in the field the table names
    environ = {
        "SIGEX_METRICS_PORT": "9101",
        "SIGEX_HEALTH_PORT": "9102",
        "SIGEX_AUDIT_API_PORT": "9103",
        "SIGEX_STATE_DIR": str(tmp_path),
    }
    settings = load_settings(environ, home=tmp_path)
    described = dict(settings.describe())
    for variable, value in environ.items():
        assert described[variable] == value
