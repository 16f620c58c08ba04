"""Approval of a take-out (上長承認): a request waits for its approvers in order, each decision is an event, and the
last approval takes the item out at once, under the rule the request was made under.

The steps come from the item's take-out rule when the request is made (the holder's manager, the manager then the
security desk, up to three named approvers, or the desk alone for an overnight that needs approval); the rule is
kept with the request, so a rule changed while it waits changes nothing for it. Whoever's turn it is decides, or
their deputy (User.deputy_id), or the security desk on their behalf. Races (two approvers at once, an approval and
the requester's cancellation at once) are settled by the database: the request's row is locked and every change of
a step or a request is a conditional UPDATE on its undecided state.

Like `operations`, every function takes a session and an explicit `now`, only flushes, and records its events.
Notifications are not sent from here: `turn_started` and `request_settled` tell whoever listens (the app connects
the outbox to them), inside the same transaction.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from blinker import Namespace
from sqlalchemy import Exists, Integer, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, joinedload

from .. import audit, clock, queries
from ..db import written_in
from ..errors import N_, ApprovalRequired, InvalidInput, NotPermitted, Retired
from ..models import (
    Approval,
    ApprovalStep,
    Checkout,
    CheckoutRequest,
    Department,
    Item,
    RequestStatus,
    User,
    department_managers,
)
from . import operations, rules
from .policy import Policy

MANAGER, DESK, NAMED = "manager", "desk", "user"  # ApprovalStep.who
APPROVED, REJECTED = "approved", "rejected"  # ApprovalStep.decision
DEPUTY = "deputy"  # ApprovalStep.on_behalf, besides DESK
ADVANCE_DAYS = 90  # how far ahead an approval in advance (事前申請) may be asked for

_signals = Namespace()
# (session, now=, request=, step=, approvers=[User]): a step's turn began; `approvers` may be empty (the desk's turn,
# or a manager step of a department without managers): then the desk is told.
turn_started = _signals.signal("approval-turn-started")
# (session, now=, request=): the request was approved, denied or expired; the requester is told.
request_settled = _signals.signal("approval-request-settled")


class AlreadyDecided(InvalidInput):
    message = N_("%(name)s already decided this step at %(when)s. Nothing was changed.")


class RequestClosed(InvalidInput):
    """The request no longer waits; the message says why, so the person knows what happened instead."""

    MESSAGES = {
        RequestStatus.approved: N_("This request was already approved. Nothing was changed."),
        RequestStatus.denied: N_("This request was already rejected. Nothing was changed."),
        RequestStatus.cancelled: N_("The requester cancelled this request. Nothing was changed."),
        RequestStatus.expired: N_("This request expired at the end of its day and can no longer be approved."),
    }

    def __init__(self, status: RequestStatus):
        self.status = status
        super().__init__(self.MESSAGES.get(status, InvalidInput.message))


class RequestExpired(InvalidInput):
    message = N_("This request expired at %(when)s and can no longer be approved.")


# --- asking ------------------------------------------------------------------------------------------------------


def _end_of_local_day(day: date, tz: str) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _steps_for(session: Session, rule: rules.Rule, holder: User) -> list[ApprovalStep]:
    """The steps a rule asks for, in order; an overnight approval without named approvers is the desk's, as before.
    A manager step goes to the managers of the holder's department, or of the nearest department above it that has
    one (never the holder themselves): a section without a manager asks its division's."""
    if rule.approval == Approval.manager:
        plan = [(MANAGER, None)]
    elif rule.approval == Approval.manager_desk:
        plan = [(MANAGER, None), (DESK, None)]
    elif rule.approval == Approval.named:
        plan = [(NAMED, uid) for uid in rule.approvers]
    else:
        plan = [(DESK, None)]
    department_id = None
    if any(who == MANAGER for who, _ in plan):
        department_id = queries.manager_tree(session).nearest(holder.department_id, holder.id)[0]
        department_id = department_id or holder.department_id  # no manager up the tree: the desk is told
    return [ApprovalStep(position=i, who=who, approver_id=uid, department_id=department_id if who == MANAGER else None)
            for i, (who, uid) in enumerate(plan, start=1)]


def _check_for_date(now: datetime, policy: Policy, for_date: date | None) -> date | None:
    """An approval in advance is for a later local date (today is simply a request now), not too far ahead."""
    today = clock.local(now, policy.timezone).date()
    if for_date is None or for_date == today:
        return None
    if for_date < today:
        raise InvalidInput(N_("The date of an approval in advance must be today or later."), about="for_date")
    if for_date > today + timedelta(days=ADVANCE_DAYS):
        raise InvalidInput(N_("An approval in advance can be asked for at most 90 days ahead."), about="for_date")
    return for_date


def request_checkout(session: Session, now: datetime, *, item: Item, holder: User, due_at: datetime,
                     purpose: str, destination: str, reason: str, policy: Policy, handling_ack: bool = False,
                     for_date: date | None = None, source: str | None = None) -> CheckoutRequest:
    """Ask for a take-out the rule wants approved; the item stays in until the last approver approves.

    With `for_date` (an approval in advance, 事前申請), the take-out is for that local date: once approved, the
    requester takes it out on that day without asking again (see `take_out`). Only an overnight or longer take-out
    needs a reason. The request expires at the end of its day (the request's, or `for_date`'s).
    """
    policy = policy.for_item(item)  # "today", "overnight" and the expiry on the clock of the item's site
    for_date = _check_for_date(now, policy, for_date)
    item = operations._lock(session, item)
    operations._refuse_if_unusable(session, item)
    if item.retired:
        raise Retired(asset_tag=item.asset_tag)
    # The day the take-out happens decides what is long; an item out today may be back by an advance date.
    start = now if for_date is None else clock.from_local(for_date, policy.timezone)
    if for_date is None:
        operations._refuse_if_out(session, item)
    long = policy.is_long(start, due_at)
    operations._refuse_if_incomplete(session, start, policy, item, long, reason, handling_ack)
    if due_at <= start:
        raise InvalidInput(N_("The due time must be after the start of the day the take-out is for.")
                           if for_date else N_("The due time must be in the future."), about="due_at")
    rule = rules.rule_for(session, item, policy)
    rules.refuse_if_broken(rule, start, due_at, policy)
    if for_date is not None and not rules.needs_approval(rule, long):
        raise InvalidInput(N_("This take-out needs no approval: take it out on the day."), about="for_date")
    existing = operations.pending_request(session, item)
    if existing is not None:
        if existing.requester_id == holder.id:
            return existing  # a double tap or a resubmitted form
        raise InvalidInput(N_("%(name)s is already waiting for approval to take %(asset_tag)s out."),
                           name=existing.requester.name, asset_tag=item.asset_tag)
    req = CheckoutRequest(item_id=item.id, requester_id=holder.id, requested_at=now, due_at=due_at,
                          purpose=operations._clean(purpose, N_("Purpose"), "purpose"),
                          destination=operations._clean(destination, N_("Destination"), "destination"),
                          reason=operations._clean(reason, N_("Reason"), "reason"), status=RequestStatus.pending,
                          rule=rule.snapshot(), for_date=for_date,
                          expires_at=_end_of_local_day(clock.local(start, policy.timezone).date(), policy.timezone))
    req.steps = _steps_for(session, rule, holder)
    try:
        with session.begin_nested():
            session.add(req)
            session.flush()
    except IntegrityError:
        raise InvalidInput(N_("Someone else is already waiting for approval for %(asset_tag)s."),
                           asset_tag=item.asset_tag) from None
    audit.record(session, now, "checkout_requested", actor=holder, item=item, subject=holder, source=source,
                 due_at=due_at.isoformat(), reason=req.reason, rule_version=rule.version,
                 steps=[s.who for s in req.steps], for_date=for_date.isoformat() if for_date else None)
    _start_turn(session, now, req, req.steps[0])
    return req


# --- who decides -------------------------------------------------------------------------------------------------


def rule_of(request: CheckoutRequest) -> rules.Rule | None:
    """The rule the request was made under, or None for a request older than rules."""
    return rules.Rule.from_snapshot(request.rule) if request.rule and request.rule != "{}" else None


def current_step(request: CheckoutRequest) -> ApprovalStep | None:
    """The first undecided step of a pending request: whose turn it is."""
    if request.status != RequestStatus.pending:
        return None
    return next((s for s in request.steps if s.decision is None), None)


def approvers(session: Session, request: CheckoutRequest, step: ApprovalStep) -> list[User]:
    """Who decides `step` in their own name (never the requester): the managers of the step's department (see
    `_steps_for`), the named user, or nobody but the security desk."""
    if step.who == MANAGER:
        dept = session.get(Department, step.department_id) if step.department_id else None
        people = list(dept.managers) if dept is not None else []
    elif step.who == NAMED and step.approver_id is not None:
        people = [session.get(User, step.approver_id)]
    else:
        people = []
    return [u for u in people if u is not None and u.active and u.id != request.requester_id]


def awaited(session: Session, request: CheckoutRequest) -> list[User]:
    """Whom a pending request waits for now, by name; empty when it waits for the security desk."""
    step = current_step(request)
    return approvers(session, request, step) if step is not None else []


def standing(session: Session, request: CheckoutRequest, step: ApprovalStep, actor: User) -> str | None:
    """How `actor` may decide `step`: "self" (an approver, or the desk on its own step), "deputy" or "desk"
    (on an approver's behalf); None: they may not."""
    if actor.id == request.requester_id or not actor.active:
        return None
    if step.who == DESK:
        return "self" if actor.privileged else None
    named = approvers(session, request, step)
    if any(u.id == actor.id for u in named):
        return "self"
    if any(u.deputy_id == actor.id for u in named):
        return DEPUTY
    return DESK if actor.privileged else None


def may_see(session: Session, request: CheckoutRequest, actor: User) -> bool:
    """The requester, the desk, and anyone who decides (or decided, or may decide for someone on) one of its steps."""
    if actor.privileged or actor.id == request.requester_id:
        return True
    if any(s.decided_by_id == actor.id for s in request.steps):
        return True
    return any(standing(session, request, s, actor) is not None for s in request.steps if s.who != DESK)


# --- deciding ----------------------------------------------------------------------------------------------------


def _lock_request(session: Session, request: CheckoutRequest) -> CheckoutRequest:
    """The request's row, locked (PostgreSQL; SQLite already serialises writers) and read again with its steps: two
    approvers, or an approver and the requester, queue here and the second sees what the first did."""
    locked = session.scalars(select(CheckoutRequest).where(CheckoutRequest.id == request.id).with_for_update()
                             .execution_options(populate_existing=True)).one()
    steps = list(session.scalars(select(ApprovalStep).where(ApprovalStep.request_id == locked.id)
                                 .order_by(ApprovalStep.position).execution_options(populate_existing=True)))
    if not steps:  # a request made before approval steps existed: the desk's, as it was then
        locked.steps.append(ApprovalStep(position=1, who=DESK))
        session.flush()
    return locked


def _refuse_if_closed(request: CheckoutRequest, now: datetime) -> None:
    if request.status != RequestStatus.pending:
        raise RequestClosed(request.status)
    if request.expires_at is not None and request.expires_at <= now:
        raise RequestExpired(when=request.expires_at)


def _claim_step(session: Session, step: ApprovalStep, decision: str, actor: User, now: datetime,
                on_behalf: str | None, note: str | None) -> None:
    """Decide the step only if it is still undecided (the database's word, whatever was read before)."""
    done = session.execute(update(ApprovalStep).where(ApprovalStep.id == step.id, ApprovalStep.decision.is_(None))
                           .values(decision=decision, decided_by_id=actor.id, decided_at=now, on_behalf=on_behalf,
                                   note=note).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        session.refresh(step)
        raise AlreadyDecided(name=step.decided_by.name if step.decided_by else "?", when=step.decided_at or now)
    session.refresh(step)


def _settle(session: Session, request: CheckoutRequest, status: RequestStatus, now: datetime,
            actor: User | None = None, note: str | None = None, checkout_id: int | None = None) -> None:
    """Close the request only if it is still pending; otherwise someone else closed it first."""
    values = {"status": status, "decided_at": now}
    if actor is not None:
        values.update(decided_by_id=actor.id, note=note)
    if checkout_id is not None:
        values["checkout_id"] = checkout_id
    done = session.execute(update(CheckoutRequest).where(CheckoutRequest.id == request.id,
                                                         CheckoutRequest.status == RequestStatus.pending)
                           .values(**values).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        session.refresh(request)
        raise RequestClosed(request.status)
    session.refresh(request)


def decide(session: Session, now: datetime, *, request: CheckoutRequest, actor: User, approve: bool,
           note: str = "", step_id: int | None = None, policy: Policy | None = None,
           source: str | None = None) -> CheckoutRequest:
    """One approver's decision on the step whose turn it is; `step_id` is the step the person saw (a step decided
    meanwhile by someone else is refused, naming who). A rejection denies the request; the last approval takes the
    item out to the requester at once (or, for an approval in advance, makes it ready for its day)."""
    note = operations._clean(note, N_("Note")) or None
    request = _lock_request(session, request)
    _refuse_if_closed(request, now)
    step = current_step(request)
    if step is None:  # every step decided, yet still pending: nothing is left to decide
        raise RequestClosed(RequestStatus.approved)
    if step_id is not None and step.id != step_id:
        seen = session.get(ApprovalStep, step_id)
        if seen is None or seen.request_id != request.id:
            raise InvalidInput(N_("This step is not part of the request."))
        raise AlreadyDecided(name=seen.decided_by.name if seen.decided_by else "?", when=seen.decided_at or now)
    how = standing(session, request, step, actor)
    if how is None:
        raise NotPermitted()
    on_behalf = None if how == "self" else how
    _claim_step(session, step, APPROVED if approve else REJECTED, actor, now, on_behalf, note)
    named = approvers(session, request, step)
    audit.record(session, now, "approval_step_approved" if approve else "approval_step_rejected", actor=actor,
                 item=request.item, subject=request.requester, source=source, request=request.id,
                 step=step.position, who=step.who, on_behalf=on_behalf or "",
                 on_behalf_of=[u.email for u in named] if on_behalf else [], note=note or "")
    if not approve:
        _settle(session, request, RequestStatus.denied, now, actor, note)
        audit.record(session, now, "checkout_denied", actor=actor, item=request.item, subject=request.requester,
                     source=source, request=request.id, note=note or "")
        request_settled.send(session, now=now, request=request)
        return request
    following = current_step(request)
    if following is not None:
        _start_turn(session, now, request, following)
        return request
    checkout_id = None
    # The item goes out at once, unless it is for a later day or its rule wants a witness at the take-out itself
    # (the two-person rule needs both at the item: the requester then takes it out on its page, with the witness).
    made_under = rule_of(request)  # None for a request from before rules were kept
    if request.for_date is None and not (made_under is not None and made_under.witness):
        co = _check_out_under(session, now, request, actor, policy, source)
        checkout_id = co.id
    _settle(session, request, RequestStatus.approved, now, actor, note, checkout_id)
    audit.record(session, now, "checkout_approved", actor=actor, item=request.item, subject=request.requester,
                 source=source, request=request.id, note=note or "",
                 for_date=request.for_date.isoformat() if request.for_date else None)
    request_settled.send(session, now=now, request=request)
    return request


def decide_request(session: Session, now: datetime, *, request: CheckoutRequest, actor: User, approve: bool,
                   note: str = "", step_id: int | None = None, policy: Policy | None = None,
                   source: str | None = None) -> CheckoutRequest:
    """The security desk's decision from its board: only the desk, on whichever step waits."""
    if not actor.privileged:
        raise NotPermitted()
    return decide(session, now, request=request, actor=actor, approve=approve, note=note, step_id=step_id,
                  policy=policy, source=source)


def _check_out_under(session: Session, now: datetime, request: CheckoutRequest, actor: User,
                     policy: Policy | None, source: str | None) -> Checkout:
    """Take the item out to the requester as asked, under the rule the request was made under (not today's). The
    check-out is the requester's own (an approver who is not the desk may not check items out to others); the
    approval's event names the approver."""
    by = actor if actor.privileged else request.requester
    return operations.check_out(session, now, item=request.item, holder=request.requester, actor=by,
                                due_at=request.due_at, purpose=request.purpose, destination=request.destination,
                                reason=request.reason, policy=policy, handling_ack=True, approved=True,
                                rule=rule_of(request), source=source)


def _start_turn(session: Session, now: datetime, request: CheckoutRequest, step: ApprovalStep) -> None:
    turn_started.send(session, now=now, request=request, step=step, approvers=approvers(session, request, step))


# --- the requester -----------------------------------------------------------------------------------------------


def cancel(session: Session, now: datetime, *, request: CheckoutRequest, actor: User,
           source: str | None = None) -> CheckoutRequest:
    """The requester withdraws a request still waiting (or an approval in advance not used yet)."""
    if actor.id != request.requester_id:
        raise NotPermitted()
    request = _lock_request(session, request)
    ready = request.status == RequestStatus.approved and request.checkout_id is None
    if request.status != RequestStatus.pending and not ready:
        raise RequestClosed(request.status)
    done = session.execute(update(CheckoutRequest).where(CheckoutRequest.id == request.id,
                                                         CheckoutRequest.status == request.status,
                                                         CheckoutRequest.checkout_id.is_(None))
                           .values(status=RequestStatus.cancelled, decided_at=now)
                           .execution_options(synchronize_session=False))
    session.refresh(request)
    if done.rowcount != 1:
        raise RequestClosed(request.status)
    audit.record(session, now, "checkout_request_cancelled", actor=actor, item=request.item, subject=actor,
                 source=source, request=request.id)
    return request


def _ready(now: datetime, policy: Policy, holder_id: int):
    """The condition of an approval in advance of `holder_id` for today, approved and not used yet."""
    return and_(CheckoutRequest.requester_id == holder_id, CheckoutRequest.status == RequestStatus.approved,
                CheckoutRequest.checkout_id.is_(None),
                # for today in advance, or approved today to be taken out with a witness (it lapses at day end)
                or_(CheckoutRequest.for_date == clock.local(now, policy.timezone).date(),
                    CheckoutRequest.for_date.is_(None)), CheckoutRequest.expires_at > now)


def ready_request(session: Session, now: datetime, item: Item, holder: User, policy: Policy) -> CheckoutRequest | None:
    """The holder's approval in advance for taking `item` out today, approved and not used yet."""
    return session.scalar(select(CheckoutRequest).where(CheckoutRequest.item_id == item.id,
                                                        _ready(now, policy.for_item(item), holder.id))
                          .order_by(CheckoutRequest.id).limit(1))


def _status_is(status: RequestStatus):
    """`status = 'pending'` written into the SQL (`db.written_in`), for the statements every page runs."""
    return written_in(CheckoutRequest.status, status)


# The item page's requests, built once with the reader and the moment as bound values (every scan runs it).
_ON_ITEM_PAGE = (
    select(CheckoutRequest)
    .where(CheckoutRequest.item_id == bindparam("item_id"),
           or_(_status_is(RequestStatus.pending),
               and_(CheckoutRequest.requester_id == bindparam("reader_id"),
                    _status_is(RequestStatus.approved), CheckoutRequest.checkout_id.is_(None),
                    or_(CheckoutRequest.for_date == bindparam("today"), CheckoutRequest.for_date.is_(None)),
                    CheckoutRequest.expires_at > bindparam("now", type_=CheckoutRequest.expires_at.type))))
    .order_by(CheckoutRequest.id))


# Whether there is any: most items have none, and a plain row costs less than the ORM's machinery for objects.
_ANY_ON_ITEM_PAGE = select(_ON_ITEM_PAGE.with_only_columns(CheckoutRequest.id).order_by(None).exists())


def may_show_requests(item_id) -> Exists:
    """Whether the page of the item `item_id` (a column) may have a request to show, as a column of another read
    (the scan's, `views.scan`), with `:reader_id` and `:now` bound: `_ON_ITEM_PAGE`'s condition without the day,
    whose date depends on the item's site, not read yet. False means none (nearly every scan); True, look."""
    return (select(CheckoutRequest.id)
            .where(CheckoutRequest.item_id == item_id,
                   or_(_status_is(RequestStatus.pending),
                       and_(CheckoutRequest.requester_id == bindparam("reader_id", type_=Integer),
                            _status_is(RequestStatus.approved), CheckoutRequest.checkout_id.is_(None),
                            CheckoutRequest.expires_at > bindparam("now", type_=CheckoutRequest.expires_at.type))))
            .exists())


def on_item_page(session: Session, now: datetime, item_id: int, reader: User, policy: Policy,
                 maybe: bool | None = None) -> tuple[CheckoutRequest | None, CheckoutRequest | None]:
    """What the item's page shows of requests: the one waiting for approval, and the reader's approval in advance
    for today (the same condition as `_ready`). One plain statement when there is none (nearly every scan), the
    objects read with the same condition when there is; none at all when `maybe` (`may_show_requests`, read with
    the label) says False."""
    if maybe is False:
        return None, None
    params = {"item_id": item_id, "reader_id": reader.id, "now": now,
              "today": clock.local(now, policy.timezone).date()}
    if maybe is None and not session.connection().execute(_ANY_ON_ITEM_PAGE, params).scalar():
        return None, None
    found = list(session.scalars(_ON_ITEM_PAGE, params))
    pending = next((r for r in found if r.status == RequestStatus.pending), None)
    return pending, next((r for r in found if r.status == RequestStatus.approved), None)


def take_out(session: Session, now: datetime, *, item: Item, holder: User, actor: User, policy: Policy,
             handling_ack: bool = False, source: str | None = None, **asked) -> Checkout:
    """A take-out from the item's page, as asked (`operations.check_out`); where that needs approval and the holder
    has an approval in advance for today, under it instead, as approved (its due time, purpose and destination).

    `check_out` refuses for want of approval before it writes anything, so the same transaction goes on."""
    try:
        return operations.check_out(session, now, item=item, holder=holder, actor=actor, policy=policy,
                                    handling_ack=handling_ack, source=source, **asked)
    except ApprovalRequired:
        ready = ready_request(session, now, item, holder, policy)
        if ready is None:
            raise
    co = operations.check_out(session, now, item=item, holder=holder, actor=actor, due_at=ready.due_at,
                              purpose=ready.purpose, destination=ready.destination, reason=ready.reason,
                              policy=policy, handling_ack=handling_ack, approved=True, rule=rule_of(ready),
                              witness=asked.get("witness"), source=source)
    used = session.execute(update(CheckoutRequest).where(CheckoutRequest.id == ready.id,
                                                         CheckoutRequest.status == RequestStatus.approved,
                                                         CheckoutRequest.checkout_id.is_(None))
                           .values(checkout_id=co.id).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        raise RequestClosed(RequestStatus.cancelled)
    session.refresh(ready)
    audit.record(session, now, "advance_approval_used", actor=actor, item=item, checkout=co, subject=holder,
                 source=source, request=ready.id)
    return co


# --- the clock ---------------------------------------------------------------------------------------------------


def expire(session: Session, now: datetime) -> list[CheckoutRequest]:
    """Mark expired what waited past the end of its day, and approvals in advance not used on theirs; each once,
    whoever runs the job (a conditional UPDATE), with an event and the requester told."""
    unused = and_(CheckoutRequest.status == RequestStatus.approved, CheckoutRequest.checkout_id.is_(None),
                  CheckoutRequest.for_date.is_not(None))
    due = list(session.scalars(select(CheckoutRequest).options(joinedload(CheckoutRequest.item))
                               .where(or_(CheckoutRequest.status == RequestStatus.pending, unused),
                                      CheckoutRequest.expires_at <= now).order_by(CheckoutRequest.id)))
    expired = []
    for req in due:
        done = session.execute(update(CheckoutRequest).where(CheckoutRequest.id == req.id,
                                                             CheckoutRequest.status == req.status,
                                                             CheckoutRequest.checkout_id.is_(None))
                               .values(status=RequestStatus.expired).execution_options(synchronize_session=False))
        if done.rowcount != 1:
            continue
        was = req.status
        session.refresh(req)
        audit.record(session, now, "checkout_request_expired", item=req.item, subject=req.requester,
                     request=req.id, was=was.value, expires_at=req.expires_at.isoformat())
        request_settled.send(session, now=now, request=req)
        expired.append(req)
    return expired


# --- lists -------------------------------------------------------------------------------------------------------


def _current_positions():
    """Each pending request's first undecided step (a correlated subquery): whose turn it is, in SQL."""
    inner = aliased(ApprovalStep)
    return (select(func.min(inner.position)).where(inner.request_id == ApprovalStep.request_id,
                                                   inner.decision.is_(None)).scalar_subquery())


def _nobody_to_decide():
    """The current step has no one to decide it in their own name (`approvers` finds nobody): a manager step of a
    department without an active manager but the requester, or a named approver who is gone. Such a step is the
    desk's, as its page and e-mail say."""
    decider = aliased(User)
    able = and_(decider.active.is_(True), decider.id != CheckoutRequest.requester_id)
    no_manager = ~select(decider.id).where(department_managers.c.department_id == ApprovalStep.department_id,
                                           decider.id == department_managers.c.user_id, able).exists()
    no_one_named = ~select(decider.id).where(decider.id == ApprovalStep.approver_id, able).exists()
    return or_(and_(ApprovalStep.who == MANAGER, no_manager), and_(ApprovalStep.who == NAMED, no_one_named))


@functools.cache
def _waiting_stmt(privileged: bool):
    """Pending requests, not expired, whose current step the actor (`:actor_id`) may decide in their own name or as
    a deputy (and, for the desk, the desk's own steps and those nobody else can decide), at `:now`. Built once per
    kind of reader and reused: it is read for every page's header, and building it cost more than running it."""
    actor_id = bindparam("actor_id", type_=Integer)
    now = bindparam("now", type_=CheckoutRequest.expires_at.type)
    me_or_absent = select(User.id).where(or_(User.id == actor_id, User.deputy_id == actor_id))
    managed = select(department_managers.c.department_id).where(department_managers.c.user_id.in_(me_or_absent))
    mine = [and_(ApprovalStep.who == NAMED, ApprovalStep.approver_id.in_(me_or_absent)),
            and_(ApprovalStep.who == MANAGER, ApprovalStep.department_id.in_(managed))]
    if privileged:
        mine += [ApprovalStep.who == DESK, _nobody_to_decide()]
    return (select(CheckoutRequest).join(ApprovalStep, ApprovalStep.request_id == CheckoutRequest.id)
            .where(_status_is(RequestStatus.pending), CheckoutRequest.requester_id != actor_id,
                   or_(CheckoutRequest.expires_at.is_(None), CheckoutRequest.expires_at > now),
                   ApprovalStep.position == _current_positions(), or_(*mine)))


@functools.cache
def _waiting_list_stmt(privileged: bool, limit: int):
    return (_waiting_stmt(privileged).options(joinedload(CheckoutRequest.item), joinedload(CheckoutRequest.requester))
            .order_by(CheckoutRequest.requested_at, CheckoutRequest.id).limit(limit))


@functools.cache
def _waiting_count_stmt(privileged: bool):
    return select(func.count()).select_from(_waiting_stmt(privileged).subquery())


def waiting_count_column(privileged: bool):
    """`waiting_count` as a column of another read (the scan's, `views.scan`), with `:actor_id` and `:now` bound:
    the page that reads everything it shows in one statement reads the header's count with it."""
    return _waiting_count_stmt(privileged).scalar_subquery().correlate(None)


def waiting_for(session: Session, actor: User, now: datetime, limit: int = 100) -> list[CheckoutRequest]:
    """What waits for `actor`'s decision now, oldest first."""
    return list(session.scalars(_waiting_list_stmt(actor.privileged, limit),
                                {"actor_id": actor.id, "now": now}).unique())


def waiting_count(session: Session, actor: User, now: datetime) -> int:
    """How many wait for `actor` (the link in the navigation), in one statement: a number, so it runs on the
    session's connection (its transaction, what it has flushed) without the ORM's machinery for making objects."""
    return session.connection().execute(_waiting_count_stmt(actor.privileged),
                                        {"actor_id": actor.id, "now": now}).scalar() or 0
