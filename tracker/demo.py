"""Demo data: a dozen items of every kind in the main office's storage places, a bag holding three of them, and one
user per role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from .accounts import users
from .items import departments, sites
from .items import register as items
from .models import DataClass, Kind

DEPARTMENTS = ["営業部", "人事部", "開発部", "経理部"]
PLACES = ["キャビネットA (施錠)", "キャビネットB (施錠)", "金庫"]  # the main office's storage places
NAMES = {
    Kind.laptop: "ノートPC",
    Kind.usb: "USBメモリ",
    Kind.folder: "顧客書類フォルダ",
    Kind.bag: "持出しバッグ",
    Kind.other: "外付けHDD",
}
DEMO_USERS = [
    ("staff@example.com", "山田 花子", "staff"),
    ("security@example.com", "佐藤 守", "security"),
    ("manager@example.com", "鈴木 一郎", "admin"),
]


def load(session: Session, now: datetime) -> list[tuple[str, str, str]]:
    """Add the demo data unless it is there already; return the demo users' one-time passwords."""
    if users.find_by_email(session, DEMO_USERS[0][0]) is not None:
        return []
    created = []
    for email, name, role in DEMO_USERS:
        password = users.generate_password(email, name)
        users.create(session, now, email=email, name=name, role=role, password=password, actor=None,
                     must_change_password=False, source="demo")
        created.append((email, role, password))
    for name in DEPARTMENTS:
        departments.create(session, now, name=name, actor=None, source="demo")
    for name in PLACES:
        sites.create_place(session, now, site_id=None, name=name, actor=None, source="demo")
    classes = [DataClass.none, DataClass.personal, DataClass.sensitive]
    made: dict[Kind, list] = {}
    for kind in Kind:
        for n in range(1, 13):
            data = items.ItemData(
                kind=kind,
                name=f"{NAMES[kind]} {n}",
                serial=f"SN-{kind.value.upper()}-{n:03d}" if kind in (Kind.laptop, Kind.usb, Kind.other) else None,
                department=DEPARTMENTS[n % len(DEPARTMENTS)],
                data_class=classes[n % 3],
                encrypted=kind in (Kind.laptop, Kind.usb) and n % 2 == 0,
                people_count=(n * 150) if classes[n % 3] != DataClass.none else None,
                storage_place=PLACES[2] if classes[n % 3] == DataClass.sensitive else PLACES[n % 2],
            )
            made.setdefault(kind, []).append(items.create(session, now, data, None, source="demo"))
    bag = made[Kind.bag][0]
    for content in (made[Kind.laptop][0], made[Kind.usb][0], made[Kind.folder][0]):
        content.bag_id = bag.id
    session.flush()
    return created
