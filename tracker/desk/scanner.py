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
    code = queries.typed(code)  # a scanner typing with the Japanese IME on sends full-width text
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


PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")  # what phones send; HEIF covers the iPhone's HEIC
# Refused from the header, before decoding: a JPEG is decoded at an eighth of its size (draft mode), so a 48 MP
# phone photo costs little; other formats decode whole (about 4 bytes a pixel), so they stop at 24 MP (~100 MB).
MAX_PIXELS = {"JPEG": 50_000_000}
MAX_PIXELS_OTHER = 24_000_000
READ_SIZE = (1600, 1600)  # a label fills enough of a photo to be read at this size


def decode_photo(data: bytes) -> str | None:
    """The text of the QR code in a photo taken with the phone (for browsers without a camera barcode API), or
    None if none can be read. Only photo formats, and only up to MAX_PIXELS: the header is checked first."""
    import pillow_heif
    import zxingcpp
    from PIL import Image, ImageOps, UnidentifiedImageError

    pillow_heif.register_heif_opener()
    try:
        image = Image.open(io.BytesIO(data), formats=PHOTO_FORMATS)
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidInput(N_("Send a photo as JPEG, PNG, WebP or HEIC.")) from None
    limit = MAX_PIXELS.get(image.format, MAX_PIXELS_OTHER)
    if image.width * image.height > limit:
        raise InvalidInput(N_("The photo is too large (at most %(n)d megapixels)."), n=limit // 1_000_000)
    try:
        image.draft("L", READ_SIZE)  # JPEG decodes straight to a smaller grey image
        image.thumbnail(READ_SIZE)  # shrink first: turning it upright then copies a small image, not a big one
        image = ImageOps.exif_transpose(image)
        results = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    except (OSError, ValueError, Image.DecompressionBombError):  # a truncated or corrupt file
        raise InvalidInput(N_("The photo could not be read; take it again.")) from None
    return results[0].text if results else None
