"""Read-side queries shared by views: item lookups, open check-outs, item lists with filters."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, and_, bindparam, exists, func, literal_column, or_, select
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from .errors import N_, InvalidInput
from .models import (
    Checkout,
    CheckoutRequest,
    DataClass,
    Department,
    Event,
    Item,
    Kind,
    LabelToken,
    RequestStatus,
    Site,
    StoragePlace,
    User,
    department_managers,
)
from .text import as_int

T = TypeVar("T")
PAGE_SIZE = 50


@dataclass
class Page:
    rows: list
    page: int
    pages: int
    total: int


def paginate(session: Session, stmt: Select, page: int, size: int = PAGE_SIZE) -> Page:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    pages = max(1, (total + size - 1) // size)
    page = min(max(1, page), pages)
    rows = list(session.scalars(stmt.limit(size).offset((page - 1) * size)).unique())
    return Page(rows=rows, page=page, pages=pages, total=total)


# What a barcode scanner types with a Japanese IME on, or a person types on a phone: full-width letters and digits
# (NFKC folds those), and the many dashes and the long-vowel mark where a hyphen was meant.
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−ー－ｰ"})
_NUMBERED = re.compile(r"([A-Z]+)-?0*(\d{1,4})")


def typed(text: str | None) -> str:
    """Text as the scanner or keyboard meant it: half-width, plain hyphens, no spaces."""
    return "".join(unicodedata.normalize("NFKC", text or "").translate(_DASHES).split())


def tag_candidates(tag: str | None) -> list[str]:
    """The asset tags a typed or scanned text may mean: as typed (upper case), then numbered the register's way
    (USB-2, USB0002 and ＵＳＢ－２ all mean USB-0002)."""
    text = typed(tag).upper()
    candidates = [text] if text else []
    numbered = _NUMBERED.fullmatch(text)
    if numbered:
        canonical = f"{numbered[1]}-{int(numbered[2]):04d}"
        if canonical != text:
            candidates.append(canonical)
    return candidates


_ITEMS_BY_TAG = select(Item).where(Item.asset_tag.in_(bindparam("tags", expanding=True)))  # every item's page


def item_by_tag(session: Session, tag: str | None, exact: bool = False) -> Item | None:
    """The item a typed or scanned asset tag names: exactly as typed first, else numbered the register's way.

    `exact` (the register checking whether a tag is free) takes the tag only as written, upper case."""
    candidates = [(tag or "").strip().upper()] if exact else tag_candidates(tag)
    if not candidates:
        return None
    found = {i.asset_tag: i for i in session.scalars(_ITEMS_BY_TAG, {"tags": candidates})}
    return next((found[c] for c in candidates if c in found), None)


# The statements every scan runs, built once (building one costs more than SQLite takes to run it).
_LABEL_BY_TOKEN = select(LabelToken).options(joinedload(LabelToken.item)).where(LabelToken.token == bindparam("token"))
_LAST_OWN_TRIP = (
    select(Checkout.purpose, Checkout.destination)
    .where(Checkout.holder_id == bindparam("user_id"), Checkout.parent_id.is_(None),
           ~exists().where(Event.checkout_id == Checkout.id, Event.action == literal_column("'handover'")))
    .order_by(Checkout.out_at.desc(), Checkout.id.desc()).limit(1))


def token_text(token: str | None) -> str:
    """A scanned or typed label token as the labels hold it."""
    return (token or "").strip().upper()


def label_by_token(session: Session, token: str) -> LabelToken | None:
    """The label a scanned token names."""
    return session.scalar(_LABEL_BY_TOKEN, {"token": token_text(token)})


def open_checkouts_of(session: Session, user: User) -> list[Checkout]:
    return list(session.scalars(
        select(Checkout).options(joinedload(Checkout.item))
        .where(Checkout.holder_id == user.id, Checkout.returned_at.is_(None))
        .order_by(Checkout.due_at, Checkout.id)
    ))


def last_own_trip(session: Session, user: User) -> tuple[str | None, str | None] | None:
    """The purpose and destination of the person's last take-out of their own, which their next take-out offers
    again (read as two columns, not a check-out). A bag's contents and hand-overs to them are left out: a
    hand-over's purpose and destination (before they were left empty) were the previous holder's."""
    row = session.connection().execute(_LAST_OWN_TRIP, {"user_id": user.id}).first()  # two strings: no ORM needed
    return tuple(row) if row is not None else None


def open_checkouts_by_item(session: Session, item_ids: list[int]) -> dict[int, Checkout]:
    """Open check-outs keyed by item id, in one query (no query per row)."""
    if not item_ids:
        return {}
    rows = session.scalars(
        select(Checkout).options(joinedload(Checkout.holder))
        .where(Checkout.item_id.in_(item_ids), Checkout.returned_at.is_(None))
    )
    return {co.item_id: co for co in rows}


def desk_stmt(now: datetime, soon: datetime | None = None, kind: str = "", data_class: str = "",
              department: str = "", state: str = "", site: str = "") -> Select:
    """Everything out now, by due time: so overdue first, then due soon, then the rest; `site` as `at_site`.

    A bag's contents travel with the bag and are listed under it, not as rows of their own.
    """
    stmt = (select(Checkout).join(Checkout.item).options(joinedload(Checkout.item), joinedload(Checkout.holder))
            .where(Checkout.returned_at.is_(None), not_inside_an_open_bag()))
    stmt = _item_filters(stmt, kind, data_class, department)
    if (where := at_site(site)) is not None:
        stmt = stmt.where(where)
    if state == "overdue":
        stmt = stmt.where(Checkout.due_at <= now)
    elif state == "soon" and soon is not None:
        stmt = stmt.where(Checkout.due_at > now, Checkout.due_at <= soon)
    return stmt.order_by(Checkout.due_at, Checkout.id)


MAIN_OFFICE = "main"  # the site filter's value for the main office (items without a site); "" is every site


def at_site(site: str):
    """The items of the site filter's value: MAIN_OFFICE, a site's id; None (no filter) for every site or an unknown
    value."""
    if site == MAIN_OFFICE:
        return Item.site_id.is_(None)
    if (site_id := as_int(site)) is not None:
        return Item.site_id == site_id
    return None


def _item_filters(stmt: Select, kind: str, data_class: str, department: str) -> Select:
    """The filters the item lists and the board share; unknown values filter nothing."""
    if kind in Kind.__members__:
        stmt = stmt.where(Item.kind == Kind(kind))
    if data_class in DataClass.__members__:
        stmt = stmt.where(Item.data_class == DataClass(data_class))
    if department:
        stmt = stmt.where(in_department(department))
    return stmt


def _where_kept(stmt: Select, site: str, place: str) -> Select:
    """The site filter (as `at_site`) and the storage place filter (a place's id); other values filter nothing."""
    if (where := at_site(site)) is not None:
        stmt = stmt.where(where)
    if (place_id := as_int(place)) is not None:
        stmt = stmt.where(Item.home_place_id == place_id)
    return stmt


def by_text_id(session: Session, model: type[T], raw) -> T | None:
    """The row of `model` whose id `raw` spells (a form's value, see `text.as_int`), or None."""
    ident = as_int(raw)
    return session.get(model, ident) if ident is not None else None


def chosen_department(session: Session, raw_id) -> Department | None:
    """The department chosen from a list by its id, None for none; InvalidInput for an id that is not one
    (shared by the item and the user forms)."""
    raw = str(raw_id if raw_id is not None else "").strip()
    if not raw:
        return None
    found = by_text_id(session, Department, raw)
    if found is None:
        raise InvalidInput(N_("Choose a department from the list."), about="department")
    return found


def chosen_site(session: Session, raw_id) -> Site | None:
    """The site chosen from a list by its id, None for the main office (no id); InvalidInput for an id that is not
    one (shared by the item and the user forms and the storage places)."""
    raw = str(raw_id if raw_id is not None else "").strip()
    if not raw:
        return None
    found = by_text_id(session, Site, raw)
    if found is None:
        raise InvalidInput(N_("Choose a site from the list."), about="site")
    return found


def site_choices(session: Session) -> list[tuple[int, str]]:
    """Every site's id and name, for the item and user forms' lists (empty: a one-office company)."""
    return [(i, n) for i, n in session.execute(select(Site.id, Site.name).order_by(Site.name))]


def place_choices(session: Session) -> list[tuple[int, int | None, str, bool]]:
    """Every storage place's id, site id (None: the main office), name and whether it is retired, for the item
    form's and filters' lists, the main office's first."""
    return [tuple(r) for r in session.execute(
        select(StoragePlace.id, StoragePlace.site_id, StoragePlace.name, StoragePlace.retired_at.is_not(None))
        .outerjoin(Site, Site.id == StoragePlace.site_id)
        .order_by(StoragePlace.site_id.is_not(None), Site.name, StoragePlace.name))]


def in_department(name: str):
    """The item belongs to the department of that name (filters and records keep naming departments)."""
    return Item.department_id.in_(select(Department.id).where(Department.name == name))


def not_inside_an_open_bag():
    """A check-out that stands on its own: not a content of a bag that is still out.

    Written as 'parent_id IS NULL OR NOT EXISTS', so PostgreSQL settles most rows without the subquery.
    """
    parent = aliased(Checkout)
    return or_(Checkout.parent_id.is_(None),
               ~exists().where(parent.id == Checkout.parent_id, parent.returned_at.is_(None)))


def overdue_count(session: Session, now: datetime, site: str = "") -> int:
    stmt = select(func.count(Checkout.id)).where(Checkout.returned_at.is_(None), Checkout.due_at <= now,
                                                 not_inside_an_open_bag())
    if (where := at_site(site)) is not None:
        stmt = stmt.join(Checkout.item).where(where)
    return session.scalar(stmt) or 0


def contains(text: str, *columns):
    """Any of `columns` contains `text`, case-insensitively; % and _ in it are matched literally."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(*(column.ilike(like, escape="\\") for column in columns))


def items_stmt(q: str = "", kind: str = "", status: str = "", data_class: str = "", department: str = "",
               site: str = "", place: str = "") -> Select:
    stmt = select(Item)
    if q:
        stmt = stmt.where(or_(contains(q, Item.asset_tag, Item.name, Item.serial),
                              Item.department_id.in_(select(Department.id).where(contains(q, Department.name)))))
    stmt = _item_filters(stmt, kind, data_class, department)
    stmt = _where_kept(stmt, site, place)
    is_out = exists().where(and_(Checkout.item_id == Item.id, Checkout.returned_at.is_(None)))
    if status == "out":
        stmt = stmt.where(is_out, Item.retired_at.is_(None))
    elif status == "in":
        stmt = stmt.where(~is_out, Item.retired_at.is_(None))
    elif status == "retired":
        stmt = stmt.where(Item.retired_at.is_not(None))
    elif status != "all":
        stmt = stmt.where(Item.retired_at.is_(None))
    return stmt.order_by(Item.asset_tag)


def sites(session: Session) -> list[Site]:
    """Every site by name, for the site filters (empty for a one-office company)."""
    return list(session.scalars(select(Site).order_by(Site.name)))


def departments(session: Session) -> list[str]:
    """Every department's name, for the filters' choices."""
    return list(session.scalars(select(Department.name).order_by(Department.name)))


def department_choices(session: Session) -> list[tuple[int, str]]:
    """Every department's id and name, for the item and user forms' lists."""
    return [(i, n) for i, n in session.execute(select(Department.id, Department.name).order_by(Department.name))]


def item_events(session: Session, item: Item, limit: int = 200) -> list[Event]:
    return list(session.scalars(select(Event).options(joinedload(Event.actor))
                                .where(Event.item_id == item.id).order_by(Event.id.desc()).limit(limit)))


def users_stmt(q: str = "") -> Select:
    stmt = select(User).options(joinedload(User.dept), joinedload(User.deputy))
    if q:
        stmt = stmt.where(contains(q, User.email, User.name))
    return stmt.order_by(User.active.desc(), User.name)


def pending_requests_of(session: Session, user: User) -> list[CheckoutRequest]:
    return list(session.scalars(select(CheckoutRequest).options(joinedload(CheckoutRequest.item))
                                .where(CheckoutRequest.requester_id == user.id,
                                       CheckoutRequest.status == RequestStatus.pending)))


def pending_requests(session: Session, limit: int | None = None) -> list[CheckoutRequest]:
    return list(session.scalars(select(CheckoutRequest)
                                .options(joinedload(CheckoutRequest.item), joinedload(CheckoutRequest.requester),
                                         selectinload(CheckoutRequest.steps))
                                .where(CheckoutRequest.status == RequestStatus.pending)
                                .order_by(CheckoutRequest.requested_at).limit(limit)))


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count(CheckoutRequest.id))
                          .where(CheckoutRequest.status == RequestStatus.pending)) or 0


def current_tokens(session: Session, item_ids: list[int]) -> dict[int, str]:
    """The current label token of each item, in one query."""
    if not item_ids:
        return {}
    return dict(session.execute(select(LabelToken.item_id, LabelToken.token)
                                .where(LabelToken.item_id.in_(item_ids), LabelToken.replaced_at.is_(None))).all())


@dataclass
class ManagerTree:
    """Every department's parent and active managers, read at once (a company has at most a few hundred
    departments): whose manager someone is, up the tree."""

    parents: dict[int, int | None]
    managers: dict[int, list[User]]

    def nearest(self, department_id: int | None, person_id: int | None = None) -> tuple[int | None, list[User]]:
        """The department nearest up from `department_id` (itself first) with an active manager other than
        `person_id`, and those managers; (None, []) when there is none up to the top."""
        seen: set[int] = set()
        while department_id is not None and department_id not in seen:
            seen.add(department_id)
            found = [u for u in self.managers.get(department_id, []) if u.id != person_id]
            if found:
                return department_id, found
            department_id = self.parents.get(department_id)
        return None, []


def manager_tree(session: Session) -> ManagerTree:
    """The departments' tree and their active managers, in two queries."""
    managers: dict[int, list[User]] = {}
    for dept_id, user in session.execute(select(department_managers.c.department_id, User)
                                         .join(User, User.id == department_managers.c.user_id)
                                         .where(User.active.is_(True)).order_by(User.name, User.id)):
        managers.setdefault(dept_id, []).append(user)
    return ManagerTree(parents=dict(session.execute(select(Department.id, Department.parent_id)).all()),
                       managers=managers)


# "Name <address>", as a suggestion of a "who" field fills it in: the address decides.
_ADDRESS_IN_TEXT = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>$")
SUGGESTIONS = 8


def people_matching(session: Session, text: str | None, limit: int = SUGGESTIONS) -> list[User]:
    """Active people whose name or e-mail address holds `text` (in any case), by name: the suggestions a "who"
    field offers as someone types. Wildcards typed (% and _) are taken as the characters they are."""
    typed = " ".join((text or "").split())[:100]
    if not typed:
        return []
    return list(session.scalars(
        select(User).where(User.active.is_(True),
                           or_(User.name.icontains(typed, autoescape=True), User.email.icontains(typed, autoescape=True)))
        .order_by(User.name, User.id).limit(limit)))


def person_named(session: Session, text: str | None) -> User:
    """The one active person a typed "who" names: the address of "Name <address>" (a suggestion) or an address
    typed alone, else a name typed whole (in any case). A number is no one: it may be an employee number, and taking
    it for our own id would pick a stranger. Refused when no one, or more than one person, has the name."""
    typed = " ".join((text or "").split())[:300]
    found = _ADDRESS_IN_TEXT.search(typed)
    address = found.group(1) if found else typed if "@" in typed else None
    if address is not None:
        people = list(session.scalars(select(User).where(User.active.is_(True), User.email == address.lower())))
    elif typed:
        people = list(session.scalars(select(User).where(User.active.is_(True), func.lower(User.name) == typed.lower())
                                      .order_by(User.id).limit(2)))
    else:
        people = []
    if not people:
        raise InvalidInput(N_("No one with an active account is called %(who)s. Type their name or e-mail address, "
                              "or choose one of the suggestions."), who=typed or "\u2014")
    if len(people) > 1:
        raise InvalidInput(N_("More than one person is called %(who)s: choose one by e-mail address."), who=typed)
    return people[0]


def anyone_but(session: Session, user_id: int) -> bool:
    """Whether an active person other than `user_id` exists (someone an item could be handed over to)."""
    return session.scalar(select(exists().where(User.active.is_(True), User.id != user_id)))
