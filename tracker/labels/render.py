"""Draw planned labels into vector PDF sheets, printer-resolution PNGs and Brother QL raster files."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable

from PIL import Image, ImageDraw, ImageFont
from reportlab.pdfgen import canvas as pdfcanvas

from . import design, fonts
from .layouts import MM, Printer, Sheet

Progress = Callable[[int], None] | None


def module_runs(row: list[bool]):
    """Yield (start, length) of each run of dark modules in a row."""
    start = None
    for i, dark in enumerate([*row, False]):
        if dark and start is None:
            start = i
        elif not dark and start is not None:
            yield start, i - start
            start = None


# ---- PDF ---------------------------------------------------------------------------------------

def _draw_pdf_label(c: pdfcanvas.Canvas, plan: design.Plan, ox: float, oy: float, page_h: float) -> None:
    """Draw one plan with its top-left at (ox, oy) mm on a page `page_h` mm high."""

    def X(mm: float) -> float:
        return (ox + mm) * MM

    def Y(mm: float) -> float:
        return (page_h - oy - mm) * MM

    qx, qy, _side = plan.qr
    module, q = plan.module, plan.quiet
    path = c.beginPath()
    for r, row in enumerate(plan.modules):
        for start, length in module_runs(row):
            x = qx + (start + q) * module
            y = qy + (r + q) * module
            path.rect(X(x), Y(y + module), length * module * MM, module * MM)
    c.setFillGray(0)
    c.drawPath(path, stroke=0, fill=1)
    for bx, by, bw, bh in plan.boxes:
        c.rect(X(bx), Y(by + bh), bw * MM, bh * MM, stroke=0, fill=1)
    for x, y, size, text, inverted in plan.texts:
        c.setFillGray(1 if inverted else 0)
        c.setFont(fonts.FONT_NAME, size)
        c.drawString(X(x), Y(y), text)  # drawString prints markup and template syntax literally
    c.setFillGray(0)


def write_pdf(labels: Iterable[design.LabelData], sheet: Sheet, out, start_at: int = 1,
              progress: Progress = None, title: str = "Labels") -> int:
    """Write labels onto sheets as one vector PDF; `start_at` skips used labels on the first sheet."""
    fonts.register()
    c = pdfcanvas.Canvas(out, pagesize=(sheet.page_w * MM, sheet.page_h * MM), pageCompression=1,
                         initialFontName=fonts.FONT_NAME, initialFontSize=8)
    c.setTitle(title)
    c.setCreator("media check-out tracker")
    c.setViewerPreference("PrintScaling", "None")  # ask viewers to print at actual size
    slot = max(0, min(start_at - 1, sheet.per_page - 1))
    count = 0
    for data in labels:
        if slot == sheet.per_page:
            c.showPage()
            slot = 0
        ox, oy = sheet.position(slot)
        _draw_pdf_label(c, design.plan(data, sheet.label_w, sheet.label_h), ox, oy, sheet.page_h)
        if slot == 0 or count == 0:
            _reminder(c, sheet)
        slot += 1
        count += 1
        if progress and count % 50 == 0:
            progress(count)
    if count == 0:
        _reminder(c, sheet)
    c.showPage()
    c.save()
    if progress:
        progress(count)
    return count


def _reminder(c: pdfcanvas.Canvas, sheet: Sheet) -> None:
    """A line in the top margin, where it does not print on a label: print at 100 %."""
    if sheet.top < 4:
        return
    c.setFont(fonts.FONT_NAME, 6)
    c.setFillGray(0.4)
    c.drawString(sheet.left * MM + 2, (sheet.page_h - min(sheet.top, 8) + 1.5) * MM,
                 "実際のサイズ (100%) で印刷してください。「ページに合わせる」は使わないでください。 / "
                 "Print at actual size (100 %), not 'fit to page'.")
    c.setFillGray(0)


# ---- PNG ---------------------------------------------------------------------------------------

def render_png(data: design.LabelData, width_mm: float, height_mm: float, dpi: int = 300,
               width_px: int | None = None, height_px: int | None = None) -> Image.Image:
    """One label as a 1-bit image at printer resolution, with QR modules on whole dots."""
    plan = design.plan(data, width_mm, height_mm)
    scale = dpi / 25.4
    w = width_px or round(width_mm * scale)
    h = height_px or round(height_mm * scale)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    qx, qy, side = plan.qr
    n = len(plan.modules)
    q = plan.quiet
    module_px = max(1, int(side * scale // (n + 2 * q)))
    qr_px = module_px * (n + 2 * q)
    x0 = round(qx * scale) + (round(side * scale) - qr_px) // 2 + q * module_px
    y0 = round(qy * scale) + (round(side * scale) - qr_px) // 2 + q * module_px
    for r, row in enumerate(plan.modules):
        for start, length in module_runs(row):
            draw.rectangle([x0 + start * module_px, y0 + r * module_px,
                            x0 + (start + length) * module_px - 1, y0 + (r + 1) * module_px - 1], fill=0)
    for bx, by, bw, bh in plan.boxes:
        draw.rectangle([round(bx * scale), round(by * scale), round((bx + bw) * scale), round((by + bh) * scale)],
                       fill=0)
    for x, y, size, text, inverted in plan.texts:
        font = _pil_font(round(size * dpi / 72))
        draw.text((round(x * scale), round(y * scale)), text, fill=255 if inverted else 0, font=font, anchor="ls")
    return img.point(lambda v: 255 if v >= 128 else 0).convert("1")


_FONT_CACHE: dict[int, ImageFont.FreeTypeFont] = {}


def _pil_font(px: int) -> ImageFont.FreeTypeFont:
    if px not in _FONT_CACHE:
        _FONT_CACHE[px] = ImageFont.truetype(fonts.font_path(), max(px, 6))
    return _FONT_CACHE[px]


def printer_png(data: design.LabelData, printer: Printer) -> Image.Image:
    """A label image sized for the printer's stock (landscape design turned for die-cut rolls)."""
    if printer.rotate:
        img = render_png(data, printer.label_w, printer.label_h, printer.dpi,
                         width_px=printer.length_px, height_px=printer.width_px)
        return img.rotate(90, expand=True)
    return render_png(data, printer.label_w, printer.label_h, printer.dpi,
                      width_px=printer.width_px, height_px=printer.length_px)


def png_bytes(img: Image.Image, dpi: int = 300) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(dpi, dpi), optimize=True)
    return buf.getvalue()


def write_png_zip(labels: Iterable[design.LabelData], layout: Sheet | Printer, out,
                  progress: Progress = None) -> int:
    """A zip with one PNG per label, written label by label."""
    count = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for data in labels:
            if isinstance(layout, Printer):
                img = printer_png(data, layout)
                dpi = layout.dpi
            else:
                img, dpi = render_png(data, layout.label_w, layout.label_h), 300
            zf.writestr(f"{data.asset_tag}.png", png_bytes(img, dpi))
            count += 1
            if progress and count % 20 == 0:
                progress(count)
    if progress:
        progress(count)
    return count


# ---- Brother QL raster ---------------------------------------------------------------------------

def ql_raster(labels: Iterable[design.LabelData], printer: Printer, model: str = "QL-820NWB") -> bytes:
    """Brother QL raster instructions for the labels, made by the brother_ql library."""
    from brother_ql.conversion import convert
    from brother_ql.raster import BrotherQLRaster

    images = [printer_png(d, printer).convert("L") for d in labels]
    qlr = BrotherQLRaster(model)
    qlr.exception_on_warning = True
    convert(qlr, images, printer.ql_label, rotate="0", threshold=50, dither=False, compress=True, cut=True)
    return bytes(qlr.data)


def send_to_printer(data: bytes, address: str, model: str = "QL-820NWB") -> None:
    """Send raster data to a network QL printer's raw port, e.g. tcp://192.0.2.10:9100; the socket always closes."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else "tcp://" + address)
    if parts.scheme != "tcp" or not parts.hostname:
        raise ValueError(f"printer address must look like tcp://host:9100, not {address!r}")
    with socket.create_connection((parts.hostname, parts.port or 9100), timeout=15) as conn:
        conn.sendall(data)
