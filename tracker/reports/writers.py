"""One table of records (the ledger, the media register) written three ways: CSV for Excel, an .xlsx workbook and
a printable PDF. Every writer neutralises cells that a spreadsheet would take for a formula."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A3, A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Table as Platypus

from ..labels import fonts
from .exports import BOM, FORMULA_START, cell


@dataclass
class Table:
    """A title, a header, rows of plain values (text or whole numbers) and notes under the table (the period,
    the department, the audit trail's hashes at both ends of the range)."""

    title: str
    header: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The audit trail at both ends of the range (first and last event, or the head): the file's last lines.
    chain: list[str] = field(default_factory=list)
    # Columns the PDF prints on each entry's first line, in bold type; the rest follow as "name: value".
    lead: int = 4


def to_csv(table: Table) -> bytes:
    """UTF-8 with a BOM (Excel then reads Japanese right), CRLF lines; the notes follow the rows after a blank line."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([cell(h) for h in table.header])
    for row in table.rows:
        writer.writerow([cell(v) for v in row])
    writer.writerow([])
    for note in [*table.notes, *table.chain]:
        writer.writerow([cell(note)])
    return (BOM + buf.getvalue()).encode("utf-8")


SHEET_TITLE_BAD = str.maketrans({c: " " for c in "[]:*?/\\"})


def _put(ws, row: int, column: int, value) -> None:
    c = ws.cell(row=row, column=column)
    if isinstance(value, int) and not isinstance(value, bool):
        c.value = value
        return
    c.value = "" if value is None else str(value)
    # openpyxl stores a string starting with "=" as a formula; a string it stays, shown as typed.
    c.data_type = "s"
    if c.value.startswith(FORMULA_START):
        c.quotePrefix = True


def to_xlsx(table: Table) -> bytes:
    """One sheet: the header (bold, frozen, with filters), the rows, then the notes after a blank row."""
    wb = Workbook()
    ws = wb.active
    ws.title = table.title.translate(SHEET_TITLE_BAD)[:31] or "Sheet1"
    for col, name in enumerate(table.header, start=1):
        _put(ws, 1, col, name)
        ws.cell(row=1, column=col).font = Font(bold=True)
    for r, row in enumerate(table.rows, start=2):
        for col, value in enumerate(row, start=1):
            _put(ws, r, col, value)
    last = len(table.rows) + 1
    for n, note in enumerate([*table.notes, *table.chain]):
        _put(ws, last + 2 + n, 1, note)
    ws.freeze_panes = "A2"
    if table.header:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(table.header))}{last}"
    for col, name in enumerate(table.header, start=1):
        longest = max([len(str(name)), *(len(str(row[col - 1] or "")) for row in table.rows[:200])])
        ws.column_dimensions[get_column_letter(col)].width = min(max(8, longest * 1.6), 40)
    wb.properties.title = table.title
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


MARGIN = 10 * mm
CELL_SIZE = 6.5  # points: a ledger of 23 columns fits A3 landscape, as the paper ones do
CELL_PAD = 2.0  # points each side inside a cell
MAX_COLUMN = 48 * mm


def _text(value) -> str:
    return "" if value is None else str(value)


def _unbreakable(text: str) -> float:
    """The widest piece a column must hold without a break: a tag, a date, a time (Latin words stay whole;
    Japanese may break between any two characters, so a few of them are enough)."""
    pieces = [w if w.isascii() else w[:4] for w in text.split()] or [""]
    return max(fonts.width(w, CELL_SIZE) for w in pieces)


def _column_widths(table: Table, available: float) -> list[float]:
    """Every column at least as wide as its widest unbreakable piece, the rest of the width shared out by how
    much more each column's longest text would like (up to MAX_COLUMN)."""
    floor, want = [], []
    for i, head in enumerate(table.header):
        texts = [head, *(_text(r[i]) for r in table.rows)]
        least = min(30 * mm, max(8 * mm, max(_unbreakable(t) for t in texts) + 2 * CELL_PAD + 1))
        floor.append(least)
        want.append(max(least, min(MAX_COLUMN, max(fonts.width(t, CELL_SIZE) for t in texts) + 2 * CELL_PAD + 1)))
    if sum(floor) >= available:
        return [w * available / sum(floor) for w in floor]
    spare, wish = available - sum(floor), sum(w - f for w, f in zip(want, floor, strict=True))
    if wish <= spare:  # everything fits on one line: share what is left in proportion
        return [w * available / sum(want) for w in want]
    return [f + (w - f) * spare / wish for w, f in zip(want, floor, strict=True)]


def to_pdf(table: Table) -> bytes:
    """A grid like the paper ledger: landscape (A3 when there are many columns), the header repeated on every page,
    every cell wrapped inside its column (Japanese breaks between characters), the notes above and the audit
    trail's hashes as the last lines. Cells are escaped: markup in a name or destination prints as written."""
    font = fonts.register()
    page = landscape(A3 if len(table.header) > 12 else A4)
    # Latin text breaks between words; Japanese between any two characters.
    latin = ParagraphStyle("latin", fontName=font, fontSize=CELL_SIZE, leading=CELL_SIZE * 1.25)
    cjk = ParagraphStyle("cjk", parent=latin, wordWrap="CJK")

    def cell(value) -> Paragraph:
        text = _text(value)
        return Paragraph(escape(text), latin if text.isascii() else cjk)

    note = ParagraphStyle("note", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    title = ParagraphStyle("title", fontName=font, fontSize=15, leading=20)
    widths = _column_widths(table, page[0] - 2 * MARGIN)
    grid = [[cell(h) for h in table.header]]
    grid += [[cell(v) for v in row] for row in table.rows] or [[cell("-")] + [""] * (len(table.header) - 1)]
    body = Platypus(grid, colWidths=widths, repeatRows=1)
    body.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#8a8f96")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ebef")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD), ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    story = [Paragraph(escape(table.title), title), *(Paragraph(escape(n), note) for n in table.notes),
             Spacer(0, 4 * mm), body, Spacer(0, 4 * mm), *(Paragraph(escape(c), note) for c in table.chain)]

    def number(canvas, doc) -> None:
        canvas.setFont(font, 7)
        canvas.drawRightString(page[0] - MARGIN, MARGIN / 2, f"{table.title}  {doc.page}")

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=page, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN, title=table.title)
    doc.build(story, onFirstPage=number, onLaterPages=number)
    return buf.getvalue()


MIMETYPES = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "pdf": "application/pdf"}
WRITERS = {"csv": to_csv, "xlsx": to_xlsx, "pdf": to_pdf}
