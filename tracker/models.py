"""The data model: users, items, label tokens, check-outs and audit events."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Time,
    TypeDecorator,
    and_,
    literal_column,
    or_,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Store naive UTC, hand back aware UTC, so SQLite and PostgreSQL behave alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Role(str, enum.Enum):
    staff = "staff"
    security = "security"
    admin = "admin"


# The roles that work the security desk: they see everything out and act for anyone.
PRIVILEGED_ROLES = frozenset({Role.security, Role.admin})
# The interface languages; a user's `language` is one of these or unset (the browser decides).
LANGUAGES = ("ja", "en")


class Kind(str, enum.Enum):
    laptop = "laptop"
    usb = "usb"
    folder = "folder"
    bag = "bag"
    other = "other"


class DataClass(str, enum.Enum):
    none = "none"
    personal = "personal"
    sensitive = "sensitive"
    my_number = "my_number"  # 特定個人情報: the most sensitive class, with its own reporting rules


class Erasure(str, enum.Enum):
    """What was said of the data on a returned item whose kind and class call for erasure (消去確認)."""

    erased = "erased"  # the returner (or the desk) states it was erased, and how
    nothing_written = "nothing_written"  # the returner states nothing was written to it
    pending = "pending"  # waiting for the desk's return inspection; the item cannot go out meanwhile
    inspected = "inspected"  # the desk inspected it (and erased what was on it), and how


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, validate_strings=True, length=16)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.staff)
    language: Mapped[str | None] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Rotated to end every session of the user at once (logout, password change, disabling).
    session_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    # Who decides for this user while they are away (an approver's deputy, 代理承認者).
    deputy_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The security desk's lead: the last step of an unanswered overdue flag's escalation.
    desk_lead: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The office the person works at (None: the main office); the desk sees its own site first.
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)

    dept: Mapped[Department | None] = relationship(foreign_keys=[department_id])
    deputy: Mapped[User | None] = relationship(remote_side=[id], foreign_keys=[deputy_id])
    site: Mapped[Site | None] = relationship()

    # What Flask-Login asks of a user object; plain attributes, so the model imports nothing from Flask.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return self.session_token

    @property
    def privileged(self) -> bool:
        return self.role in PRIVILEGED_ROLES

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role.value}>"


# A department's managers (上長), who approve take-outs where the rules say so.
department_managers = Table(
    "department_managers", Base.metadata,
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class Department(Base):
    """A department as a record, chosen from a list on items and users (no more free-text typos)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    parent: Mapped[Department | None] = relationship(remote_side=[id])
    managers: Mapped[list[User]] = relationship(secondary=department_managers, order_by="User.name")

    def __repr__(self) -> str:
        return f"<Department {self.name}>"


class Site(Base):
    """An office with its own clock: its time zone, day end and later sweeps, and its security desk's addresses.
    Items, storage places, departments and people without a site belong to the main office, which the settings
    describe (TRACKER_TIMEZONE, TRACKER_DAY_END, TRACKER_LATE_SWEEPS, TRACKER_DESK_EMAILS)."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))  # an IANA zone, e.g. Asia/Singapore
    day_end: Mapped[time] = mapped_column(Time)
    late_sweeps: Mapped[str | None] = mapped_column(String(100))  # "HH:MM" separated by commas; None: none
    desk_emails: Mapped[str | None] = mapped_column(Text)  # comma-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Site {self.name}>"


class StoragePlace(Base):
    """Where items live when they are in (保管場所): a cabinet, a safe, a room, at one site; a stock-take's scope."""

    __tablename__ = "storage_places"
    __table_args__ = (
        Index("uq_storage_places_site_name", "site_id", "name", unique=True),
        # NULLs are distinct in a unique index: the main office's names need their own.
        Index("uq_storage_places_main_name", "name", unique=True,
              sqlite_where=text("site_id IS NULL"), postgresql_where=text("site_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)  # None: the main office
    name: Mapped[str] = mapped_column(String(100))
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    site: Mapped[Site | None] = relationship()

    def __repr__(self) -> str:
        return f"<StoragePlace {self.name}>"


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_tag: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[Kind] = mapped_column(_enum(Kind, "kind"))
    name: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str | None] = mapped_column(String(100))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    data_class: Mapped[DataClass] = mapped_column(_enum(DataClass, "data_class"), default=DataClass.none)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    people_count: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    bag_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"), index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The media register (媒体管理台帳): who registered it, how it is encrypted (where it is kept: home_place).
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    encryption_method: Mapped[str | None] = mapped_column(String(100))
    # Disposal (廃棄): the end of its life; a disposed item is also retired and never goes out again.
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposal_method: Mapped[str | None] = mapped_column(String(100))
    disposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disposal_contractor: Mapped[str | None] = mapped_column(String(200))
    disposal_certificate: Mapped[str | None] = mapped_column(String(100))
    # Sites and stock-takes: the office it belongs to (None: the main office), its home storage place (at that
    # site), and when it was last counted in a stock-take or confirmed by its holder.
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    home_place_id: Mapped[int | None] = mapped_column(ForeignKey("storage_places.id"), index=True)
    last_counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    bag: Mapped[Item | None] = relationship(remote_side=[id], back_populates="contents")
    registered_by: Mapped[User | None] = relationship(foreign_keys=[registered_by_id])
    disposed_by: Mapped[User | None] = relationship(foreign_keys=[disposed_by_id])
    contents: Mapped[list[Item]] = relationship(back_populates="bag", order_by="Item.asset_tag")
    dept: Mapped[Department | None] = relationship()
    site: Mapped[Site | None] = relationship()
    home_place: Mapped[StoragePlace | None] = relationship()
    # What its page shows of its check-outs: the open one, and a return whose erasure the desk has still to inspect
    # (newest first). Read-only; the rules read these afresh under the item's lock (custody.operations).
    on_page_checkouts: Mapped[list[Checkout]] = relationship(
        viewonly=True, order_by=lambda: Checkout.id.desc(),
        primaryjoin=lambda: and_(Checkout.item_id == Item.id,
                                 or_(Checkout.returned_at.is_(None), Checkout.erasure == Erasure.pending)))

    @property
    def department(self) -> str | None:
        """The department's name, as the lists, exports and ledgers show it."""
        return self.dept.name if self.dept is not None else None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None

    @property
    def disposed(self) -> bool:
        return self.disposed_at is not None

    def __repr__(self) -> str:
        return f"<Item {self.asset_tag}>"


class StockTake(Base):
    """A stock-take (棚卸) session: counting what is physically there against the register, for every item or
    one site (NULL: the main office), department or storage place. Closing freezes the reconciliation in
    `result` (JSON) and keeps the report files whose SHA-256 the closing audit event carries."""

    __tablename__ = "stocktakes"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # all | site | department | place
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    place_id: Mapped[int | None] = mapped_column(ForeignKey("storage_places.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str | None] = mapped_column(Text, deferred=True)
    report_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    report_csv: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    report_xlsx: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)

    site: Mapped[Site | None] = relationship()
    department: Mapped[Department | None] = relationship()
    place: Mapped[StoragePlace | None] = relationship()
    opened_by: Mapped[User] = relationship(foreign_keys=[opened_by_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])


class StockCount(Base):
    """One item counted in a stock-take: one row per session and item, held by the database, so a second scan or
    a second counter at the same moment counts it once."""

    __tablename__ = "stocktake_counts"
    __table_args__ = (Index("uq_stocktake_counts_item", "stocktake_id", "item_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stocktake_id: Mapped[int] = mapped_column(ForeignKey("stocktakes.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    counted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(16))  # phone | scanner | typed
    place_id: Mapped[int | None] = mapped_column(ForeignKey("storage_places.id"))  # where it was found, if known

    item: Mapped[Item] = relationship()
    counted_by: Mapped[User] = relationship()
    place: Mapped[StoragePlace | None] = relationship()


class LabelToken(Base):
    __tablename__ = "label_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last put into a label file or sent to print

    item: Mapped[Item] = relationship()


class Checkout(Base):
    __tablename__ = "checkouts"
    __table_args__ = (
        # At most one open check-out per item, held by the database on SQLite and PostgreSQL alike.
        Index(
            "uq_checkouts_one_open_per_item",
            "item_id",
            unique=True,
            sqlite_where=text("returned_at IS NULL"),
            postgresql_where=text("returned_at IS NULL"),
        ),
        Index("ix_checkouts_open_due", "returned_at", "due_at"),
        # A person's take-outs, newest first: the take-out form's prefill reads their last one (queries.last_own_trip).
        Index("ix_checkouts_holder_trips", "holder_id", "out_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Set on the check-outs of a bag's contents: the check-out of the bag they left in.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"), index=True)
    out_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    purpose: Mapped[str] = mapped_column(String(200), default="")
    destination: Mapped[str] = mapped_column(String(200), default="")
    # Why the item stays out past the day end (overnight or longer); required for such check-outs.
    reason: Mapped[str | None] = mapped_column(String(200))
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Erasure confirmed at return (消去確認), for the kinds and classes that call for it; unset otherwise.
    erasure: Mapped[Erasure | None] = mapped_column(_enum(Erasure, "erasure"))
    erasure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erasure_method: Mapped[str | None] = mapped_column(String(100))
    erasure_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The due time comes from the class's curfew or maximum duration: flagged when it passes, not at the day end.
    strict_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The second person who witnessed the take-out, where the class's rule asks for one (two-person rule).
    witness_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # "I still have it": the holder's last confirmation by scanning the label, the last e-mail asking for one, and
    # the last time an unanswered ask went to the desk (where the rule asks for confirmations).
    custody_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    custody_prompted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    custody_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    item: Mapped[Item] = relationship()
    holder: Mapped[User] = relationship(foreign_keys=[holder_id])
    witness: Mapped[User | None] = relationship(foreign_keys=[witness_id])
    returned_by: Mapped[User | None] = relationship(foreign_keys=[returned_by_id])
    erasure_by: Mapped[User | None] = relationship(foreign_keys=[erasure_by_id])
    # What its item's page shows of a hand-over: the offer waiting on it (one at most, uq_handover_offers_one_pending;
    # the status written into the SQL, as db.written_in says why). Read-only: the hand-over rules read it afresh.
    waiting_offers: Mapped[list[HandoverOffer]] = relationship(
        viewonly=True, primaryjoin=lambda: and_(HandoverOffer.checkout_id == Checkout.id,
                                                HandoverOffer.status == literal_column("'pending'")))


class Event(Base):
    """One line of the audit trail; written only through tracker.audit.record.

    Events form a hash chain: `seq` numbers them 1, 2, 3, ... with no gap, and `hash` is SHA-256 over the
    previous event's hash and this event's canonical content (tracker.audit.canonical), so an edited, deleted,
    inserted or reordered event breaks the chain from that point on (`flask audit verify`).
    """

    __tablename__ = "events"
    __table_args__ = (
        # The check-outs that began with a hand-over (queries.last_own_trip leaves them out): the few events of
        # that action, by check-out, and not every event of the trail. The action is written into the statements
        # that use it, as the condition of a partial index has to be.
        Index("ix_events_handover_checkouts", "checkout_id", sqlite_where=text("action = 'handover'"),
              postgresql_where=text("action = 'handover'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"))
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text, default="{}")

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    item: Mapped[Item | None] = relationship()


class AuditHead(Base):
    """The end of the audit chain, one row: writers lock it to take the next number, so the chain never forks.

    `base_seq`/`base_hash` are where the kept trail starts: 0 and the genesis hash, or the last event removed
    by the retention purge (events older than the retention period, never younger).
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    base_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    base_hash: Mapped[str] = mapped_column(String(64))
    # The actions someone listens to as events are written (the event webhooks' chosen ones), comma-separated:
    # writers read it with the head and tell listeners of those events only (audit.listen_to).
    listened: Mapped[str] = mapped_column(Text, default="", server_default="")


class AuditCheck(Base):
    """The result of one verification of the trail (`flask audit verify`, the daily job): what the desk sees."""

    __tablename__ = "audit_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    head_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), default="")
    problem: Mapped[str] = mapped_column(Text, default="")


class LoginAttempt(Base):
    """Failed sign-ins, kept in the database so throttling holds across worker processes."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_at", "scope", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(254))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiScope(str, enum.Enum):
    """What an API token may do, on top of (never beyond) its user's role."""

    read = "read"  # read what the user may read
    act = "act"  # check out, return and hand over, as the user may on the pages
    admin = "admin"  # the register and the users, where the user is an admin (flags: the desk's roles)


class ApiToken(Base):
    """A personal API token: only its SHA-256 is kept (the token is shown once), with its scopes and expiry; it acts
    as its user, so it stops working the moment the user is disabled. Counts its requests per minute (throttling
    that holds across worker processes)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # the token's first characters, to tell tokens apart in lists
    scopes: Mapped[str] = mapped_column(String(40))  # comma-separated ApiScope values
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    @property
    def scope_set(self) -> frozenset[ApiScope]:
        return frozenset(ApiScope(s) for s in self.scopes.split(",") if s)


class RequestStatus(str, enum.Enum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    cancelled = "cancelled"
    expired = "expired"  # not used by the end of its day


class CheckoutRequest(Base):
    """A long check-out waiting for the security desk's approval (when the site requires it)."""

    __tablename__ = "checkout_requests"
    __table_args__ = (
        Index("uq_checkout_requests_one_pending_per_item", "item_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    purpose: Mapped[str] = mapped_column(String(200), default="")
    destination: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus, "request_status"), default=RequestStatus.pending)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(200))
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"))
    # The take-out rule the request was made under (JSON, with its version): a later change of the rule does not
    # change what this request needs, and the request says so.
    rule: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    # An approval in advance (事前申請): the local date the take-out is for; unset for a take-out now.
    for_date: Mapped[date | None] = mapped_column(Date)
    # Unused approvals lapse at the end of their day (the request's day, or `for_date`).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    item: Mapped[Item] = relationship()
    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    steps: Mapped[list[ApprovalStep]] = relationship(order_by="ApprovalStep.position", back_populates="request")


class Approval(str, enum.Enum):
    """Who must approve a take-out of a kind and data class (上長承認)."""

    nobody = "nobody"
    manager = "manager"  # the holder's department's manager
    manager_desk = "manager_desk"  # the manager, then the security desk
    named = "named"  # up to three named approvers, in order


class Overnight(str, enum.Enum):
    """Whether a take-out may stay out past the day end."""

    allowed = "allowed"  # with a reason
    approval = "approval"  # with a reason, once approved (by the rule's approvers, or the desk where there are none)
    forbidden = "forbidden"


class TakeoutRule(Base):
    """The take-out rule (持ち出しルール) for one kind and data class, set by admins; `kind` or `data_class` "*"
    is any. Where no row matches, the defaults in tracker.custody.rules apply."""

    __tablename__ = "takeout_rules"
    __table_args__ = (Index("uq_takeout_rules_kind_class", "kind", "data_class", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    data_class: Mapped[str] = mapped_column(String(16))
    approval: Mapped[Approval] = mapped_column(_enum(Approval, "approval"), default=Approval.nobody)
    approver1_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approver2_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approver3_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    overnight: Mapped[Overnight] = mapped_column(_enum(Overnight, "overnight"), default=Overnight.allowed)
    curfew: Mapped[time | None] = mapped_column(Time)  # local time by which it must be back, the same day
    max_hours: Mapped[int | None] = mapped_column(Integer)
    erasure_on_return: Mapped[bool] = mapped_column(Boolean, default=False)
    witness: Mapped[bool] = mapped_column(Boolean, default=False)  # a second person witnesses the take-out
    handling_ack: Mapped[bool] = mapped_column(Boolean, default=False)  # the holder ticks the handling rules
    escalate_after_hours: Mapped[int | None] = mapped_column(Integer)  # unanswered flag goes to the manager
    count_every_months: Mapped[int | None] = mapped_column(Integer)  # a stock-take counts it this often (棚卸)
    confirm_every_days: Mapped[int | None] = mapped_column(Integer)  # a long take-out's holder confirms custody
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ApprovalStep(Base):
    """One approver's turn on a request, in order: the manager, the desk, a named user, or a witness."""

    __tablename__ = "approval_steps"
    __table_args__ = (Index("uq_approval_steps_request_position", "request_id", "position", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("checkout_requests.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    who: Mapped[str] = mapped_column(String(16))  # manager | desk | user | witness
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)  # for "user"
    # For "manager": the department whose managers decide, fixed when the request is made: the requester's, or the
    # nearest one above it that has a manager (a section without one goes to its division's manager).
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    decision: Mapped[str | None] = mapped_column(String(16))  # approved | rejected
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_behalf: Mapped[str | None] = mapped_column(String(16))  # deputy | desk, when not the approver themself
    note: Mapped[str | None] = mapped_column(String(200))

    request: Mapped[CheckoutRequest] = relationship(back_populates="steps")
    approver: Mapped[User | None] = relationship(foreign_keys=[approver_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class OfferStatus(str, enum.Enum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"


class HandoverOffer(Base):
    """A hand-over offered by the holder and waiting for the receiver to accept it on their phone; custody moves
    only when they do (until then the giver holds the item)."""

    __tablename__ = "handover_offers"
    __table_args__ = (
        Index("uq_handover_offers_one_pending", "checkout_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    checkout_id: Mapped[int] = mapped_column(ForeignKey("checkouts.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    from_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    offered_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[OfferStatus] = mapped_column(_enum(OfferStatus, "offer_status"), default=OfferStatus.pending)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handling_ack: Mapped[bool] = mapped_column(Boolean, default=False)
    new_checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"))

    checkout: Mapped[Checkout] = relationship(foreign_keys=[checkout_id])
    item: Mapped[Item] = relationship()
    from_user: Mapped[User] = relationship(foreign_keys=[from_user_id])
    to_user: Mapped[User] = relationship(foreign_keys=[to_user_id])


class LabelJob(Base):
    """A label file asked for on a web page and made by the scheduler process; its file is kept here too, so
    any host can report its progress and hand it out."""

    __tablename__ = "label_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued, running, done, failed
    fmt: Mapped[str] = mapped_column(String(8))
    params: Mapped[str] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(200))
    mimetype: Mapped[str] = mapped_column(String(64))
    output: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FoundReport(Base):
    """Scans of a label by people who are not signed in (one row per label and window, counted), or a finder's
    message (one row each)."""

    __tablename__ = "found_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The latest scan it counts (at first, `at`).
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda ctx: ctx.get_current_parameters()["at"])
    scans: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    message: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(64))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handled_note: Mapped[str | None] = mapped_column(Text)

    item: Mapped[Item] = relationship()


class Sweep(Base):
    """One end-of-day sweep per site and business date (the site's local date whose day end it covers)."""

    __tablename__ = "sweeps"
    __table_args__ = (
        Index("uq_sweeps_site_date", "site_id", "business_date", unique=True),
        # NULLs are distinct in a unique index: the main office's dates need their own.
        Index("uq_sweeps_main_date", "business_date", unique=True,
              sqlite_where=text("site_id IS NULL"), postgresql_where=text("site_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))  # None: the main office
    business_date: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    runs: Mapped[int] = mapped_column(Integer, default=1)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    duration_seconds: Mapped[float | None] = mapped_column(Float)  # of the last run, for /metrics


class CountDigest(Base):
    """The desk's daily list of items due for a count, one per site (None: the main office) and local day: the row
    is the claim, so two scheduler runs never send it twice."""

    __tablename__ = "count_digests"
    __table_args__ = (
        Index("uq_count_digests_site_date", "site_id", "on_date", unique=True),
        Index("uq_count_digests_main_date", "on_date", unique=True,
              sqlite_where=text("site_id IS NULL"), postgresql_where=text("site_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    on_date: Mapped[date] = mapped_column(Date)
    items: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SchedulerLease(Base):
    """Who runs the scheduler's jobs: one holder across every host, renewed while it lives, taken over once expired."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlagStatus(str, enum.Enum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"
    lost = "lost"


class Flag(Base):
    """A case on the security desk's list: an overdue check-out (at most one per check-out, held by the database),
    or an item a stock-take found missing (no check-out; `reason` "stocktake_missing", once per stock-take and item)."""

    __tablename__ = "flags"
    __table_args__ = (
        Index("uq_flags_stocktake_item", "stocktake_id", "item_id", unique=True,
              sqlite_where=text("stocktake_id IS NOT NULL"), postgresql_where=text("stocktake_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(String(24))  # None: overdue; "stocktake_missing"
    stocktake_id: Mapped[int | None] = mapped_column(ForeignKey("stocktakes.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[FlagStatus] = mapped_column(_enum(FlagStatus, "flag_status"), default=FlagStatus.open, index=True)
    note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(String(40))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    # Escalation of a flag nobody acknowledged in time: 0 none, 1 the holder's manager, 2 the desk lead.
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    checkout: Mapped[Checkout | None] = relationship()
    item: Mapped[Item] = relationship()
    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])


class Notification(Base):
    """An outgoing e-mail or webhook call, queued in the sweep's transaction and delivered with retries."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    recipient: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # An event webhook's delivery: signed with its subscription's secret when sent (None for e-mail and chat).
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("event_webhooks.id"), index=True)

    subscription: Mapped[EventWebhook | None] = relationship()


class EventWebhook(Base):
    """An integration's subscription: audit events of the chosen actions are posted to `url` as JSON, signed with
    HMAC-SHA256 under `secret` (kept readable: signing needs it; shown to admins only when made or rotated)."""

    __tablename__ = "event_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[str] = mapped_column(Text)  # comma-separated audit actions
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    @property
    def event_set(self) -> frozenset[str]:
        return frozenset(e for e in self.events.split(",") if e)


class Incident(Base):
    """A lost item: what it held, where and when it was last known, who held it, and what was done."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"))
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("flags.id"), unique=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    known_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the business learned of the loss
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_known_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_known_place: Mapped[str | None] = mapped_column(String(200))
    # What the item held, copied when the incident opens so later edits of the item do not change the record.
    data_class: Mapped[DataClass] = mapped_column(_enum(DataClass, "incident_data_class"))
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    people_count: Mapped[int | None] = mapped_column(Integer)
    financial_harm: Mapped[bool] = mapped_column(Boolean, default=False)
    wrongful_purpose: Mapped[bool] = mapped_column(Boolean, default=False)
    properly_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    item: Mapped[Item] = relationship()
    holder: Mapped[User | None] = relationship(foreign_keys=[holder_id])
    opened_by: Mapped[User] = relationship(foreign_keys=[opened_by_id])
    actions: Mapped[list[IncidentAction]] = relationship(order_by="IncidentAction.at", back_populates="incident")


class IncidentAction(Base):
    __tablename__ = "incident_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)

    incident: Mapped[Incident] = relationship(back_populates="actions")
    actor: Mapped[User] = relationship()
