"""Label URLs and their QR codes, made as small as the URL allows."""

from __future__ import annotations

import re

import zxingcpp

# Characters of QR alphanumeric mode; a URL made only of these packs 5.5 bits a character instead of 8.
ALPHANUMERIC = re.compile(r"^[0-9A-Z $%*+\-./:]*$")
ERROR_LEVEL = "M"  # recovers about 15 % damage while keeping version 3 (29×29) for typical BASE_URLs


def label_url(base_url: str, token: str) -> str:
    """BASE_URL + /S/ + token, upper-cased when that keeps it the same URL (scheme and host ignore case)."""
    base = base_url.rstrip("/")
    match = re.match(r"^(https?://[^/]+)(.*)$", base, re.IGNORECASE)
    if match and match.group(2) == match.group(2).upper():
        candidate = match.group(1).upper() + match.group(2) + "/S/" + token.upper()
        if ALPHANUMERIC.match(candidate):
            return candidate
    return f"{base}/s/{token}"


def matrix(url: str) -> list[list[bool]]:
    """The smallest QR code for the URL (zxing-cpp's encoder picks the mode and version), no quiet zone."""
    code = zxingcpp.create_barcode(url, zxingcpp.BarcodeFormat.QRCode, ec_level=ERROR_LEVEL)
    image = memoryview(code.to_image(scale=1, add_quiet_zones=False))
    size = image.shape[0]
    data = image.tobytes()
    return [[data[r * size + c] < 128 for c in range(size)] for r in range(size)]


def version(url: str) -> int:
    """The QR version (1-40) the URL encodes to."""
    return (len(matrix(url)) - 17) // 4
