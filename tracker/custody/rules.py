"""Take-out rules (持ち出しルール) per kind and data class: who approves, overnight, curfew, maximum duration,
erasure at return, a witness, the handling rules, escalation.

Admins set them on one page (one row per kind and class); a pair without a row follows the defaults, which are
what the site's configuration says (APPROVAL_REQUIRED, ERASURE_ON_RETURN) and ask nothing more. `recommended()`
is the stricter set most Japanese take-out rules start from, offered on the page with one button.
"""

from __future__ import annotations

import calendar
import functools
import json
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import audit, clock
from ..errors import N_, InvalidInput, NotPermitted, RuleBroken
from ..models import Approval, DataClass, Item, Kind, Overnight, Role, TakeoutRule, User
from .policy import Policy

MAX_APPROVERS = 3
MAX_COUNT_MONTHS = 60
MAX_CONFIRM_DAYS = 365


@dataclass(frozen=True)
class Rule:
    """The rule for one kind and data class, as custody reads it (a row, or the defaults)."""

    kind: str
    data_class: str
    approval: Approval = Approval.nobody
    approvers: tuple[int, ...] = ()  # user ids, in order, for Approval.named
    overnight: Overnight = Overnight.allowed
    curfew: time | None = None
    max_hours: int | None = None
    erasure_on_return: bool = False
    witness: bool = False
    handling_ack: bool = False
    escalate_after_hours: int | None = None
    count_every_months: int | None = None  # a stock-take counts the item this often; None: no next count
    confirm_every_days: int | None = None  # the holder of a take-out this long confirms custody; None: never asked
    version: int = 0  # 0: the defaults, never saved

    @property
    def is_default(self) -> bool:
        return self.version == 0

    def snapshot(self) -> str:
        """The rule as a request keeps it (JSON): what it was made under, even after the rule changes."""
        data = asdict(self)
        data["approval"], data["overnight"] = self.approval.value, self.overnight.value
        data["curfew"] = self.curfew.strftime("%H:%M") if self.curfew else None
        data["approvers"] = list(self.approvers)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_snapshot(cls, raw: str) -> Rule:
        data = json.loads(raw)
        data["approval"], data["overnight"] = Approval(data["approval"]), Overnight(data["overnight"])
        data["curfew"] = time.fromisoformat(data["curfew"]) if data.get("curfew") else None
        data["approvers"] = tuple(data.get("approvers") or ())
        return cls(**data)


@functools.cache
def default(kind: str, data_class: str, policy: Policy) -> Rule:
    """What the site's configuration says for a pair no admin has set: today's behaviour, nothing stricter.
    Cached: it depends on the configuration only, and every page that takes an item out asks for it."""
    item_like = Item(kind=Kind(kind), data_class=DataClass(data_class))
    return Rule(kind=kind, data_class=data_class,
                overnight=Overnight.approval if policy.approval_required else Overnight.allowed,
                erasure_on_return=policy.needs_erasure(item_like),
                handling_ack=data_class != DataClass.none.value)


def recommended(kind: str, data_class: str) -> Rule:
    """A stricter starting point: the manager approves personal data going out, USB drives with personal data are
    back by 18:00 and erased at return, My Number needs manager and desk, no overnight, and a witness; personal
    data is counted every 6 months (sensitive and My Number every 3), and holders of long take-outs confirm
    custody weekly (sensitive every 3 days, My Number daily)."""
    personal = data_class != DataClass.none.value
    usb = kind == Kind.usb.value
    rule = Rule(kind=kind, data_class=data_class, handling_ack=personal, erasure_on_return=usb and personal,
                escalate_after_hours=2 if personal else None, count_every_months=6 if personal else None,
                confirm_every_days=7 if personal else None)
    if data_class == DataClass.personal.value:
        rule = replace(rule, overnight=Overnight.approval, curfew=time(18, 0) if usb else None)
    elif data_class == DataClass.sensitive.value:
        rule = replace(rule, approval=Approval.manager, overnight=Overnight.approval,
                       curfew=time(18, 0) if usb else None, max_hours=8 if usb else None, count_every_months=3,
                       confirm_every_days=3)
    elif data_class == DataClass.my_number.value:
        rule = replace(rule, approval=Approval.manager_desk, overnight=Overnight.forbidden, curfew=time(18, 0),
                       max_hours=4 if usb else None, witness=True, escalate_after_hours=1, count_every_months=3,
                       confirm_every_days=1)
    return rule


def _from_row(row: TakeoutRule) -> Rule:
    approvers = tuple(i for i in (row.approver1_id, row.approver2_id, row.approver3_id) if i is not None)
    return Rule(kind=row.kind, data_class=row.data_class, approval=row.approval, approvers=approvers,
                overnight=row.overnight, curfew=row.curfew, max_hours=row.max_hours,
                erasure_on_return=row.erasure_on_return, witness=row.witness, handling_ack=row.handling_ack,
                escalate_after_hours=row.escalate_after_hours, count_every_months=row.count_every_months,
                confirm_every_days=row.confirm_every_days, version=row.version)


def rule_for(session: Session, item: Item, policy: Policy) -> Rule:
    """The rule that governs taking `item` out now."""
    row = session.scalar(select(TakeoutRule).where(TakeoutRule.kind == item.kind.value,
                                                   TakeoutRule.data_class == item.data_class.value))
    return _from_row(row) if row is not None else default(item.kind.value, item.data_class.value, policy)


def all_rules(session: Session, policy: Policy) -> list[Rule]:
    """Every kind and class, in the order of the enums (the rules page's table), saved or default."""
    found = table(session, policy)
    return [found[(k.value, c.value)] for c in DataClass for k in Kind]


UNREAD = object()  # `governing`'s `saved`: the item's saved rule was not read with it


def governing(session: Session, item: Item, policy: Policy, contents: list[Item] | None = None,
              saved: TakeoutRule | None | object = UNREAD) -> list[Rule]:
    """The rules a take-out of `item` must keep, read in one query: its own and, for a bag, those of everything in
    it (`contents`, default its contents not retired), in that order: a USB drive in a bag keeps its curfew.
    `saved`: the item's own saved rule (None: there is none, the default applies), where it was read with the
    item; then an item without contents costs no read."""
    if contents is None:
        contents = [c for c in item.contents if not c.retired] if item.kind == Kind.bag else []
    if saved is not UNREAD and not contents:
        return [_from_row(saved) if saved is not None else _defaults(policy)[(item.kind.value, item.data_class.value)]]
    found = table(session, policy)
    return [lookup(found, it) for it in [item, *contents]]


def curfew_at(rule: Rule, now: datetime, policy: Policy) -> datetime | None:
    """Today's curfew (門限) under `rule` as a UTC moment, or None where the rule sets none."""
    if rule.curfew is None:
        return None
    return clock.day_end_on(clock.local(now, policy.timezone).date(), policy.timezone, rule.curfew)


def latest_due(rule: Rule, now: datetime, policy: Policy) -> datetime | None:
    """The latest due time the rule allows without approval (today's curfew, or `max_hours` from now), or None
    where it sets no limit in time."""
    limits = [t for t in (curfew_at(rule, now, policy),
                          now + timedelta(hours=rule.max_hours) if rule.max_hours else None) if t is not None]
    return min(limits) if limits else None


def due_by(found: list[Rule], now: datetime, policy: Policy) -> datetime:
    """The due time a take-out gets when the person keeps the default: the day end, or earlier where a rule caps
    it (a curfew already past today leaves the day end, and the rule then refuses the take-out by name)."""
    caps = [t for t in (latest_due(r, now, policy) for r in found) if t is not None and t > now]
    return min([policy.default_due(now), *caps])


def strict(found: list[Rule]) -> bool:
    """Whether the rules cap the due time (a curfew or a maximum duration): such a check-out is flagged the
    moment it is overdue, not at the day end."""
    return any(r.curfew is not None or r.max_hours is not None for r in found)


def _limit_passed(rule: Rule, now: datetime, due_at: datetime, policy: Policy) -> str | None:
    """The first limit in time of `rule` that a take-out from `now` until `due_at` goes past, or None."""
    if rule.overnight != Overnight.allowed and policy.is_long(now, due_at):
        return "overnight"
    curfew = curfew_at(rule, now, policy)
    if curfew is not None and (now >= curfew or due_at > curfew):
        return "curfew"
    if rule.max_hours is not None and due_at - now > timedelta(hours=rule.max_hours):
        return "max_hours"
    return None


def goes_past(rule: Rule, now: datetime, due_at: datetime, policy: Policy) -> bool:
    """Whether the take-out goes past a limit in time of `rule`: overnight (where not simply allowed), the
    curfew, or the maximum duration. Where the rule's overnight is `approval`, that is what approval allows."""
    return _limit_passed(rule, now, due_at, policy) is not None


def table(session: Session, policy: Policy) -> dict[tuple[str, str], Rule]:
    """Every rule by (kind, data class), read at once: for lists that ask about many items. Only the saved rows
    are read; the pairs nobody set take the (cached) defaults."""
    found = dict(_defaults(policy))
    found.update({(r.kind, r.data_class): _from_row(r) for r in session.execute(_SAVED_RULES)})
    return found


_SAVED_RULES = select(TakeoutRule.__table__)  # plain rows: what `_from_row` reads, without the ORM's objects


@functools.cache
def _defaults(policy: Policy) -> dict[tuple[str, str], Rule]:
    return {(k.value, c.value): default(k.value, c.value, policy) for c in DataClass for k in Kind}


def lookup(found: dict[tuple[str, str], Rule], item: Item) -> Rule:
    """The rule of `item` in a `table`."""
    return found[(item.kind.value, item.data_class.value)]


def needs_approval(rule: Rule, long: bool) -> bool:
    """Whether a take-out under `rule` waits for approval first: always where the rule names approvers, and for
    one that goes past the rule's limits in time (`long`: see `goes_past`) where its overnight needs approval."""
    return rule.approval != Approval.nobody or (long and rule.overnight == Overnight.approval)


def refuse_if_broken(rule: Rule, now: datetime, due_at: datetime, policy: Policy) -> None:
    """Refuse a take-out that no approval can allow under `rule`, naming the rule and the limit: overnight where
    forbidden, and the curfew or maximum duration where overnight does not go to approval."""
    passed = _limit_passed(rule, now, due_at, policy)
    if passed is None or rule.overnight == Overnight.approval:
        return
    names = {"kind": rule.kind, "data_class": rule.data_class}
    if passed == "overnight":
        raise RuleBroken(N_("The take-out rule for %(kind)s (%(data_class)s) does not allow overnight: bring it "
                            "back by the end of today."), about="due_at", **names)
    if passed == "curfew":
        raise RuleBroken(N_("The take-out rule for %(kind)s (%(data_class)s) has it back by %(curfew)s today: it "
                            "cannot go out after that time or be due later."), about="due_at",
                         curfew=rule.curfew.strftime("%H:%M"), **names)
    raise RuleBroken(N_("The take-out rule for %(kind)s (%(data_class)s) allows at most %(hours)d hours out: "
                        "choose an earlier due time."), about="due_at", hours=rule.max_hours, **names)


def add_months(day: date, months: int) -> date:
    """The same day `months` later; a day the month does not have becomes its last (31 January + 1 = 28 or 29
    February), as people count "every 6 months"."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_count_on(rule: Rule, item: Item, tz: str) -> date | None:
    """The local date by which `item` is due for its next count: its last count (or its registration, if never
    counted) plus the rule's interval, in zone `tz` (its site's); None where the rule sets no interval."""
    if rule.count_every_months is None:
        return None
    basis = item.last_counted_at or item.created_at
    return add_months(clock.local(basis, tz).date(), rule.count_every_months)


def needs_erasure(session: Session, item: Item, policy: Policy) -> bool:
    """Whether returning `item` must say what became of its data (消去確認), as its rule says now."""
    return rule_for(session, item, policy).erasure_on_return


def needs_handling_ack(session: Session, now: datetime, item: Item, rule: Rule, policy: Policy) -> bool:
    """Whether taking `item` out under `rule` asks for the handling rules: where the rule says so, at the first
    take-out of the local day."""
    return rule.handling_ack and policy.first_checkout_today(session, now, item)


def _check(session: Session, rule: Rule) -> None:
    if rule.kind not in {k.value for k in Kind} or rule.data_class not in {c.value for c in DataClass}:
        raise InvalidInput(N_("Choose a kind and a data class from the list."))
    if len(rule.approvers) > MAX_APPROVERS or len(set(rule.approvers)) != len(rule.approvers):
        raise InvalidInput(N_("Name up to three different approvers."), about="approvers")
    if rule.approval == Approval.named and not rule.approvers:
        raise InvalidInput(N_("Name at least one approver."), about="approvers")
    if rule.approvers:
        found = set(session.scalars(select(User.id).where(User.id.in_(rule.approvers), User.active.is_(True))))
        if found != set(rule.approvers):
            raise InvalidInput(N_("Choose the approvers from the list of active users."), about="approvers")
    for value, about in ((rule.max_hours, "max_hours"), (rule.escalate_after_hours, "escalate_after_hours")):
        if value is not None and not 1 <= value <= 24 * 31:
            raise InvalidInput(N_("Give a number of hours between 1 and 744."), about=about)
    if rule.count_every_months is not None and not 1 <= rule.count_every_months <= MAX_COUNT_MONTHS:
        raise InvalidInput(N_("Give a number of months between 1 and 60."), about="count_every_months")
    if rule.confirm_every_days is not None and not 1 <= rule.confirm_every_days <= MAX_CONFIRM_DAYS:
        raise InvalidInput(N_("Give a number of days between 1 and 365."), about="confirm_every_days")


def _locked_row(session: Session, now: datetime, kind: str, data_class: str) -> tuple[TakeoutRule, bool]:
    """The pair's row, locked, and whether this save creates it. Of two first saves at once, the unique (kind,
    data class) lets one insert it; the other then waits for it (and `save` refuses it: it saw version 0)."""
    stmt = (select(TakeoutRule).where(TakeoutRule.kind == kind, TakeoutRule.data_class == data_class)
            .with_for_update().execution_options(populate_existing=True))
    row = session.scalar(stmt)
    if row is not None:
        return row, False
    try:
        with session.begin_nested():
            row = TakeoutRule(kind=kind, data_class=data_class, version=0, updated_at=now)
            session.add(row)
            session.flush()
        return row, True
    except IntegrityError:
        return session.scalars(stmt).one(), False


class RuleChanged(InvalidInput):
    message = N_("%(name)s saved this rule at %(when)s, after you opened it. Nothing was changed: the form now shows "
                 "the rule as it is; make your change again.")


def save(session: Session, now: datetime, rule: Rule, *, actor: User, source: str | None = None) -> Rule:
    """Store the rule for its kind and class (a new version); one audit event with what it was and what it is.
    `rule.version` is the version the change was made to: if someone saved another since, the change is refused
    (two admins editing one rule do not overwrite each other unseen). Requests already waiting keep the rule they
    were made under. Only admins set the rules."""
    if actor.role != Role.admin:
        raise NotPermitted()
    if rule.approval != Approval.named:
        rule = replace(rule, approvers=())
    _check(session, rule)
    row, created = _locked_row(session, now, rule.kind, rule.data_class)
    if row.version != rule.version:
        by = session.get(User, row.updated_by_id) if row.updated_by_id else None
        raise RuleChanged(name=by.name if by else "?", when=row.updated_at)
    before = None if created else _from_row(row).snapshot()
    approvers = list(rule.approvers) + [None] * (MAX_APPROVERS - len(rule.approvers))
    row.approval, (row.approver1_id, row.approver2_id, row.approver3_id) = rule.approval, approvers
    row.overnight, row.curfew, row.max_hours = rule.overnight, rule.curfew, rule.max_hours
    row.erasure_on_return, row.witness, row.handling_ack = rule.erasure_on_return, rule.witness, rule.handling_ack
    row.escalate_after_hours = rule.escalate_after_hours
    row.count_every_months, row.confirm_every_days = rule.count_every_months, rule.confirm_every_days
    row.version, row.updated_at, row.updated_by_id = row.version + 1, now, actor.id
    session.flush()
    saved = _from_row(row)
    audit.record(session, now, "rule_changed", actor=actor, source=source, kind=rule.kind,
                 data_class=rule.data_class, version=saved.version,
                 before=json.loads(before) if before else None, after=json.loads(saved.snapshot()))
    return saved


@dataclass(frozen=True)
class Change:
    """Who saved a rule's current version, and when (the rules page shows it)."""

    at: datetime
    by: str | None


def changes(session: Session) -> dict[tuple[str, str], Change]:
    """The last change of every saved rule, by (kind, data class), in one query."""
    rows = session.execute(select(TakeoutRule.kind, TakeoutRule.data_class, TakeoutRule.updated_at, User.name)
                           .outerjoin(User, User.id == TakeoutRule.updated_by_id))
    return {(kind, data_class): Change(at, by) for kind, data_class, at, by in rows}


def _same(a: Rule, b: Rule) -> bool:
    return replace(a, version=0) == replace(b, version=0)


def apply_recommended(session: Session, now: datetime, *, actor: User, policy: Policy,
                      source: str | None = None) -> list[Rule]:
    """Save the recommended rule for every kind and class that does not have it yet (one new version and one
    event each; a row already as recommended is left as it is). Returns the rules saved."""
    saved = []
    for current in all_rules(session, policy):
        wanted = recommended(current.kind, current.data_class)
        if current.is_default or not _same(current, wanted):
            saved.append(save(session, now, replace(wanted, version=current.version), actor=actor, source=source))
    return saved
