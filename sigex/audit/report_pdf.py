"""The article 15 report as a PDF, laid out with fpdf2.

fpdf2 is pure Python (no browser or office suite on the audit server) and
writes text with the PDF's standard Helvetica, so the file is small and
readable everywhere. Those fonts cover Latin-1, which Dutch and English need;
any other character (a name from elsewhere) is written as its closest Latin-1
form rather than dropped.
"""

from __future__ import annotations

import unicodedata

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from sigex.audit.report import ReportDocument

_MARGIN = 18
_BODY = 10.5


def _latin1(text: str) -> str:
    """``text`` with every character outside Latin-1 decomposed, or else replaced by '?'."""
    if all(ord(c) < 256 for c in text):
        return text
    plain = unicodedata.normalize("NFKD", text)
    return "".join(c if ord(c) < 256 else "?" for c in plain if not unicodedata.combining(c))


def render_pdf(document: ReportDocument) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN)
    pdf.set_title(_latin1(document.title))
    pdf.set_lang(document.language)
    pdf.set_creator("sigex audit")
    pdf.add_page()

    def paragraph(text: str, size: float = _BODY, style: str = "", gap: float = 2.5) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size * 0.5, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    paragraph(document.title, 16, "B", 3)
    paragraph(document.generated, 9, "", 4)
    for text in document.intro:
        paragraph(text)
    label_width = 52.0
    for item in document.items:
        if pdf.will_page_break(6 * len(item.lines) + 8):
            pdf.add_page()
        paragraph(item.heading, 12, "B", 1)
        for label, value in item.lines:
            pdf.set_font("Helvetica", "B", 9.5)
            pdf.cell(label_width, 5.2, _latin1(label))
            pdf.set_font("Helvetica", "", 9.5)
            pdf.multi_cell(0, 5.2, _latin1(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)
    for text in document.closing:
        paragraph(text)
    paragraph(document.objection_heading, 12, "B", 1)
    for text in document.objection:
        paragraph(text)
    return bytes(pdf.output())
