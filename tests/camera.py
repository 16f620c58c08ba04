"""A phone camera's view of a label stuck on something: shared by the camera tests and the quiet-zone measurement.

A label is rarely on white paper: it sits on a black laptop lid or a coloured USB drive, so the surface around
the label's edge is dark. The photo is then made the way a phone makes it: downscaled, out of focus, tilted
(perspective), in dim light with sensor noise, with a scratch across it, and JPEG-compressed. Two decoders read
it: zxing-cpp and OpenCV's QR detector (a different locator, so a result is not one library's luck).
"""

from __future__ import annotations

import importlib.util
import io
import os
import random
from dataclasses import dataclass

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter

PAPER, INK = 246, 28  # grey levels of label paper and printed toner under room light
SURFACES = {  # what the label is stuck on, as the camera sees its colour
    "white paper": (250, 250, 250),
    "black laptop lid": (22, 22, 24),
    "blue USB drive": (25, 60, 170),
    "red USB drive": (180, 25, 30),
}


@dataclass(frozen=True)
class Shot:
    """One photo's conditions, drawn from a seed so that every design meets the same photos."""

    px_per_mm: float  # how close the phone is: photo pixels per millimetre of label
    blur: float
    angle: float
    tilt: tuple[float, ...]  # the four corners' offsets, as a share of the label's size (perspective)
    light: float  # overall brightness: 1 daylight, 0.45 a dim corridor
    contrast: float
    noise: float
    scratch: tuple[float, float, float, float, int, int]  # x0, y0, x1, y1 (share of size), width px, grey
    jpeg: int

    @classmethod
    def draw(cls, seed: int) -> Shot:
        rng = random.Random(seed)
        return cls(px_per_mm=rng.uniform(5.5, 9.0), blur=rng.uniform(0.3, 1.1), angle=rng.uniform(-15, 15),
                   tilt=tuple(rng.uniform(-0.05, 0.05) for _ in range(8)), light=rng.uniform(0.5, 1.0),
                   contrast=rng.uniform(0.6, 1.0), noise=rng.uniform(2, 8),
                   scratch=(rng.uniform(0, 0.3), rng.uniform(0, 1), rng.uniform(0.7, 1), rng.uniform(0, 1),
                            rng.randint(1, 3), rng.choice([70, 200])),
                   jpeg=rng.randint(40, 85))


def _noise(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    """Sensor noise of about `sigma` grey levels (uniform, from a seeded generator, fast enough for many photos)."""
    spread = sigma * 3**0.5 / 127.5
    field = Image.frombytes("L", img.size, random.Random(seed).randbytes(img.width * img.height))
    field = field.point(lambda v: round(128 + (v - 127.5) * spread))
    return Image.merge("RGB", [ImageChops.add(band, field, scale=1.0, offset=-128) for band in img.split()])


def photograph(label: Image.Image, surface: tuple[int, int, int], shot: Shot, seed: int = 0, dpi: int = 300
               ) -> Image.Image:
    """The label (as rendered at `dpi`) stuck on `surface`, photographed under `shot`."""
    grey = label.convert("L").point(lambda v: PAPER if v >= 128 else INK)
    rgb = Image.merge("RGB", [grey] * 3)
    margin = label.height // 2
    scene = Image.new("RGB", (label.width + 2 * margin, label.height + 2 * margin), surface)
    scene.paste(rgb, (margin, margin))
    f = shot.px_per_mm * 25.4 / dpi
    w, h = round(scene.width * f), round(scene.height * f)
    scene = scene.resize((w, h), Image.Resampling.BOX)  # the lens and sensor average what falls on each pixel
    lw, lh = label.width * f, label.height * f
    d = [v * lw if i % 2 == 0 else v * lh for i, v in enumerate(shot.tilt)]
    quad = (d[0], d[1], d[2], h + d[3], w + d[4], h + d[5], w + d[6], d[7])
    scene = scene.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR, fillcolor=surface)
    scene = scene.rotate(shot.angle, Image.Resampling.BILINEAR, expand=True, fillcolor=surface)
    scene = scene.filter(ImageFilter.GaussianBlur(shot.blur))
    scene = ImageEnhance.Contrast(scene).enhance(shot.contrast)
    scene = ImageEnhance.Brightness(scene).enhance(shot.light)
    x0, y0, x1, y1, width, tone = shot.scratch
    draw = ImageDraw.Draw(scene)
    cx, cy = scene.width / 2, scene.height / 2
    draw.line([(cx + (x0 - 0.5) * lw, cy + (y0 - 0.5) * lh), (cx + (x1 - 0.5) * lw, cy + (y1 - 0.5) * lh)],
              fill=(tone, tone, tone), width=width)
    scene = _noise(scene, shot.noise, seed)
    buf = io.BytesIO()
    scene.save(buf, "JPEG", quality=shot.jpeg)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def read_zxing(img: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)]


def read_opencv(img: Image.Image) -> list[str]:
    import cv2
    import numpy

    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(numpy.asarray(img.convert("L")))
    return [text] if text else []


DECODERS = {"zxing-cpp": read_zxing, "OpenCV": read_opencv}


def need_opencv() -> None:
    """OpenCV (requirements-dev.txt) is the second decoder; CI must have it, elsewhere the test is skipped."""
    if importlib.util.find_spec("cv2") is None:
        if os.environ.get("CI"):
            pytest.fail("opencv-python-headless is not installed; CI installs requirements-dev.txt")
        pytest.skip("opencv-python-headless is not installed here (pip install -r requirements-dev.txt)")


def symbol_alone(modules: list[list[bool]], module_px: int, quiet: int = 4) -> Image.Image:
    """The same QR symbol printed alone with the standard's quiet zone: the reference a label is held to."""
    n = len(modules)
    img = Image.new("L", ((n + 2 * quiet) * module_px,) * 2, 255)
    draw = ImageDraw.Draw(img)
    for r, row in enumerate(modules):
        for c, dark in enumerate(row):
            if dark:
                x, y = (c + quiet) * module_px, (r + quiet) * module_px
                draw.rectangle([x, y, x + module_px - 1, y + module_px - 1], fill=0)
    return img
