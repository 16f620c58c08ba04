"""One table of records (the ledger, the media register) written three ways: CSV for Excel, an .xlsx workbook and
a printable PDF. Every writer neutralises cells that a spreadsheet would take for a formula."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import lru_cache

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfgen import canvas

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


MARGIN = 12 / 25.4 * 72  # points


@lru_cache(maxsize=4096)
def _char_width(ch: str, size: float) -> float:
    return fonts.width(ch, size)


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Break by characters (Japanese has no spaces) to fit `width` points; every character is kept."""
    lines, line, used = [], "", 0.0
    for ch in " ".join(text.split()):
        w = _char_width(ch, size)
        if line and used + w > width:
            space = line.rfind(" ")
            carry = line[space + 1:] if space > len(line) // 2 and ch != " " and line[space + 1:].isascii() else ""
            lines.append(line[: len(line) - len(carry)].rstrip())
            line, used = carry, sum(_char_width(c, size) for c in carry)
            if ch == " " and not line:
                continue
        line += ch
        used += w
    if line or not lines:
        lines.append(line)
    return lines


def to_pdf(table: Table) -> bytes:
    """Landscape A4: the title, then one block per row (its first columns on one line, the rest as name: value),
    then the notes; the audit trail's hashes are the last lines. drawString prints markup literally."""
    font = fonts.register()
    buf = io.BytesIO()
    page = landscape(A4)
    c = canvas.Canvas(buf, pagesize=page)
    c.setTitle(table.title)
    width = page[0] - 2 * MARGIN
    y = [page[1] - MARGIN]
    pages = [1]

    def line(text: str, size: float = 8.0, indent: float = 0.0, gap: float = 1.3) -> None:
        for part in _wrap(text, size, width - indent):
            if y[0] < MARGIN + size:
                c.setFont(font, 7)
                c.drawRightString(page[0] - MARGIN, MARGIN / 2, f"{table.title}  {pages[0]}")
                c.showPage()
                pages[0] += 1
                y[0] = page[1] - MARGIN
            c.setFont(font, size)
            c.drawString(MARGIN + indent, y[0], part)
            y[0] -= size * gap

    line(table.title, 14)
    for note in table.notes:
        line(note, 9)
    y[0] -= 6
    if not table.rows:
        line("-", 9)
    for row in table.rows:
        head = "  ".join([f"{table.header[0]} {row[0]}", *(str(v) for v in row[1: table.lead] if v not in (None, ""))])
        rest = " / ".join(f"{h}: {v}" for h, v in zip(table.header[table.lead:], row[table.lead:], strict=True)
                          if v not in (None, ""))
        y[0] -= 3
        line(head, 9)
        if rest:
            line(rest, 7.5, indent=12)
    y[0] -= 6
    for note in table.chain:
        line(note, 8)
    c.setFont(font, 7)
    c.drawRightString(page[0] - MARGIN, MARGIN / 2, f"{table.title}  {pages[0]}")
    c.showPage()
    c.save()
    return buf.getvalue()


MIMETYPES = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "pdf": "application/pdf"}
WRITERS = {"csv": to_csv, "xlsx": to_xlsx, "pdf": to_pdf}
