"""Label URLs and their QR codes, made as small as the URL allows."""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor

import qrcode
from qrcode.constants import ERROR_CORRECT_M

# Characters of QR alphanumeric mode; a URL made only of these packs 5.5 bits a character instead of 8.
ALPHANUMERIC = re.compile(r"^[0-9A-Z $%*+\-./:]*$")
ERROR_LEVEL = ERROR_CORRECT_M  # level M: recovers about 15 % damage while keeping version 3 (29×29) for typical BASE_URLs


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
    """The smallest QR code for the URL, no quiet zone (the label keeps its own). The `qrcode` package picks the
    mode (alphanumeric for an upper-cased URL), the smallest version at level M, and the mask with the lowest
    penalty, as the standard describes."""
    code = qrcode.QRCode(version=None, error_correction=ERROR_LEVEL, border=0)
    code.add_data(url)
    code.make(fit=True)
    return code.get_matrix()


def version(url: str) -> int:
    """The QR version (1-40) the URL encodes to."""
    return (len(matrix(url)) - 17) // 4


POOL_FROM = 256  # labels in a batch: below this a pool's start-up costs more than it saves


class Maker:
    """Makes the QR codes of batches of URLs. Choosing each code's mask (eight candidates scored by the
    standard's penalty rules) is pure Python and most of a label's cost, so large batches are spread over the
    machine's cores, in fresh processes (safe beside the scheduler's threads) kept for the Maker's life.

        with qr.Maker() as maker:
            for batch in batches:
                codes = maker.matrices([d.url for d in batch])
    """

    def __init__(self):
        self.workers = min(os.cpu_count() or 1, 8)
        self.pool: ProcessPoolExecutor | None = None

    def matrices(self, urls: list[str]) -> list[list[list[bool]]]:
        if self.workers < 2 or len(urls) < POOL_FROM:
            return [matrix(u) for u in urls]
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return list(self.pool.map(matrix, urls, chunksize=max(16, len(urls) // (self.workers * 4))))

    def __enter__(self) -> Maker:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()
