"""storage places as records chosen on items: the free-text storage places become the main office's places

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:00:00
"""

import unicodedata
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def _name(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()[:100]


def _place_id(conn, site_id, name: str, stamp: datetime) -> int:
    """The place of that name at that site (NULL: the main office), made when there is none yet."""
    where = "site_id IS NULL" if site_id is None else "site_id = :site"
    find = sa.text(f"SELECT id FROM storage_places WHERE {where} AND name = :name")  # noqa: S608 - fixed text
    found = conn.execute(find, {"site": site_id, "name": name}).scalar()
    if found is None:
        conn.execute(sa.text("INSERT INTO storage_places (site_id, name, created_at) VALUES (:site, :name, :at)"),
                     {"site": site_id, "name": name, "at": stamp})
        found = conn.execute(find, {"site": site_id, "name": name}).scalar_one()
    return found


def upgrade() -> None:
    # Every storage place typed on an item becomes a place at the item's site (spelling variants that NFKC and
    # trimming make equal become one), and the item's home place is that place; no text, no home place.
    conn = op.get_bind()
    stamp = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(sa.text("UPDATE items SET home_place_id = NULL"))
    typed = conn.execute(sa.text("SELECT DISTINCT site_id, storage_place FROM items "
                                 "WHERE storage_place IS NOT NULL")).all()
    for site_id, raw in sorted(typed, key=lambda r: (r[0] or 0, r[1])):
        name = _name(raw)
        if not name:
            continue
        where = "site_id IS NULL" if site_id is None else "site_id = :site"
        conn.execute(sa.text(f"UPDATE items SET home_place_id = :place WHERE {where} AND storage_place = :raw"),  # noqa: S608
                     {"place": _place_id(conn, site_id, name, stamp), "site": site_id, "raw": raw})
    with op.batch_alter_table('items') as batch:
        batch.drop_column('storage_place')


def downgrade() -> None:
    # The text comes back from the home place's name; the places and home places stay (0015 has them).
    with op.batch_alter_table('items') as batch:
        batch.add_column(sa.Column('storage_place', sa.String(length=100), nullable=True))
    op.execute("UPDATE items SET storage_place = "
               "(SELECT name FROM storage_places WHERE storage_places.id = items.home_place_id)")
