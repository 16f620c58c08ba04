"""The Japanese font used on labels: IPAexGothic, installed from PyPI with the project's requirements."""

from __future__ import annotations

import functools
import os

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from ..config import env_optional

FONT_NAME = "IPAexGothic"


def font_path() -> str:
    """The TrueType file; TRACKER_LABEL_FONT may name another TrueType font with Japanese glyphs."""
    override = env_optional("LABEL_FONT")
    if override:
        return override
    import importlib.util

    # The japanize-matplotlib package ships IPAexGothic; it is installed without matplotlib and never imported.
    spec = importlib.util.find_spec("japanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The label font is missing: install requirements-fonts.txt (see README)")
    return os.path.join(list(spec.submodule_search_locations)[0], "fonts", "ipaexg.ttf")


@functools.cache
def register() -> str:
    """Register the font with reportlab once per process and return its name."""
    pdfmetrics.registerFont(TTFont(FONT_NAME, font_path()))
    return FONT_NAME


def width(text: str, size: float) -> float:
    """Width of `text` in points at `size`."""
    return pdfmetrics.stringWidth(text, register(), size)


def missing_glyphs(text: str) -> set[str]:
    """Characters of `text` that the font has no glyph for (they would print as boxes)."""
    face = pdfmetrics.getFont(register()).face
    cmap = face.charToGlyph
    return {ch for ch in text if not ch.isspace() and ord(ch) not in cmap}
