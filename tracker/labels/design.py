"""What goes on one label and where: computed once, drawn the same into PDF or PNG."""

from __future__ import annotations

import functools
import re
import unicodedata
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
    modules: list[list[bool]] | None = None  # the QR code, when made ahead for a batch (qr.matrices)


@dataclass
class Plan:
    """Drawing operations in millimetres from the label's top-left corner."""

    width: float
    height: float
    qr: tuple[float, float, float] = (0, 0, 0)  # x, y, side (quiet zone included)
    modules: list[list[bool]] = field(default_factory=list)
    quiet: int = 2  # modules of white around the symbol, inside `qr`'s side

    @property
    def module(self) -> float:
        """One module's side in millimetres."""
        return self.qr[2] / (len(self.modules) + 2 * self.quiet)
    texts: list[tuple[float, float, float, str, bool]] = field(default_factory=list)  # x, baseline y, size pt, text, inverted
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # filled x, y, w, h


PT = 25.4 / 72  # millimetres per point
QUIET = 4  # modules of white on every side of the code, all on the label: ISO/IEC 18004 asks for 4
EDGE = 0.0  # mm kept clear between the quiet zone and the label's edge (measured: a margin here costs a dot a module)
QR_SHARE = 0.56  # of the label's width at most for the code with its quiet zone; the text has the rest


def fit(text: str, size: float, max_width_mm: float) -> str:
    """Shorten `text` with an ellipsis so that it fits `max_width_mm` at `size`; never overflow."""
    text = " ".join(text.split())
    if fonts.width(text, size) * PT <= max_width_mm:
        return text
    while text and fonts.width(text + ELLIPSIS, size) * PT > max_width_mm:
        text = text[:-1]
    return text + ELLIPSIS if text else ""


@functools.cache
def _phrases():
    import budoux

    return budoux.load_default_japanese_parser()


def words(text: str) -> list[str]:
    """The pieces a line may break between: Japanese phrases (BudouX), and words at spaces (each keeps its
    trailing space); a piece that must not start a line (closing punctuation) stays with the one before."""
    pieces: list[str] = []
    for phrase in _phrases().parse(" ".join(text.split())):
        for word in re.findall(r"\S+\s*|\s+", phrase):
            if pieces and (word[0] in NO_LINE_START or word.isspace()):
                pieces[-1] += word
            else:
                pieces.append(word)
    return pieces


def _kind(ch: str) -> str:
    """Letters, digits and katakana make words together (QRコード, ノートPC); kanji, hiragana and punctuation differ."""
    if ch.isspace() or (ch in NO_LINE_START and ch != "ー") or ch in "・、,":
        return "end"
    name = unicodedata.name(ch, "")
    if name.startswith("HIRAGANA"):
        return "hiragana"
    if "CJK UNIFIED" in name or ch in "々〆":
        return "kanji"
    return "word"


def _smaller(piece: str) -> list[str]:
    """A phrase wider than a line, split where a word of one kind ends; hiragana stays with what it follows
    (QRコードを, 読み), punctuation with what it ends."""
    parts: list[str] = []
    kinds: list[str] = []
    for ch in piece:
        kind = _kind(ch)
        if parts and (kind == "end" or (kinds[-1] != "end" and kind in ("hiragana", kinds[-1]))):
            parts[-1] += ch
            kinds[-1] = kind
        else:
            parts.append(ch)
            kinds.append(kind)
    return parts


def _last_line(lines: list[str], line: list[str], rest: list[str], fits, size: float, width: float) -> list[str]:
    """End with an ellipsis after the whole words that fit, else after the line before; cut a word only when
    it alone is wider than the line."""
    kept = line[:]
    while kept and not fits("".join(kept).rstrip() + ELLIPSIS):
        kept.pop()  # whole words go, so the ellipsis never follows half a word
    if not kept:
        kept = _smaller((line or rest)[0])[:-1]
        while kept and not fits("".join(kept).rstrip() + ELLIPSIS):
            kept.pop()
    if kept:
        return [*lines, "".join(kept).rstrip() + ELLIPSIS]
    if lines and fits(lines[-1] + ELLIPSIS):
        return [*lines[:-1], lines[-1] + ELLIPSIS]
    return [*lines, fit("".join(line + rest), size, width)]


def wrap(text: str, size: float, max_width_mm: float, max_lines: int) -> list[str]:
    """Break between words and Japanese phrases, never inside one; text left over (or a word wider than a line)
    is cut with an ellipsis on the last line it reaches."""

    def fits(line: str) -> bool:
        return fonts.width(line.rstrip(), size) * PT <= max_width_mm

    pieces = words(text)
    lines: list[str] = []
    while pieces and len(lines) < max_lines:
        line: list[str] = []
        while pieces and fits("".join(line) + pieces[0]):
            line.append(pieces.pop(0))
        if not line and len(_smaller(pieces[0])) > 1:  # a phrase wider than a line: its words, then
            pieces[:1] = _smaller(pieces[0])
            continue
        if pieces and (len(lines) == max_lines - 1 or not line):  # more than fits: the last line, shortened
            lines = _last_line(lines, line, pieces, fits, size, max_width_mm)
            break
        lines.append("".join(line).rstrip())
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
    side = min(height - 2 * EDGE, width * QR_SHARE)  # the quiet zone is inside: text and edge stay clear
    edge = (height - side) / 2
    p.qr = (edge, edge, side)
    p.modules, p.quiet = data.modules or qr.matrix(data.url), QUIET
    x = edge + side + pad * 0.3
    text_w = width - x - pad
    inner_h = height - 2 * pad
    # Budget the height: tag 34 %, mark 18 %, finder the rest.
    y = pad
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
