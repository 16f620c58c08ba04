"""The returns scanner's input: a scanned label URL, a typed asset tag, or a photo of a label."""

from __future__ import annotations

import io
import re

from sqlalchemy.orm import Session

from .. import queries
from ..errors import N_, InvalidInput
from ..models import Item

TOKEN_IN_URL = re.compile(r"/s/([A-Za-z2-7]{16,64})/?$", re.IGNORECASE)


def item_from_code(session: Session, code: str) -> Item:
    """The item a scanned code or typed asset tag names, or raise InvalidInput."""
    code = (code or "").strip()
    if len(code) > 300:
        raise InvalidInput(N_("That is not a label of this system."))
    match = TOKEN_IN_URL.search(code)
    if match:
        label = queries.label_by_token(session, match.group(1))
        if label is None:
            raise InvalidInput(N_("That is not a label of this system."))
        if label.replaced_at is not None:
            raise InvalidInput(N_("That label of %(tag)s was replaced; use the new label."), tag=label.item.asset_tag)
        return label.item
    item = queries.item_by_tag(session, code)
    if item is None:
        raise InvalidInput(N_("That is not a label of this system."))
    return item


def decode_photo(data: bytes) -> str | None:
    """Read a QR code from a photo taken with the phone (for browsers without a camera barcode API)."""
    import zxingcpp
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        image.thumbnail((1600, 1600))
        results = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):  # the user's mistake
        return None
    return results[0].text if results else None
