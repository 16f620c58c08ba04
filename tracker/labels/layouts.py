"""Named label layouts: A4 sheets sold in Japan and Europe, Brother QL stock, and custom sheets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import N_, InvalidInput

MM = 72 / 25.4  # points per millimetre


@dataclass(frozen=True)
class Sheet:
    """A page of equal labels in a grid; all sizes in millimetres."""

    name: str
    title: str
    fits: str
    label_w: float
    label_h: float
    cols: int
    rows: int
    left: float
    top: float
    pitch_x: float
    pitch_y: float
    page_w: float = 210.0
    page_h: float = 297.0
    kind: str = "sheet"

    @property
    def per_page(self) -> int:
        return self.cols * self.rows

    def position(self, slot: int) -> tuple[float, float]:
        """Top-left corner (mm from the page's top-left) of the slot-th label on a page."""
        row, col = divmod(slot, self.cols)
        return self.left + col * self.pitch_x, self.top + row * self.pitch_y

    def check(self) -> Sheet:
        if min(self.label_w, self.label_h, self.cols, self.rows, self.page_w, self.page_h) <= 0:
            raise InvalidInput(N_("Every size of a custom layout must be above zero."))
        if self.pitch_x < self.label_w or self.pitch_y < self.label_h:
            raise InvalidInput(N_("The pitch must be at least the label size."))
        right = self.left + (self.cols - 1) * self.pitch_x + self.label_w
        bottom = self.top + (self.rows - 1) * self.pitch_y + self.label_h
        if self.left < 0 or self.top < 0 or right > self.page_w + 0.01 or bottom > self.page_h + 0.01:
            raise InvalidInput(N_("The labels do not fit on the page."))
        if min(self.label_w, self.label_h) < 15:
            raise InvalidInput(N_("Labels smaller than 15 mm cannot hold a QR code that scans reliably."))
        return self


@dataclass(frozen=True)
class Printer:
    """One label per image for a Brother QL printer; sizes in dots at 300 dpi."""

    name: str
    title: str
    fits: str
    ql_label: str  # brother_ql's name for the stock
    width_px: int  # across the tape (printable)
    length_px: int  # along the tape
    rotate: bool  # True: the design is landscape and is turned 90 degrees for the printer
    dpi: int = 300
    kind: str = "printer"

    @property
    def label_w(self) -> float:
        return (self.length_px if self.rotate else self.width_px) * 25.4 / self.dpi

    @property
    def label_h(self) -> float:
        return (self.width_px if self.rotate else self.length_px) * 25.4 / self.dpi


def _sheet(name, title, fits, w, h, cols, rows, left, top, gap_x=0.0, gap_y=0.0) -> Sheet:
    return Sheet(name, title, fits, w, h, cols, rows, left, top, w + gap_x, h + gap_y)


SHEETS = [
    _sheet("jp-10", "A4 10面 86.4×50.8", "A-One 72210, 28939", 86.4, 50.8, 2, 5, 18.6, 21.2),
    _sheet("jp-12", "A4 12面 86.4×42.3", "A-One 72212, Kokuyo KPC-E1121, Hisago ELM008", 86.4, 42.3, 2, 6, 18.6, 21.2),
    _sheet("jp-18", "A4 18面 70×42.3", "Hisago ELM009", 70, 42.3, 3, 6, 0, 21.2),
    _sheet("jp-21", "A4 21面 70×42.3", "A-One 31538, 72421", 70, 42.3, 3, 7, 0, 0),
    _sheet("jp-24", "A4 24面 66×33.9", "A-One 72224, Hisago ELM012", 66, 33.9, 3, 8, 6, 12.9),
    _sheet("jp-44", "A4 44面 48.3×25.4", "A-One 72244, 31516, Hisago ELM022", 48.3, 25.4, 4, 11, 8.4, 8.8),
    _sheet("jp-65", "A4 65面 38.1×21.2 (A-One)", "A-One 72265", 38.1, 21.2, 5, 13, 9.75, 10.7),
    _sheet("jp-65-hisago", "A4 65面 38.1×21.2 (Hisago)", "Hisago ELM023", 38.1, 21.2, 5, 13, 4.75, 10.92, 2.5),
    _sheet("avery-l7160", "Avery L7160 63.5×38.1", "Avery L7160, J8160", 63.5, 38.1, 3, 7, 7.25, 15.15, 2.5),
    _sheet("avery-l7651", "Avery L7651 38.1×21.2", "Avery L7651, J8651", 38.1, 21.2, 5, 13, 4.75, 10.7, 2.5),
]

PRINTERS = [
    Printer("ql-62", "Brother QL 62 mm continuous (62×30 mm)", "DK-22205", "62", 696, 354, rotate=False),
    Printer("ql-29x90", "Brother QL 29×90 mm die-cut", "DK-11201", "29x90", 306, 991, rotate=True),
]

LAYOUTS: dict[str, Sheet | Printer] = {layout.name: layout for layout in [*SHEETS, *PRINTERS]}
DEFAULT_LAYOUT = "jp-24"

_NUM = r"(\d+(?:\.\d+)?)"


# Real label stock: sheets up to A3 (297 × 420 mm) and up to 100 labels a sheet (65面 is the densest sold).
# These caps also bound what one preview or PDF page can cost to render.
MAX_PAGE_MM = 420
MAX_PER_PAGE = 100


def custom(page_w, page_h, label_w, label_h, cols, rows, left, top, pitch_x, pitch_y) -> Sheet:
    """A sheet from its measurements, checked so that every label lands on the page."""
    import math

    values = [page_w, page_h, label_w, label_h, cols, rows, left, top, pitch_x, pitch_y]
    if not all(math.isfinite(float(v)) and 0 <= float(v) <= MAX_PAGE_MM for v in values):
        raise InvalidInput(N_("Every size of a custom layout must be a number of millimetres between 0 and %(n)d."),
                           n=MAX_PAGE_MM)
    if float(cols) != int(float(cols)) or float(rows) != int(float(rows)):
        raise InvalidInput(N_("Columns and rows must be whole numbers."))
    if int(float(cols)) * int(float(rows)) > MAX_PER_PAGE:
        raise InvalidInput(N_("At most %(n)d labels fit on one sheet."), n=MAX_PER_PAGE)
    cols, rows = int(float(cols)), int(float(rows))
    return Sheet("custom", "Custom", "", float(label_w), float(label_h), int(cols), int(rows), float(left),
                 float(top), float(pitch_x), float(pitch_y), float(page_w), float(page_h)).check()


def parse_custom(spec: str) -> Sheet:
    """Read 'custom:page=210x297,label=50x30,grid=3x8,margin=10x12,pitch=60x34' (millimetres)."""
    values: dict[str, tuple[float, float]] = {}
    for part in spec.split(":", 1)[-1].split(","):
        match = re.fullmatch(rf"\s*(page|label|grid|margin|pitch)\s*=\s*{_NUM}\s*x\s*{_NUM}\s*", part)
        if not match:
            raise InvalidInput(N_("Custom layout: cannot read %(part)s."), part=part.strip()[:40])
        values[match[1]] = (float(match[2]), float(match[3]))
    for key in ("label", "grid", "margin"):
        if key not in values:
            raise InvalidInput(N_("Custom layout: %(part)s is missing."), part=key)
    page = values.get("page", (210.0, 297.0))
    label = values["label"]
    pitch = values.get("pitch", label)
    grid, margin = values["grid"], values["margin"]
    return custom(page[0], page[1], label[0], label[1], grid[0], grid[1], margin[0], margin[1], pitch[0], pitch[1])


def get(name: str) -> Sheet | Printer:
    if name.startswith("custom:"):
        return parse_custom(name)
    try:
        return LAYOUTS[name]
    except KeyError:
        raise InvalidInput(N_("There is no label layout named %(name)s."), name=name[:40]) from None
