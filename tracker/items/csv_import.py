"""CSV import of the item register: decode Japanese Excel files, check every row, import all or nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import N_, DomainError, InvalidInput
from ..models import Item, Kind, User
from . import departments, sites
from . import register as items

# Accepted headers (English or Japanese) mapped to the register's fields.
HEADERS = {
    "asset_tag": "asset_tag", "tag": "asset_tag", "管理番号": "asset_tag", "資産番号": "asset_tag",
    "kind": "kind", "種別": "kind", "種類": "kind",
    "name": "name", "名称": "name", "品名": "name",
    "serial": "serial", "シリアル": "serial", "シリアル番号": "serial", "製造番号": "serial",
    "department": "department", "部署": "department", "部門": "department",
    "data_class": "data_class", "個人情報": "data_class", "個人情報区分": "data_class",
    "encrypted": "encrypted", "暗号化": "encrypted",
    "people_count": "people_count", "人数": "people_count", "件数": "people_count",
    "notes": "notes", "備考": "notes",
    "encryption_method": "encryption_method", "暗号化方式": "encryption_method", "暗号化方法": "encryption_method",
    "storage_place": "storage_place", "place": "storage_place", "保管場所": "storage_place",
    "site": "site", "拠点": "site", "事業所": "site",
    "bag": "bag", "バッグ": "bag", "収納バッグ": "bag",
}
REQUIRED = ("kind", "name")
KIND_WORDS = {"ノートpc": "laptop", "ノートパソコン": "laptop", "pc": "laptop", "usbメモリ": "usb", "usb": "usb",
              "書類": "folder", "書類フォルダ": "folder", "ファイル": "folder", "バッグ": "bag", "かばん": "bag",
              "鞄": "bag", "その他": "other"}
CLASS_WORDS = {"なし": "none", "無": "none", "個人情報": "personal", "あり": "personal", "要配慮": "sensitive",
               "要配慮個人情報": "sensitive", "特定個人情報": "my_number", "マイナンバー": "my_number"}
MAX_ROWS = 10_000


@dataclass
class RowError:
    line: int
    message: str
    params: dict = field(default_factory=dict)


@dataclass
class Preview:
    rows: list[tuple[int, items.ItemData]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    encoding: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


class ImportFailed(DomainError):
    message = N_("Nothing was imported: the file has errors.")


def decode(data: bytes) -> tuple[str, str]:
    """Decode UTF-8 (with or without BOM) or Shift_JIS (cp932), the encodings Japanese Excel writes."""
    if not data.strip():
        raise InvalidInput(N_("The file is empty."))
    if b"\x00" in data:  # UTF-16 or a binary file: cp932 would read the NUL bytes as text
        raise InvalidInput(N_("The file is neither UTF-8 nor Shift_JIS text. Save it from Excel as CSV (UTF-8)."))
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InvalidInput(N_("The file is neither UTF-8 nor Shift_JIS text. Save it from Excel as CSV (UTF-8)."))


def _normalise(values: dict) -> dict:
    out = dict(values)
    kind = (out.get("kind") or "").strip().lower()
    out["kind"] = KIND_WORDS.get(kind, kind)
    cls = (out.get("data_class") or "").strip().lower()
    out["data_class"] = CLASS_WORDS.get(cls, cls) or "none"
    return out


def check(session: Session, text: str, encoding: str = "") -> Preview:
    """Read and validate every row without writing; report each bad row with its line number."""
    preview = Preview(encoding=encoding)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # strict: an unclosed quote is an error
    try:
        header = next(reader)
    except StopIteration:
        preview.errors.append(RowError(1, N_("The file is empty.")))
        return preview
    except csv.Error as exc:
        preview.errors.append(RowError(1, N_("The file is not valid CSV: %(reason)s"), {"reason": str(exc)}))
        return preview
    columns = [HEADERS.get(h.strip().lower(), HEADERS.get(h.strip())) for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        preview.errors.append(RowError(1, N_("Missing columns: %(columns)s. The first row must name the columns."),
                                       {"columns": ", ".join(missing)}))
        return preview
    unknown = [h for h, c in zip(header, columns, strict=True) if c is None and h.strip()]
    if unknown:
        preview.errors.append(RowError(1, N_("Unknown columns: %(columns)s."), {"columns": ", ".join(unknown)}))
        return preview
    seen_tags: dict[str, int] = {}
    new_bags: set[str] = set()
    rows: list[tuple[int, dict]] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(rows) >= MAX_ROWS:
                preview.errors.append(RowError(line, N_("Too many rows: at most %(n)d at a time."), {"n": MAX_ROWS}))
                break
            if len(row) > len(columns):
                preview.errors.append(RowError(line, N_("The row has more cells than there are columns.")))
                continue
            rows.append((line, _normalise({c: v for c, v in zip(columns, row, strict=False) if c})))
    except csv.Error as exc:
        preview.errors.append(RowError(reader.line_num, N_("The file is not valid CSV: %(reason)s"),
                                       {"reason": str(exc)}))
        return preview
    checked = []
    for line, values in rows:
        try:
            checked.append((line, items.validate(values)))
        except InvalidInput as err:
            preview.errors.append(RowError(line, err.message, err.params))
    # The register's items each row names (its own tag, its bag), read in a few queries, not one per row.
    named = _items_by_tag(session, {t for _, d in checked for t in (d.asset_tag, d.bag_tag) if t})
    for line, data in checked:
        if data.asset_tag:
            if data.asset_tag in seen_tags:
                preview.errors.append(RowError(line, N_("The asset tag %(tag)s also appears on line %(other)d."),
                                               {"tag": data.asset_tag, "other": seen_tags[data.asset_tag]}))
                continue
            seen_tags[data.asset_tag] = line
            if named.get(_exact(data.asset_tag)) is not None:
                preview.errors.append(RowError(line, N_("The asset tag %(tag)s is already in use."),
                                               {"tag": data.asset_tag}))
                continue
            if data.kind == Kind.bag:
                new_bags.add(data.asset_tag)
        preview.rows.append((line, data))
    for line, data in preview.rows:
        if data.bag_tag and data.bag_tag not in new_bags:
            bag = named.get(_exact(data.bag_tag))
            if bag is None or bag.kind != Kind.bag:
                preview.errors.append(RowError(line, N_("There is no bag with the tag %(tag)s."), {"tag": data.bag_tag}))
    known = departments.by_name(session) if any(data.department for _, data in preview.rows) else {}
    for line, data in preview.rows:  # departments are records: a name that is none is an error, not a new one
        if data.department and data.department not in known:
            preview.errors.append(RowError(line, N_("There is no department called %(name)s."),
                                           {"name": data.department}))
    _check_places(session, preview)
    if not preview.rows and not preview.errors:
        preview.errors.append(RowError(2, N_("The file has no rows to import.")))
    preview.errors.sort(key=lambda e: e.line)
    return preview


def _check_places(session: Session, preview: Preview) -> None:
    """Sites and storage places are records: each row's place is found by name at the row's site (no site: the
    main office), and a site or place that is none, or a retired place, is an error naming the row."""
    if not any(data.site or data.storage_place for _, data in preview.rows):
        return
    directory = sites.Directory(session)
    for line, data in preview.rows:
        try:
            site = directory.site(data.site)
            sites.placement(site, directory.place(site, data.storage_place))
        except InvalidInput as err:
            preview.errors.append(RowError(line, err.message, err.params))


def _exact(tag: str) -> str:
    return tag.strip().upper()  # as queries.item_by_tag(exact=True) reads a tag


def _items_by_tag(session: Session, tags: set[str]) -> dict[str, Item]:
    wanted = sorted({_exact(t) for t in tags})
    found: dict[str, Item] = {}
    for start in range(0, len(wanted), 500):  # within every database's limit on bound parameters
        found.update((i.asset_tag, i) for i in session.scalars(
            select(Item).where(Item.asset_tag.in_(wanted[start:start + 500]))))
    return found


def run(session: Session, now: datetime, preview: Preview, actor: User | None,
        source: str | None = None) -> list[int]:
    """Import every row of a checked file or none; the new items' ids. Raises ImportFailed on any error.

    The rows were checked before the write began (`check`, outside the write lock); what the register may have
    changed since (tags taken, bags) is checked again as they are written."""
    if not preview.ok:
        raise ImportFailed()
    try:
        return items.create_many(session, now, [data for _, data in preview.rows], actor, source=source)
    except InvalidInput as err:  # checked just before in this transaction, so only a rule changed in between
        raise ImportFailed(N_("Nothing was imported: %(reason)s"),
                           reason=err.message % err.params if err.params else err.message) from None
