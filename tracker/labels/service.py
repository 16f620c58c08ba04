"""Turn items into label data and label files; shared by the admin pages and the CLI."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, exists, select, update
from sqlalchemy.orm import Session

from ..models import Item, LabelToken
from . import qr, render
from .design import LabelData
from .layouts import Printer, Sheet
from .qr import label_url

CHUNK = 1000  # labels per PDF file when writing files, so memory stays flat for any number of labels


@dataclass(frozen=True)
class LabelOptions:
    base_url: str
    finder_text: str = ""
    show_name: bool = False


def options_from(config: dict, show_name: bool | None = None) -> LabelOptions:
    return LabelOptions(base_url=config["BASE_URL"], finder_text=config.get("LABEL_FINDER_TEXT", ""),
                        show_name=config.get("LABEL_SHOW_NAME", False) if show_name is None else show_name)


def with_tokens(stmt: Select) -> Select:
    """Add each item's current label token to an item query."""
    return (stmt.add_columns(LabelToken.token)
            .join(LabelToken, and_(LabelToken.item_id == Item.id, LabelToken.replaced_at.is_(None))))


def label_data(session: Session, stmt: Select, opts: LabelOptions, batch: int = 500) -> Iterator[LabelData]:
    """Stream LabelData for the items `stmt` selects, a batch at a time."""
    for item, token in session.execute(with_tokens(stmt).execution_options(yield_per=batch)):
        yield LabelData(url=label_url(opts.base_url, token), asset_tag=item.asset_tag,
                        data_class=item.data_class.value, finder_text=opts.finder_text,
                        name=item.name if opts.show_name else None)


def mark_printed(session: Session, now: datetime, item_ids: Iterable[int]) -> None:
    """Remember that the items' current labels went into a label file (or to the printer) at `now`."""
    ids = list(item_ids)
    for start in range(0, len(ids), 1000):
        session.execute(update(LabelToken).where(LabelToken.item_id.in_(ids[start:start + 1000]),
                                                 LabelToken.replaced_at.is_(None))
                        .values(printed_at=now).execution_options(synchronize_session=False))


def never_printed(stmt: Select) -> Select:
    """Only the items whose current label has never gone into a label file (new items, reissued labels)."""
    return stmt.where(exists().where(LabelToken.item_id == Item.id, LabelToken.replaced_at.is_(None),
                                     LabelToken.printed_at.is_(None)))


def printed_at(session: Session, item_ids: list[int]) -> dict[int, datetime | None]:
    """When each item's current label was last printed (None: never)."""
    rows = session.execute(select(LabelToken.item_id, LabelToken.printed_at)
                           .where(LabelToken.item_id.in_(item_ids), LabelToken.replaced_at.is_(None)))
    return {item_id: when for item_id, when in rows}


def sheets_needed(count: int, layout: Sheet | Printer, start_at: int = 1) -> int:
    """How many sheets `count` labels take from the `start_at`-th free label of the first sheet (0 for a printer)."""
    if not isinstance(layout, Sheet) or count <= 0:
        return 0
    return math.ceil((start_at - 1 + count) / layout.per_page)


def ids_stmt(ids: list[int]) -> Select:
    return select(Item).where(Item.id.in_(ids)).order_by(Item.asset_tag)


def write_files(labels: Iterator[LabelData], layout: Sheet | Printer, out_dir: str, fmt: str = "auto",
                start_at: int = 1, progress=None) -> list[str]:
    """Write label files into `out_dir`: PDF sheets (1,000 labels a file), or one PNG per label, or QL raster."""
    os.makedirs(out_dir, exist_ok=True)
    labels = iter(labels)
    written: list[str] = []
    if fmt == "auto":
        fmt = "pdf" if isinstance(layout, Sheet) else "png"
    if fmt == "pdf":
        if not isinstance(layout, Sheet):
            raise ValueError("PDF output needs a sheet layout")
        part = 0
        done = 0
        with qr.Maker() as maker:
            while True:
                chunk = _take(labels, CHUNK)
                if not chunk and part:
                    break
                codes = maker.matrices([d.url for d in chunk])
                chunk = [dataclasses.replace(d, modules=m) for d, m in zip(chunk, codes, strict=True)]
                part += 1
                path = os.path.join(out_dir, f"labels-{layout.name}-{part:03d}.pdf")
                with open(path, "wb") as fh:
                    render.write_pdf(chunk, layout, fh, start_at=start_at if part == 1 else 1)
                written.append(path)
                done += len(chunk)
                if progress:
                    progress(done)
                if len(chunk) < CHUNK:
                    break
                del chunk, codes  # one batch of codes in memory at a time
        return written
    for n, data in enumerate(labels, 1):
        if fmt == "png":
            img = render.printer_png(data, layout) if isinstance(layout, Printer) else render.render_png(
                data, layout.label_w, layout.label_h)
            path = os.path.join(out_dir, f"{_safe(data.asset_tag)}.png")
            with open(path, "wb") as fh:
                fh.write(render.png_bytes(img))
        elif fmt == "ql":
            if not isinstance(layout, Printer):
                raise ValueError("QL raster output needs a Brother QL layout")
            path = os.path.join(out_dir, f"{_safe(data.asset_tag)}.{layout.ql_label}.bin")
            with open(path, "wb") as fh:
                fh.write(render.ql_raster([data], layout))
        else:
            raise ValueError(f"unknown format {fmt}")
        written.append(path)
        if progress and n % 20 == 0:
            progress(n)
    return written


def write_pdf_zip(labels: Iterator[LabelData], sheet: Sheet, path: str, start_at: int = 1, progress=None) -> None:
    """Several PDFs of CHUNK labels each, zipped into `path`."""
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(labels, sheet, tmp, "pdf", start_at, progress)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            for f in files:
                zf.write(f, os.path.basename(f))


def _take(it: Iterator[LabelData], n: int) -> list[LabelData]:
    out = []
    for data in it:
        out.append(data)
        if len(out) == n:
            break
    return out


def _safe(tag: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in tag)
