"""Accessibility in a real browser: axe-core (the npm package, tests/a11y) run on every page, in both languages.

Every page a person can open (signed out, as staff, as the security desk, as an admin) is loaded with data on it
(an overdue item, a bag, a finder's message, an incident, a label job), axe-core is injected, and no violation of
impact "serious" or "critical" may remain. Apart from axe: the keyboard focus is visible on every kind of control,
the board starts with a skip link to the overdue list, and every badge colour pair meets 4.5:1.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.browser import ENGLISH, PHONE, TIMEOUT_MS, _now
from tests.helpers import PASSWORD
from tracker.custody import approvals, found
from tracker.desk import flags
from tracker.desk.sweep import sweep
from tracker.models import DataClass, Flag, Item, Kind, LabelToken, User

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
DESK = {"viewport": {"width": 1440, "height": 900}}
JAPANESE = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}
BLOCKING = ("serious", "critical")


def _axe_script() -> str:
    if not AXE.exists():
        message = f"{AXE} is missing: run `npm ci --prefix tests/a11y` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def world(live_server):
    """One of everything a page can show, so that axe sees filled pages rather than empty states."""
    s = live_server
    admin = s.make_user("admin")
    desk = s.make_user("security")
    staff = s.make_user("staff")
    late = s.make_item(Kind.laptop, name="Overdue laptop", data_class=DataClass.sensitive)
    bag = s.make_item(Kind.bag, name="Sales bag")
    s.make_item(Kind.usb, name="Stick in the bag", bag=bag)
    spare = s.make_item(Kind.folder, name="Spare folder")
    lost = s.make_item(Kind.usb, name="Lost stick", data_class=DataClass.personal)
    giver = s.make_user("staff")
    offered = s.make_item(Kind.usb, name="Offered stick", data_class=DataClass.personal)
    folder = s.make_item(Kind.folder, name="Forms to approve", data_class=DataClass.personal)
    now = _now()
    s.check_out(staff, bag)
    s.check_out(giver, offered)
    spare_token = s.token(spare)
    with s.session() as session:
        from tracker.custody import operations as custody
        from tracker.notify import hooks

        webhook = hooks.create(session, now, name="Chat bot", url="https://hooks.example.com/in",
                               events=["checkout", "flagged"], actor=None)  # the check-outs below queue deliveries
        for item in (late, lost):
            custody.check_out(session, now - timedelta(hours=6), item=item, holder=staff, actor=staff,
                              due_at=now - timedelta(hours=1), reason="Client visit")
        session.commit()
        sweep(session, now, s.policy())
        session.commit()
        flag = session.scalars(select(Flag).where(Flag.item_id == lost.id)).one()
        incident = flags.mark_lost(session, now, flag, session.merge(desk), "Left on a train")
        late_flag = session.scalars(select(Flag).where(Flag.item_id == late.id)).one()
        late_flag.escalation_level, late_flag.escalated_at = 2, now  # the board's and flag page's escalation badge
        label = session.scalars(select(LabelToken).where(LabelToken.token == spare_token)).one()
        found.leave_message(session, now, label, "Found it in the lobby", "", "10.0.0.9")
        from tracker.custody import handover

        offer = handover.offer(session, now, item=session.get(Item, offered.id), to=session.merge(staff),
                               actor=session.merge(giver))
        # A long take-out waiting for the desk's approval: the request's page and the approvals lists.
        request = approvals.request_checkout(session, now, item=session.get(Item, folder.id),
                                             holder=session.get(User, staff.id), due_at=now + timedelta(days=2),
                                             purpose="Audit", destination="Nagoya", reason="Two-day audit",
                                             policy=replace(s.policy(), approval_required=True), handling_ack=True)
        # A second office with a storage place, one retired place at the main office (the sites page's states).
        from tracker.items import sites

        osaka = sites.create_site(session, now, name="Osaka", timezone="Asia/Tokyo", day_end="18:30",
                                  late_sweeps="21:00", desk_emails="desk-osaka@example.com", actor=None)
        sites.create_place(session, now, site_id=osaka.id, name="Safe 1", actor=None)
        old = sites.create_place(session, now, site_id="", name="Old cabinet", actor=None)
        sites.retire_place(session, now, old, actor=None)
        # Counts due and custody confirmations: the late laptop's rule counts and asks; it is overdue for a count,
        # and its holder did not confirm when asked (the desk's list shows both; the holder's scan page the button).
        from tracker.custody import rules

        rules.save(session, now, replace(rules.default("laptop", "sensitive", s.policy()), count_every_months=6,
                                         confirm_every_days=1), actor=session.get(User, admin.id))
        session.get(Item, late.id).last_counted_at = now - timedelta(days=400)
        late_co = session.get(Flag, late_flag.id).checkout
        late_co.custody_prompted_at, late_co.custody_escalated_at = now - timedelta(days=2), now - timedelta(days=1)
        session.commit()
        stocktakes = _stocktakes(s, session, now, session.merge(desk), [late.id, spare.id, folder.id])
        ids = {"flag": late_flag.id, "incident": incident.id, "offer": offer.id, "request": request.id,
               "webhook": webhook.id, "site": osaka.id, **stocktakes}
    return {"admin": admin, "desk": desk, "staff": staff, "late": late, "bag": bag, "spare": spare,
            "scan": f"/S/{spare_token}", "held_scan": f"/S/{s.token(late)}", "lost": lost, "offered": offered, **ids}


def _stocktakes(s, session, now, desk: User, item_ids: list[int]) -> dict[str, int]:
    """A closed stock-take (its report made in English) with a missing item's flag, and an open one with a count."""
    from tracker.stocktake import report, sessions

    closed = sessions.open_stocktake(session, now, desk, "all")
    sessions.count(session, now, closed, session.get(Item, item_ids[1]), desk, "scanner")
    with s.app.test_request_context(headers={"Accept-Language": "en"}):
        sessions.close(session, now, closed, desk, report.render)
    opened = sessions.open_stocktake(session, now, desk, "all")
    sessions.count(session, now, opened, session.get(Item, item_ids[1]), desk, "typed")
    session.commit()
    missing = session.scalars(select(Flag).where(Flag.stocktake_id == closed.id)).first()
    return {"stocktake_open": opened.id, "stocktake_closed": closed.id, "missing_flag": missing.id}


def _pages(w) -> dict[str, list[str]]:
    """The pages each person opens, by who opens them."""
    return {
        "anonymous": ["/login", w["scan"]],
        "staff": ["/", "/my", "/find", w["scan"], f"/items/{w['bag'].asset_tag}", "/account", "/password",
                  f"/handovers/{w['offer']}", f"/items/{w['offered'].asset_tag}", f"/requests/{w['request']}",
                  "/approvals", "/account/tokens", w["held_scan"], f"/items/{w['late'].asset_tag}/handover",
                  "/still-have-it"],
        "desk": ["/desk/", "/desk/?wall=1", "/desk/scanner", f"/desk/flags/{w['flag']}", "/desk/incidents/",
                 f"/desk/incidents/{w['incident']}", "/desk/records/", f"/desk/records/items/{w['late'].asset_tag}",
                 f"/items/{w['late'].asset_tag}", f"/items/{w['late'].asset_tag}/handover",
                 f"/items/{w['offered'].asset_tag}", f"/requests/{w['request']}",
                 "/approvals", "/admin/sites/", "/desk/counts-due/", "/stocktakes/",
                 f"/stocktakes/{w['stocktake_open']}", f"/stocktakes/{w['stocktake_closed']}",
                 f"/desk/flags/{w['missing_flag']}"],
        "admin": ["/admin/items/", "/admin/items/new", f"/admin/items/{w['spare'].asset_tag}/edit",
                  "/admin/items/import", "/admin/labels/", f"/admin/labels/print?id={w['spare'].id}",
                  "/admin/users/", "/admin/users/new", f"/admin/users/{w['staff'].id}/edit",
                  f"/admin/users/{w['staff'].id}/tokens",
                  "/admin/notifications/", "/admin/webhooks/", "/admin/webhooks/new",
                  f"/admin/webhooks/{w['webhook']}/edit", "/admin/rules/", "/admin/rules/usb/my_number",
                  "/admin/sites/", "/admin/sites/new", f"/admin/sites/{w['site']}/edit", "/no-such-page"],
    }


def sign_in(page, email: str) -> None:
    """Sign in through the form in any language and on any screen (no touch on a desk)."""
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert not page.url.endswith("/login")


def _run_axe(page) -> list[dict]:
    page.add_script_tag(content=_axe_script())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations'],
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    return [v for v in result if v["impact"] in BLOCKING]


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("who", ["anonymous", "staff", "desk", "admin"])
def test_no_serious_or_critical_axe_violation_on_any_page(browser, live_server, world, who, language):
    _axe_script()
    # Staff and finders use phones; the desk and admins sit at desks (each page is also checked at the other
    # size by the layout tests: the phone pages fit 390 px, the board 1440 and 1920).
    for size in ((PHONE,) if who in ("anonymous", "staff") else (DESK,)):
        options = {**size, **(ENGLISH if language == "en" else JAPANESE)}
        context = browser.new_context(base_url=live_server.url, bypass_csp=True, **options)  # to inject axe
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        try:
            if who != "anonymous":
                sign_in(page, world[who].email)  # no language of their own: the browser's
            problems = {}
            for path in _pages(world)[who]:
                page.goto(path)
                assert page.locator("html").get_attribute("lang") == language, path
                found = _run_axe(page)
                if found:
                    problems[path] = found
            assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
        finally:
            context.close()


def _contrast(fg: tuple[float, ...], bg: tuple[float, ...]) -> float:
    def lum(rgb):
        def ch(c):
            c = c / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = (ch(c) for c in rgb[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _rgb(css: str) -> tuple[float, ...]:
    inside = css[css.index("(") + 1:css.index(")")]
    return tuple(float(v) for v in inside.replace("/", ",").replace(" ", ",").split(",") if v)


@pytest.fixture
def board(browser, live_server, world):
    """The desk's board at desk size, in English, signed in."""
    context = browser.new_context(base_url=live_server.url, **DESK, **ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, world["desk"].email)
    page.goto("/desk/")
    yield page
    context.close()


def test_every_badge_meets_4_5_to_1_and_focus_is_visible(board):
    page = board
    badges = page.locator(".badge")
    assert badges.count() >= 2  # overdue and sensitive, at least
    for i in range(badges.count()):
        colour, background, cls = badges.nth(i).evaluate(
            "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor, el.className]")
        ratio = _contrast(_rgb(colour), _rgb(background))
        assert ratio >= 4.5, f"{cls}: {colour} on {background} is {ratio:.2f}:1"
    # Every control shows where the keyboard is: a link, a button, a field.
    for selector in ("main a", "main button", "input, select, textarea"):
        page.locator(selector).first.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        outline = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return [s.outlineStyle, parseFloat(s.outlineWidth), s.boxShadow]; }""")
        assert (outline[0] != "none" and outline[1] >= 2) or outline[2] != "none", (selector, outline)


def test_the_board_starts_with_a_skip_link_to_the_overdue_list(board, world):
    page = board
    page.keyboard.press("Tab")
    focused = page.evaluate("() => [document.activeElement.textContent.trim(), document.activeElement.hash]")
    assert focused[0] == "Skip to the overdue list", focused
    box = page.locator(":focus").bounding_box()
    assert box and box["y"] >= 0 and box["height"] >= 20  # shown when focused, not left off-screen
    page.keyboard.press("Enter")
    assert world["late"].asset_tag in page.locator(focused[1]).inner_text()
    assert page.evaluate("() => document.activeElement.id") == focused[1][1:]
