"""Admin pages through the test client: register, list, edit, retire items; escaping; limits; users."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from tests.helpers import NOW, PASSWORD, count, csrf_from, later, post, reread, sign_in
from tracker.custody import operations as custody
from tracker.models import Checkout, DataClass, Event, Item, Kind, LabelToken, Role, User

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
RAW_MARKERS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


def payload(field: str) -> str:
    """A field-specific hostile value, so each field can be found on the page by itself."""
    return f"{field}{SCRIPT}{IMG}"


def html(resp) -> str:
    return resp.get_data(as_text=True)


def new_item(client, **fields):
    page = client.get("/admin/items/new")
    assert page.status_code == 200
    data = {"kind": "laptop", "data_class": "none", "name": "ThinkPad"}
    data.update(fields)
    data["csrf_token"] = csrf_from(html(page))
    return client.post("/admin/items/new", data=data)


# --- register -----------------------------------------------------------------------------------------------------


def test_register_item_gets_automatic_tag_label_and_event(admin_client, session, admin, make_department):
    sales = make_department("営業部")
    resp = new_item(admin_client, name="営業用ノートPC", kind="laptop", data_class="personal", serial="SN-1",
                    department=str(sales.id), people_count="120", encrypted="y", notes="鍵付きロッカー")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/items/LT-0001")
    page = admin_client.get(resp.headers["Location"])
    text = html(page)
    assert "LT-0001 is registered." in text
    assert "営業用ノートPC" in text and "営業部" in text and "SN-1" in text

    reread(session)
    item = session.scalar(select(Item).where(Item.asset_tag == "LT-0001"))
    assert item is not None
    assert (item.kind, item.data_class, item.encrypted, item.people_count) == (Kind.laptop, DataClass.personal,
                                                                             True, 120)
    assert item.notes == "鍵付きロッカー"
    label = session.scalar(select(LabelToken).where(LabelToken.item_id == item.id))
    assert label is not None and label.replaced_at is None and len(label.token) >= 26
    created = session.scalars(select(Event).where(Event.action == "item_created", Event.item_id == item.id)).all()
    assert len(created) == 1 and created[0].actor_id == admin.id

    # The next laptop gets the next number; a USB drive gets its own series.
    assert new_item(admin_client, name="second").headers["Location"].endswith("/items/LT-0002")
    assert new_item(admin_client, name="stick", kind="usb").headers["Location"].endswith("/items/USB-0001")


def test_register_with_taken_tag_is_refused(admin_client, session, make_item):
    make_item(Kind.usb, asset_tag="USB-7")
    before = count(session, Item)
    resp = new_item(admin_client, asset_tag="usb-7", kind="usb", name="copy")
    assert resp.status_code == 400
    assert "The asset tag USB-7 is already in use." in html(resp)
    assert count(session, Item) == before


def test_staff_cannot_open_admin_pages(client, make_user):
    staff = make_user(language="en")
    sign_in(client, staff.email)
    assert client.get("/admin/items/").status_code == 403
    assert client.get("/admin/items/new").status_code == 403
    assert client.get("/admin/users/").status_code == 403


# --- list, search, filters, paging ----------------------------------------------------------------------------------


def rows_of(resp) -> list[str]:
    """Asset tags listed in the items table, in order."""
    return re.findall(r'<a class="tag" href="/items/[^"]+">([^<]+)</a>', html(resp))


@pytest.fixture
def catalogue(session, make_item, make_user):
    holder = make_user(name="Holder Hanako")
    made = {
        "laptop_sales": make_item(Kind.laptop, name="Sales laptop", department="営業部", data_class=DataClass.personal,
                                  serial="PF-ABC-1"),
        "laptop_hr": make_item(Kind.laptop, name="HR laptop", department="人事部", data_class=DataClass.sensitive),
        "usb_sales": make_item(Kind.usb, name="Blue stick", department="営業部", data_class=DataClass.none),
        "folder": make_item(Kind.folder, name="顧客書類", department="人事部", data_class=DataClass.sensitive),
        "bag": make_item(Kind.bag, name="Black bag", data_class=DataClass.none),
        "retired": make_item(Kind.other, name="Old disk", department="開発部", data_class=DataClass.personal),
    }
    custody.check_out(session, NOW, item=made["laptop_hr"], holder=holder, actor=holder, due_at=later(hours=9))
    from tracker.items.register import retire

    retire(session, NOW, made["retired"], holder)
    session.commit()
    return {k: v.asset_tag for k, v in made.items()}


@pytest.mark.postgres  # case-insensitive LIKE with escapes and Japanese text
def test_list_search_and_filters(admin_client, catalogue):
    c = catalogue
    everything_in_service = {c["laptop_sales"], c["laptop_hr"], c["usb_sales"], c["folder"], c["bag"]}
    assert set(rows_of(admin_client.get("/admin/items/"))) == everything_in_service

    # search: name, tag, serial, department; case-insensitive
    assert rows_of(admin_client.get("/admin/items/?q=blue")) == [c["usb_sales"]]
    assert rows_of(admin_client.get("/admin/items/", query_string={"q": c["folder"].lower()})) == [c["folder"]]
    assert rows_of(admin_client.get("/admin/items/?q=pf-abc")) == [c["laptop_sales"]]
    assert set(rows_of(admin_client.get("/admin/items/", query_string={"q": "営業"}))) == {c["laptop_sales"],
                                                                                         c["usb_sales"]}
    nothing = admin_client.get("/admin/items/?q=nosuchthing")
    assert rows_of(nothing) == [] and "No items match." in html(nothing)
    # LIKE wildcards are taken literally
    assert rows_of(admin_client.get("/admin/items/?q=%25")) == []

    # kind
    assert set(rows_of(admin_client.get("/admin/items/?kind=laptop"))) == {c["laptop_sales"], c["laptop_hr"]}
    assert rows_of(admin_client.get("/admin/items/?kind=bag")) == [c["bag"]]
    # status
    out_page = admin_client.get("/admin/items/?status=out")
    assert rows_of(out_page) == [c["laptop_hr"]]
    assert "Holder Hanako" in html(out_page)
    assert set(rows_of(admin_client.get("/admin/items/?status=in"))) == everything_in_service - {c["laptop_hr"]}
    retired_page = admin_client.get("/admin/items/?status=retired")
    assert rows_of(retired_page) == [c["retired"]] and "Retired" in html(retired_page)
    assert set(rows_of(admin_client.get("/admin/items/?status=all"))) == everything_in_service | {c["retired"]}
    # personal-data class
    assert set(rows_of(admin_client.get("/admin/items/?data_class=sensitive"))) == {c["laptop_hr"], c["folder"]}
    assert set(rows_of(admin_client.get("/admin/items/?data_class=none"))) == {c["usb_sales"], c["bag"]}
    # department, and the department choices list every department in use
    dept = admin_client.get("/admin/items/", query_string={"department": "人事部"})
    assert set(rows_of(dept)) == {c["laptop_hr"], c["folder"]}
    for d in ("営業部", "人事部", "開発部"):
        assert f'<option value="{d}"' in html(dept)
    # filters combine
    assert rows_of(admin_client.get("/admin/items/", query_string={"kind": "laptop", "department": "営業部"})) == [
        c["laptop_sales"]]
    assert rows_of(admin_client.get("/admin/items/", query_string={"kind": "usb", "status": "out"})) == []


@pytest.mark.postgres  # counting and paging in SQL
def test_list_pages_by_fifty(admin_client, make_item):
    for n in range(1, 56):
        make_item(Kind.usb, name=f"stick {n:02d}")
    first = admin_client.get("/admin/items/")
    tags = rows_of(first)
    assert len(tags) == 50
    assert tags == [f"USB-{n:04d}" for n in range(1, 51)]
    assert "Page 1 of 2" in html(first) and "55 in all" in html(first)
    assert "page=2" in html(first)
    second = admin_client.get("/admin/items/?page=2")
    assert rows_of(second) == [f"USB-{n:04d}" for n in range(51, 56)]
    assert "Page 2 of 2" in html(second)
    # filters are kept when paging
    filtered = admin_client.get("/admin/items/?kind=usb")
    assert "kind=usb" in re.search(r'<nav class="pager".*?</nav>', html(filtered), re.S).group(0)
    # a page past the end shows the last page
    assert rows_of(admin_client.get("/admin/items/?page=99")) == rows_of(second)


# --- edit and retire ----------------------------------------------------------------------------------------------


def test_edit_item(admin_client, session, make_item, make_department):
    item = make_item(Kind.laptop, name="Before", department="営業部")
    dev = make_department("開発部")
    page = admin_client.get(f"/admin/items/{item.asset_tag}/edit")
    assert page.status_code == 200 and 'value="Before"' in html(page)
    resp = admin_client.post(f"/admin/items/{item.asset_tag}/edit", data={
        "csrf_token": csrf_from(html(page)), "asset_tag": item.asset_tag, "kind": "laptop", "name": "After",
        "department": str(dev.id), "data_class": "sensitive", "people_count": "30"})
    assert resp.status_code == 302
    shown = html(admin_client.get(resp.headers["Location"]))
    assert f"{item.asset_tag} is saved." in shown and "After" in shown and "開発部" in shown
    reread(session)
    fresh = session.get(Item, item.id)
    assert (fresh.name, fresh.department, fresh.data_class, fresh.people_count) == ("After", "開発部",
                                                                                   DataClass.sensitive, 30)
    assert session.scalar(select(func.count(Event.id)).where(Event.action == "item_updated",
                                                               Event.item_id == item.id)) == 1


def test_edit_unknown_item_is_404(admin_client):
    assert admin_client.get("/admin/items/NOPE-1/edit").status_code == 404


def test_retire_item(admin_client, session, make_item):
    item = make_item()
    resp = post(admin_client, f"/admin/items/{item.asset_tag}/retire", page=f"/items/{item.asset_tag}")
    assert resp.status_code == 303
    shown = html(admin_client.get(resp.headers["Location"]))
    assert f"{item.asset_tag} is retired." in shown
    assert "This item is retired and cannot be checked out." in shown
    reread(session)
    assert session.get(Item, item.id).retired_at is not None
    assert item.asset_tag not in rows_of(admin_client.get("/admin/items/"))
    assert item.asset_tag in rows_of(admin_client.get("/admin/items/?status=retired"))


def test_retire_of_item_that_is_out_is_refused(admin_client, session, make_item, make_user):
    holder = make_user(name="Taro")
    item = make_item()
    custody.check_out(session, NOW, item=item, holder=holder, actor=holder, due_at=later(hours=9))
    session.commit()
    events_before = session.scalar(select(func.count(Event.id)).where(Event.action != "refused"))
    # The item page offers no retire button while the item is out ...
    page = html(admin_client.get(f"/items/{item.asset_tag}"))
    assert f"/admin/items/{item.asset_tag}/retire" not in page
    # ... and a forged post is refused with a message.
    resp = post(admin_client, f"/admin/items/{item.asset_tag}/retire")
    shown = html(admin_client.get(resp.headers["Location"]))
    assert f"{item.asset_tag} is out; it must be returned before it can be retired." in shown
    reread(session)
    fresh = session.get(Item, item.id)
    assert fresh.retired_at is None
    assert custody.open_checkout(session, fresh) is not None
    assert session.scalar(select(func.count(Event.id)).where(Event.action != "refused")) == events_before


# --- escaping -----------------------------------------------------------------------------------------------------


def assert_escaped(text: str, *values: str) -> None:
    for raw in RAW_MARKERS:
        assert raw not in text, f"raw markup {raw!r} reached the page"
    for value in values:
        assert str(escape(value)) in text, f"escaped {value!r} not shown"


def test_markup_in_every_text_field_is_escaped_everywhere(app, admin_client, session, make_user, make_department):
    holder = make_user(name=payload("username"), language="en")
    dept = make_department(payload("department"))
    created = new_item(admin_client, name=payload("name"), serial=payload("serial"),
                       department=str(dept.id), notes=payload("notes"), data_class="personal")
    assert created.status_code == 302, html(created)
    tag = created.headers["Location"].rsplit("/", 1)[1]

    # Check the item out to the holder with hostile purpose and destination, through the form.
    item_page = html(admin_client.get(f"/items/{tag}"))
    resp = admin_client.post(f"/items/{tag}/checkout", data={
        "csrf_token": csrf_from(item_page), "holder": holder.email, "purpose": payload("purpose"),
        "destination": payload("destination"), "rules_ack": "1"}, follow_redirects=True)
    assert resp.status_code == 200
    reread(session)
    co = session.scalar(select(Checkout).where(Checkout.returned_at.is_(None)))
    assert co is not None and co.holder_id == holder.id, html(resp)
    assert co.purpose == payload("purpose") and co.destination == payload("destination")
    # the flash after check-out names the holder
    assert_escaped(html(resp), payload("username"))

    # item page: name, department, serial, holder, destination, purpose
    assert_escaped(html(admin_client.get(f"/items/{tag}")), payload("name"), payload("department"),
                   payload("serial"), payload("username"), payload("destination"), payload("purpose"))
    # edit form: every item field including the notes
    assert_escaped(html(admin_client.get(f"/admin/items/{tag}/edit")), payload("name"), payload("department"),
                   payload("serial"), payload("notes"))
    # item list: name, department (also among the filter choices), holder
    assert_escaped(html(admin_client.get("/admin/items/")), payload("name"), payload("department"),
                   payload("username"))
    # the list with the hostile value typed into the search box
    searched = html(admin_client.get("/admin/items/", query_string={"q": SCRIPT}))
    assert_escaped(searched, SCRIPT)
    # desk board: holder and destination
    assert_escaped(html(admin_client.get("/desk/")), payload("username"), payload("destination"))
    # users list and the user's own edit page
    assert_escaped(html(admin_client.get("/admin/users/")), payload("username"))
    assert_escaped(html(admin_client.get(f"/admin/users/{holder.id}/edit")), payload("username"))

    # the holder's own pages: my items shows the item name, the header shows their own name
    other = app.test_client()
    assert sign_in(other, holder.email).status_code == 302
    assert_escaped(html(other.get("/my")), payload("name"), payload("username"))
    assert_escaped(html(other.get(f"/items/{tag}")), payload("name"), payload("destination"), payload("purpose"))


def test_markup_in_csv_import_preview_is_escaped(admin_client):
    from io import BytesIO

    page = admin_client.get("/admin/items/import")
    text = f"kind,name,department\nlaptop,\"{payload('name').replace(chr(34), chr(34) * 2)}\",\n"
    resp = admin_client.post("/admin/items/import", data={
        "csrf_token": csrf_from(html(page)), "file": (BytesIO(text.encode()), "items.csv")},
        content_type="multipart/form-data")
    assert resp.status_code == 200
    assert_escaped(html(resp), payload("name"))


# --- oversized fields ---------------------------------------------------------------------------------------------


@pytest.mark.postgres  # PostgreSQL enforces the column lengths; SQLite does not
@pytest.mark.parametrize(("field", "size", "limit"), [("name", 201, 200), ("serial", 101, 100),
                                                      ("notes", 2001, 2000)])
def test_oversized_item_field_is_refused(admin_client, session, field, size, limit):
    before = count(session, Item)
    resp = new_item(admin_client, **{field: "x" * size})
    assert resp.status_code == 400
    page = html(resp)
    assert re.search(rf'<p class="error">[^<]*{limit}[^<]*</p>', page), "no visible message naming the limit"
    assert count(session, Item) == before
    # exactly at the limit is accepted
    ok = new_item(admin_client, **{field: "y" * limit})
    assert ok.status_code == 302
    assert count(session, Item) == before + 1


def test_oversized_field_on_edit_changes_nothing(admin_client, session, make_item):
    item = make_item(name="Keep me")
    page = admin_client.get(f"/admin/items/{item.asset_tag}/edit")
    resp = admin_client.post(f"/admin/items/{item.asset_tag}/edit", data={
        "csrf_token": csrf_from(html(page)), "kind": "laptop", "name": "z" * 201, "data_class": "none"})
    assert resp.status_code == 400
    assert re.search(r'<p class="error">[^<]*200[^<]*</p>', html(resp))
    reread(session)
    assert session.get(Item, item.id).name == "Keep me"


@pytest.mark.parametrize("field", ["purpose", "destination"])
def test_oversized_purpose_is_refused_with_message(admin_client, session, make_item, field):
    item = make_item()
    page = html(admin_client.get(f"/items/{item.asset_tag}"))
    resp = admin_client.post(f"/items/{item.asset_tag}/checkout", data={
        "csrf_token": csrf_from(page), field: "p" * 201}, follow_redirects=True)
    shown = html(resp)
    assert re.search(r'class="flash flash-error"[^>]*>[^<]*200[^<]*</p>', shown), "no visible message"
    reread(session)
    assert session.scalar(select(func.count(Checkout.id))) == 0


# --- users --------------------------------------------------------------------------------------------------------


def one_time_password(resp) -> str:
    match = re.search(r'<p class="secret">([^<]+)</p>', html(resp))
    assert match, "no one-time password on the page"
    return match.group(1).strip()


def new_user(client, **fields):
    page = client.get("/admin/users/new")
    data = {"email": "new.person@example.com", "name": "New Person", "role": "staff", "language": "en", "phone": ""}
    data.update(fields)
    data["csrf_token"] = csrf_from(html(page))
    return client.post("/admin/users/new", data=data)


def test_create_user_shows_one_time_password_once(app, admin_client, session):
    resp = new_user(admin_client, email="Hanako@Example.com", name="山田 花子", role="security", phone="090-1")
    assert resp.status_code == 200
    password = one_time_password(resp)
    assert len(password) >= 10
    assert "hanako@example.com" in html(resp)
    reread(session)
    user = session.scalar(select(User).where(User.email == "hanako@example.com"))
    assert user is not None and user.role == Role.security and user.must_change_password
    assert session.scalar(select(func.count(Event.id)).where(Event.action == "user_created",
                                                               Event.subject_user_id == user.id)) == 1
    # shown once: not on the list nor on the user's page afterwards
    assert password not in html(admin_client.get("/admin/users/"))
    assert password not in html(admin_client.get(f"/admin/users/{user.id}/edit"))
    # the password works, and the user must change it first
    other = app.test_client()
    signed = sign_in(other, "hanako@example.com", password)
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/password")
    assert other.get("/desk/").headers["Location"].endswith("/password")


def test_create_user_with_taken_email_is_refused(admin_client, session, make_user):
    existing = make_user(email="taken@example.com")
    before = session.scalar(select(func.count(User.id)))
    resp = new_user(admin_client, email="TAKEN@example.com")
    assert resp.status_code == 400
    assert "A user with that e-mail address already exists." in html(resp)
    assert '<p class="secret">' not in html(resp)
    reread(session)
    assert session.scalar(select(func.count(User.id))) == before
    assert session.get(User, existing.id).name == existing.name


def test_edit_role_ends_the_users_sessions(app, admin_client, session, make_user):
    user = make_user(name="Role Change", language="en")
    theirs = app.test_client()
    sign_in(theirs, user.email)
    assert theirs.get("/my").status_code == 200
    page = admin_client.get(f"/admin/users/{user.id}/edit")
    assert page.status_code == 200
    resp = admin_client.post(f"/admin/users/{user.id}/edit", data={
        "csrf_token": csrf_from(html(page)), "name": "Role Changed", "role": "security", "language": "en",
        "phone": "03-1234"})
    assert resp.status_code == 302
    assert "Role Changed is saved." in html(admin_client.get(resp.headers["Location"]))
    reread(session)
    fresh = session.get(User, user.id)
    assert (fresh.role, fresh.name, fresh.phone, fresh.email) == (Role.security, "Role Changed", "03-1234",
                                                                   user.email)
    # the old session is gone; signing in again gives the new role
    assert theirs.get("/my").status_code == 302
    sign_in(theirs, user.email)
    assert theirs.get("/desk/").status_code == 200


def test_admin_cannot_change_own_role(admin_client, session, admin):
    page = admin_client.get(f"/admin/users/{admin.id}/edit")
    resp = admin_client.post(f"/admin/users/{admin.id}/edit", data={
        "csrf_token": csrf_from(html(page)), "name": admin.name, "role": "staff", "language": "en"})
    assert resp.status_code == 400
    assert "You cannot change your own role." in html(resp)
    reread(session)
    assert session.get(User, admin.id).role == Role.admin


def test_disable_and_enable_user(app, admin_client, session, make_user):
    user = make_user(name="Tanaka", language="en")
    theirs = app.test_client()
    sign_in(theirs, user.email)
    assert theirs.get("/my").status_code == 200

    resp = post(admin_client, f"/admin/users/{user.id}/active", {"active": "0"}, page="/admin/users/")
    assert resp.status_code == 303
    listing = html(admin_client.get(resp.headers["Location"]))
    assert "Tanaka is disabled and signed out everywhere." in listing
    reread(session)
    assert session.get(User, user.id).active is False
    assert theirs.get("/my").status_code == 302  # signed out at once
    theirs.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"  # the sign-in page speaks the browser's language
    refused = sign_in(theirs, user.email)
    assert refused.status_code == 401
    assert "The e-mail address or password is wrong, or the account is disabled." in html(refused)

    resp = post(admin_client, f"/admin/users/{user.id}/active", {"active": "1"}, page="/admin/users/")
    assert "Tanaka can sign in again." in html(admin_client.get(resp.headers["Location"]))
    reread(session)
    assert session.get(User, user.id).active is True
    assert sign_in(theirs, user.email).status_code == 302
    assert theirs.get("/my").status_code == 200
    actions = session.scalars(select(Event.action).where(Event.subject_user_id == user.id,
                                                         Event.action.in_(["user_disabled", "user_enabled"]))
                              .order_by(Event.id)).all()
    assert actions == ["user_disabled", "user_enabled"]


def test_admin_cannot_disable_themself(admin_client, session, admin):
    listing = html(admin_client.get("/admin/users/"))
    assert f"/admin/users/{admin.id}/active" not in listing  # no button on one's own row
    resp = post(admin_client, f"/admin/users/{admin.id}/active", {"active": "0"}, page="/admin/users/")
    shown = html(admin_client.get(resp.headers["Location"]))
    assert "You cannot disable your own account." in shown
    reread(session)
    assert session.get(User, admin.id).active is True
    assert admin_client.get("/admin/users/").status_code == 200  # still signed in


def test_reset_password(app, admin_client, session, make_user):
    user = make_user(name="Forgetful", language="en")
    theirs = app.test_client()
    sign_in(theirs, user.email)
    resp = post(admin_client, f"/admin/users/{user.id}/reset-password", page=f"/admin/users/{user.id}/edit")
    assert resp.status_code == 200
    password = one_time_password(resp)
    assert password != PASSWORD
    assert theirs.get("/my").status_code == 302  # the old session ended
    assert sign_in(theirs, user.email, PASSWORD).status_code == 401
    signed = sign_in(theirs, user.email, password)
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/password")
    reread(session)
    assert session.get(User, user.id).must_change_password is True
