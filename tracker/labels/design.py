"""What goes on one label and where: computed once, drawn the same into PDF or PNG."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import fonts, qr

ELLIPSIS = "…"
MARKS = {"personal": ("個人情報あり", "個人情報"), "sensitive": ("要配慮個人情報", "要配慮"),
         "my_number": ("特定個人情報", "特定個人情報")}
NO_LINE_START = set("。、，．・：；？！）」』】〉》ー…")


@dataclass(frozen=True)
class LabelData:
    url: str
    asset_tag: str
    data_class: str = "none"
    finder_text: str = ""
    name: str | None = None


@dataclass
class Plan:
    """Drawing operations in millimetres from the label's top-left corner."""

    width: float
    height: float
    qr: tuple[float, float, float] = (0, 0, 0)  # x, y, side (quiet zone included)
    modules: list[list[bool]] = field(default_factory=list)
    texts: list[tuple[float, float, float, str, bool]] = field(default_factory=list)  # x, baseline y, size pt, text, inverted
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # filled x, y, w, h


PT = 25.4 / 72  # millimetres per point


def fit(text: str, size: float, max_width_mm: float) -> str:
    """Shorten `text` with an ellipsis so that it fits `max_width_mm` at `size`; never overflow."""
    text = " ".join(text.split())
    if fonts.width(text, size) * PT <= max_width_mm:
        return text
    while text and fonts.width(text + ELLIPSIS, size) * PT > max_width_mm:
        text = text[:-1]
    return text + ELLIPSIS if text else ""


def wrap(text: str, size: float, max_width_mm: float, max_lines: int) -> list[str]:
    """Break by characters (Japanese has no spaces); the last line gets an ellipsis if text remains."""
    text = " ".join(text.split())
    lines: list[str] = []
    while text and len(lines) < max_lines:
        if len(lines) == max_lines - 1:
            lines.append(fit(text, size, max_width_mm))
            break
        cut = len(text)
        while cut > 1 and fonts.width(text[:cut], size) * PT > max_width_mm:
            cut -= 1
        space = text.rfind(" ", 0, cut)
        if cut < len(text) and space > cut // 2 and text[:cut].isascii():
            cut = space
        while 1 < cut < len(text) and text[cut] in NO_LINE_START:
            cut -= 1  # keep closing punctuation off the start of a line
        lines.append(text[:cut].strip())
        text = text[cut:].strip()
    return lines


def _tag_size(tag: str, max_w: float, max_h: float) -> float:
    size = max_h / PT
    while size > 4 and fonts.width(tag, size) * PT > max_w:
        size -= 0.25
    return size


def plan(data: LabelData, width: float, height: float) -> Plan:
    """Lay out QR on the left, then asset tag, personal-data mark, finder line and (if asked) the name."""
    p = Plan(width=width, height=height)
    pad = max(1.0, min(width, height) * 0.05)
    modules = qr.matrix(data.url)
    quiet = 2  # modules of white border; the label edge adds more
    side = min(height - 2 * pad, width * 0.5)
    p.qr = (pad, (height - side) / 2, side)
    p.modules = modules
    module = side / (len(modules) + 2 * quiet)
    x = pad + side + pad * 0.5
    text_w = width - x - pad
    inner_h = height - 2 * pad
    # Budget the height: tag 34 %, mark 18 %, finder the rest.
    y = pad + module * quiet * 0.5
    tag_size = _tag_size(data.asset_tag, text_w, inner_h * 0.30)
    y += tag_size * PT * 0.9
    p.texts.append((x, y, tag_size, fit(data.asset_tag, tag_size, text_w), False))
    y += tag_size * PT * 0.25
    marks = MARKS.get(data.data_class)
    small = max(3.5, min(inner_h * 0.13 / PT, 9.0))
    if marks:
        size = small * 1.05
        full, short = marks
        mark = full if fonts.width(full, size) * PT + 1.2 <= text_w else short
        y += size * PT * 0.15
        p.boxes.append((x, y, min(text_w, fonts.width(mark, size) * PT + 1.2), size * PT * 1.25))
        y += size * PT * 1.0
        p.texts.append((x + 0.6, y, size, fit(mark, size, text_w - 1.2), True))
        y += size * PT * 0.45
    if data.name:
        y += small * PT
        p.texts.append((x, y, small, fit(data.name, small, text_w), False))
        y += small * PT * 0.3
    if data.finder_text:
        size = max(3.0, small * 0.8)
        room = height - pad - y
        lines = max(1, min(3, int(room / (size * PT * 1.2))))
        for line in wrap(data.finder_text, size, text_w, lines):
            y += size * PT * 1.15
            if y > height - pad * 0.5:
                break
            p.texts.append((x, y, size, line, False))
    return p
