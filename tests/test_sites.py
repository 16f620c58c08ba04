"""Sites and storage places as records: the rules (checked values, unique names, a retired place takes no new
items, a place sets the item's site), the admin page (admins change, the desk reads, staff are refused), the item
and user forms that choose them, the CSV import that names them, and the records that show them."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import time

import pytest
from sqlalchemy import select

from tests.helpers import NOW, at_once, client_for, count, csrf_token, events, flashes, later, post, reread
from tracker.errors import InvalidInput
from tracker.items import csv_import, register, sites
from tracker.models import Item, Kind, Site, StoragePlace, User

pytestmark = pytest.mark.usefixtures("english")


def _site(session, name="Singapore", **kw):
    values = {"timezone": "Asia/Singapore", "day_end": "18:30", "late_sweeps": "", "desk_emails": ""} | kw
    return sites.create_site(session, NOW, name=name, actor=None, **values)


# --- rules: sites -------------------------------------------------------------------------------------------------


def test_a_site_is_stored_as_typed_cleanly_and_each_change_is_one_event(session, admin):
    site = _site(session, " Ｏｓａｋａ ", timezone="Asia/Tokyo", day_end="7:05", late_sweeps="23:30, 21:00,21:00",
                 desk_emails="desk-osaka@example.com; Lead@Example.com desk-osaka@example.com")
    session.commit()
    assert (site.name, site.timezone, site.day_end, site.late_sweeps, site.desk_emails) == (
        "Osaka", "Asia/Tokyo", time(7, 5), "21:00,23:30", "desk-osaka@example.com,Lead@Example.com")
    sites.update_site(session, NOW, site, name="Osaka", timezone="Asia/Tokyo", day_end="19:00", late_sweeps="21:00,23:30",
                      desk_emails=site.desk_emails, actor=admin)
    sites.update_site(session, NOW, site, name="Osaka", timezone="Asia/Tokyo", day_end="19:00", late_sweeps="21:00,23:30",
                      desk_emails=site.desk_emails, actor=admin)  # no change, no event
    session.commit()
    found = [(e.action, json.loads(e.data)) for e in events(session) if e.action.startswith("site_")]
    assert [a for a, _ in found] == ["site_created", "site_updated"]
    assert found[0][1]["day_end"] == "07:05"
    assert (found[1][1]["before"], found[1][1]["after"]) == ({"day_end": "07:05"}, {"day_end": "19:00"})


@pytest.mark.parametrize(("field", "bad", "message"), [
    ("timezone", "Mars/Olympus", "is not a time zone"),
    ("timezone", "../../etc/passwd", "is not a time zone"),
    ("timezone", "", "Time zone is required"),
    ("day_end", "25:00", "Day end must be a time such as 19:00"),
    ("day_end", "7pm", "Day end must be a time such as 19:00"),
    ("late_sweeps", "21:00,24:30", "Later sweeps must be a time"),
    ("desk_emails", "desk@example.com, not-an-address", "not-an-address is not an e-mail address"),
    ("name", "   ", "Name is required"),
])
def test_a_bad_value_is_refused_naming_its_field_and_changes_nothing(session, field, bad, message):
    with pytest.raises(InvalidInput, match=message) as refused:
        _site(session, **{field: bad})
    assert refused.value.about == field
    session.rollback()
    site = _site(session, "Tokyo")
    session.commit()
    with pytest.raises(InvalidInput, match=message):
        sites.update_site(session, NOW, site, **({"name": "Tokyo", "timezone": "Asia/Singapore", "day_end": "20:00",
                                                  "late_sweeps": "", "desk_emails": ""} | {field: bad}), actor=None)
    session.rollback()
    reread(session)
    assert [(s.name, s.timezone, s.day_end) for s in session.scalars(select(Site))] == [
        ("Tokyo", "Asia/Singapore", time(18, 30))]
    assert [e.action for e in events(session)] == ["site_created"]


@pytest.mark.parametrize("typed", ["Osaka", " Osaka ", "Ｏｓａｋａ"])
def test_a_site_name_in_use_is_refused_in_any_spelling(session, typed):
    _site(session, "Osaka")
    session.commit()
    with pytest.raises(InvalidInput, match="already a site called Osaka"):
        _site(session, typed)


def test_the_main_office_clock_comes_from_the_settings(app, make_site):
    osaka = make_site("Osaka", timezone="Asia/Tokyo", day_end=time(18, 0), late_sweeps="22:00",
                      desk_emails="a@example.com,b@example.com")
    config = {"TIMEZONE": "Asia/Tokyo", "DAY_END": time(19, 0), "LATE_SWEEPS": [time(0, 0)], "DESK_EMAILS": "d@x.jp"}
    assert sites.clock_of(None, config) == sites.Clock(None, "Asia/Tokyo", time(19, 0), (time(0, 0),), ("d@x.jp",))
    assert sites.clock_of(osaka, config) == sites.Clock(osaka.id, "Asia/Tokyo", time(18, 0), (time(22, 0),),
                                                        ("a@example.com", "b@example.com"))


# --- rules: storage places --------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_place_names_are_unique_per_site_the_main_office_included(session, make_site):
    osaka = make_site("Osaka")
    sites.create_place(session, NOW, site_id="", name="Safe", actor=None)
    sites.create_place(session, NOW, site_id=str(osaka.id), name="Safe", actor=None)  # another site: fine
    session.commit()
    for site_id in ("", str(osaka.id)):
        with pytest.raises(InvalidInput, match="already a storage place called Safe at this site"):
            sites.create_place(session, NOW, site_id=site_id, name="Ｓａｆｅ", actor=None)
        session.rollback()
    cabinet = sites.create_place(session, NOW, site_id="", name="Cabinet", actor=None)
    with pytest.raises(InvalidInput, match="already a storage place called Safe"):
        sites.rename_place(session, NOW, cabinet, name="Safe", actor=None)
    with pytest.raises(InvalidInput, match="Choose a site from the list"):
        sites.create_place(session, NOW, site_id="999", name="Nowhere", actor=None)


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["add", "rename"])
def test_four_admins_naming_a_place_alike_at_once_make_one(app, session, make_place, how):
    """Each checks the name is free and writes; the unique index settles it and the others hear why."""
    ids = [make_place(f"Place {n}").id for n in range(4)] if how == "rename" else [None] * 4

    def add(place_id):
        def move(s) -> str:
            if place_id is None:
                sites.create_place(s, NOW, site_id="", name="Safe", actor=None)
            else:
                sites.rename_place(s, NOW, s.get(StoragePlace, place_id), name="Safe", actor=None)
            return "added"
        return move

    outcomes = [r.message if isinstance(r, InvalidInput) else r
                for r in at_once(app, *[add(i) for i in ids], refused=(InvalidInput,))]
    assert sorted(outcomes) == ["There is already a storage place called %(name)s at this site."] * 3 + ["added"]
    reread(session)
    assert session.scalars(select(StoragePlace.name).where(StoragePlace.name == "Safe")).all() == ["Safe"]
    assert len(events(session, "place_renamed" if how == "rename" else "place_created")) == 1


def test_rename_and_retire_are_events_and_a_retired_place_takes_no_new_items(session, admin, make_place, make_item):
    safe = make_place("Safe")
    kept = make_item(home_place_id=str(safe.id))
    sites.rename_place(session, NOW, safe, name="Safe 1", actor=admin)
    sites.retire_place(session, NOW, safe, actor=admin)
    session.commit()
    assert [e.action for e in events(session) if e.action.startswith("place_")] == ["place_renamed", "place_retired"]
    with pytest.raises(InvalidInput, match="Safe 1 is retired; it takes no new items"):
        register.create(session, NOW, register.ItemData(kind=Kind.usb, name="New", home_place_id=str(safe.id)), admin)
    session.rollback()
    # The item kept there may stay while it is edited.
    register.update(session, NOW, kept, register.validate({"kind": "laptop", "name": "Renamed",
                                                           "home_place_id": str(safe.id)}), admin)
    session.commit()
    assert (kept.name, kept.home_place_id) == ("Renamed", safe.id)
    with pytest.raises(InvalidInput, match="already retired"):
        sites.retire_place(session, NOW, safe, actor=admin)


def test_choosing_a_place_sets_the_items_site(session, admin, make_site, make_place, make_item):
    osaka = make_site("Osaka")
    osaka_safe, main_safe = make_place("Safe", osaka), make_place("Safe")
    item = register.create(session, NOW, register.validate({"kind": "usb", "name": "Stick", "site_id": "",
                                                            "home_place_id": str(osaka_safe.id)}), admin)
    assert (item.site_id, item.home_place_id) == (osaka.id, osaka_safe.id)
    # The site chosen alongside a place at another site gives way: the home place is at the item's site.
    register.update(session, NOW, item, register.validate({"kind": "usb", "name": "Stick", "site_id": str(osaka.id),
                                                           "home_place_id": str(main_safe.id)}), admin)
    assert (item.site_id, item.home_place_id) == (None, main_safe.id)
    register.update(session, NOW, item, register.validate({"kind": "usb", "name": "Stick",
                                                           "site_id": str(osaka.id)}), admin)
    assert (item.site_id, item.home_place_id) == (osaka.id, None)
    # By name (the API): the place is looked for at the named site.
    named = make_item(site="Osaka", storage_place="Safe")
    assert (named.site_id, named.home_place_id) == (osaka.id, osaka_safe.id)
    with pytest.raises(InvalidInput, match="no storage place called Vault at Osaka"):
        register.create(session, NOW, register.validate({"kind": "usb", "name": "x", "site": "Osaka",
                                                         "storage_place": "Vault"}), admin)
    with pytest.raises(InvalidInput, match="Choose a storage place from the list"):
        register.create(session, NOW, register.validate({"kind": "usb", "name": "x", "home_place_id": "999"}), admin)


@pytest.mark.postgres
def test_the_lists_put_the_main_office_first_and_the_filters_find_items_by_site_and_place(session, make_site,
                                                                                        make_place, make_item):
    from tracker import queries

    osaka, fukuoka = make_site("Osaka"), make_site("Fukuoka")
    o_safe, f_safe, m_safe = make_place("Safe", osaka), make_place("Safe", fukuoka), make_place("Z cabinet")
    in_osaka, in_main, bare = (make_item(home_place_id=str(o_safe.id)), make_item(home_place_id=str(m_safe.id)),
                               make_item(site_id=str(fukuoka.id)))
    assert [(p.site_id, p.name) for p in sites.places(session)] == [(None, "Z cabinet"), (fukuoka.id, "Safe"),
                                                                     (osaka.id, "Safe")]
    assert [r[0] for r in queries.place_choices(session)] == [m_safe.id, f_safe.id, o_safe.id]

    def tags(**filters):
        return set(session.scalars(queries.items_stmt(**filters)).all())

    assert tags(site="main") == {in_main}
    assert tags(site=str(fukuoka.id)) == {bare}
    assert tags(place=str(o_safe.id)) == {in_osaka}
    assert tags(site="nonsense", place="x") == {in_osaka, in_main, bare}  # unknown values filter nothing


# --- the admin page ---------------------------------------------------------------------------------------------


def test_staff_are_refused_every_sites_page_and_action(app, session, make_user, make_site, make_place):
    osaka = make_site("Osaka")
    safe = make_place("Safe", osaka)
    c = client_for(app, make_user("staff"))
    for url in ("/admin/sites/", "/admin/sites/new", f"/admin/sites/{osaka.id}/edit"):
        assert c.get(url).status_code == 403, url
    assert post(c, "/admin/sites/new", {"name": "Mine", "timezone": "UTC", "day_end": "19:00"}).status_code == 403
    assert post(c, "/admin/sites/places/new", {"site": "", "name": "Mine"}).status_code == 403
    assert post(c, f"/admin/sites/places/{safe.id}/rename", {"name": "Mine"}).status_code == 403
    assert post(c, f"/admin/sites/places/{safe.id}/retire").status_code == 403
    assert app.test_client().get("/admin/sites/").status_code == 302  # not signed in: to the sign-in page
    reread(session)
    assert [(p.name, p.retired_at) for p in session.scalars(select(StoragePlace))] == [("Safe", None)]
    assert session.scalars(select(Site.name)).all() == ["Osaka"]


def test_the_desk_reads_the_sites_page_but_changes_nothing(app, session, make_user, make_site, make_place):
    osaka = make_site("Osaka", timezone="Asia/Tokyo", desk_emails="desk-osaka@example.com")
    safe = make_place("Safe", osaka)
    c = client_for(app, make_user("security"))
    page = c.get("/admin/sites/").get_data(as_text=True)
    assert "Osaka" in page and "desk-osaka@example.com" in page and "Safe" in page
    assert "Add a site" not in page and "Rename" not in page and "<form" not in page.split("<main>")[1]
    assert 'href="/admin/sites/"' in page  # in the navigation
    assert c.get("/admin/sites/new").status_code == 403
    assert post(c, f"/admin/sites/places/{safe.id}/retire", page="/admin/sites/").status_code == 403
    assert post(c, f"/admin/sites/{osaka.id}/edit", {"name": "Kobe", "timezone": "UTC", "day_end": "19:00"},
                page="/admin/sites/").status_code == 403
    reread(session)
    assert (session.get(Site, osaka.id).name, session.get(StoragePlace, safe.id).retired_at) == ("Osaka", None)


def test_the_main_office_is_the_first_row_described_by_the_settings(app, admin, make_place):
    app.config.update(TIMEZONE="Asia/Tokyo", DAY_END=time(19, 0), LATE_SWEEPS=[time(0, 0)],
                      DESK_EMAILS="desk@example.com")
    make_place("Cabinet B-2")
    page = client_for(app, admin).get("/admin/sites/").get_data(as_text=True)
    main = page.split('id="site-main"')[1]
    assert "Main office" in main and "Asia/Tokyo" in main and "19:00" in main and "00:00" in main
    assert "desk@example.com" in main and "Cabinet B-2" in main
    assert "/admin/sites/None/edit" not in page and "Edit Main office" not in page


def test_an_admin_adds_and_edits_a_site_and_its_places(app, session, admin):
    c = client_for(app, admin)
    assert 'href="/admin/sites/"' in c.get("/admin/sites/").get_data(as_text=True)
    resp = post(c, "/admin/sites/new", {"name": "Singapore", "timezone": "Asia/Singapore", "day_end": "18:00",
                                        "late_sweeps": "20:00", "desk_emails": "sg-desk@example.com"},
                page="/admin/sites/new")
    assert resp.status_code == 302
    page = c.get(resp.headers["Location"]).get_data(as_text=True)
    assert ("success", "The site Singapore is added.") in flashes(page)
    sg = session.scalar(select(Site).where(Site.name == "Singapore"))
    assert (sg.timezone, sg.day_end, sg.late_sweeps, sg.desk_emails) == (
        "Asia/Singapore", time(18, 0), "20:00", "sg-desk@example.com")

    form = c.get(f"/admin/sites/{sg.id}/edit").get_data(as_text=True)
    assert 'value="Asia/Singapore"' in form and 'value="18:00"' in form and '<datalist id="zones">' in form
    resp = post(c, f"/admin/sites/{sg.id}/edit", {"name": "Singapore", "timezone": "Asia/Singapore",
                                                  "day_end": "19:30", "late_sweeps": "", "desk_emails": ""})
    assert resp.status_code == 302
    reread(session)
    assert (session.get(Site, sg.id).day_end, session.get(Site, sg.id).late_sweeps) == (time(19, 30), None)

    resp = post(c, "/admin/sites/places/new", {"site": str(sg.id), "name": "Server room"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"#site-{sg.id}")
    resp = post(c, "/admin/sites/places/new", {"site": "", "name": "金庫"})
    assert resp.headers["Location"].endswith("#site-main")
    reread(session)
    room = session.scalar(select(StoragePlace).where(StoragePlace.name == "Server room"))
    vault = session.scalar(select(StoragePlace).where(StoragePlace.name == "金庫"))
    assert (room.site_id, vault.site_id) == (sg.id, None)
    post(c, f"/admin/sites/places/{room.id}/rename", {"name": "Server room 2"})
    resp = post(c, f"/admin/sites/places/{vault.id}/retire")
    page = c.get(resp.headers["Location"]).get_data(as_text=True)
    assert ("success", "The storage place 金庫 is retired; it takes no new items.") in flashes(page)
    reread(session)
    assert session.get(StoragePlace, room.id).name == "Server room 2"
    assert session.get(StoragePlace, vault.id).retired_at is not None
    assert [e.actor_id for e in events(session) if e.action.startswith(("site_", "place_"))] == [admin.id] * 6


def test_a_bad_site_is_shown_at_its_field_and_nothing_is_saved(app, session, admin, make_site):
    make_site("Osaka")
    c = client_for(app, admin)
    resp = post(c, "/admin/sites/new", {"name": "Kobe", "timezone": "Asia/Kobe", "day_end": "19:00"},
                page="/admin/sites/new")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert 'id="timezone-error"' in page and "Asia/Kobe is not a time zone" in page
    resp = post(c, "/admin/sites/new", {"name": "Osaka", "timezone": "Asia/Tokyo", "day_end": "19:00"},
                page="/admin/sites/new")
    assert resp.status_code == 400 and "There is already a site called Osaka." in resp.get_data(as_text=True)
    resp = post(c, "/admin/sites/places/new", {"site": "", "name": ""})
    assert [cat for cat, _ in flashes(c.get(resp.headers["Location"]))] == ["error"]
    assert session.scalars(select(Site.name)).all() == ["Osaka"] and count(session, StoragePlace) == 0
    assert c.post("/admin/sites/new", data={"name": "No token", "timezone": "UTC", "day_end": "19:00"}).status_code == 400


def test_the_sites_page_speaks_japanese(app, make_user, make_site, make_place):
    make_place("金庫", make_site("大阪支店"))
    c = client_for(app, make_user("admin"))
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    page = c.get("/admin/sites/").get_data(as_text=True)
    assert "拠点と保管場所" in page and "本社" in page and "大阪支店" in page and "金庫" in page
    assert "保管場所を追加" in page and "名称を変更" in page and "使用を終了" in page
    resp = post(c, "/admin/sites/new", {"name": "名古屋支店", "timezone": "Asia/Tokyo", "day_end": "7時"},
                page="/admin/sites/new")
    assert "終業時刻 は 19:00 のような時刻（HH:MM）で入力してください。" in resp.get_data(as_text=True)
    form = c.get("/admin/sites/new").get_data(as_text=True)
    assert "タイムゾーン" in form and "終業時刻" in form


# --- the item and user forms, the item list -----------------------------------------------------------------------


def test_the_item_form_offers_a_site_only_when_there_are_sites(app, session, admin, make_place, make_site):
    c = client_for(app, admin)
    make_place("Cabinet")
    form = c.get("/admin/items/new").get_data(as_text=True)
    assert 'name="site"' not in form and 'name="home_place"' in form and "<optgroup" not in form
    make_place("Safe", make_site("Osaka"))
    make_place("Vault", make_site("Fukuoka"))
    form = c.get("/admin/items/new").get_data(as_text=True)
    assert 'name="site"' in form
    groups = re.findall(r'<optgroup label="([^"]+)">', form)
    assert groups == ["Main office", "Fukuoka", "Osaka"]  # the main office first, then by name


def test_an_item_registered_at_a_place_shows_it_and_the_list_filters_by_site_and_place(app, session, admin,
                                                                                      make_site, make_place,
                                                                                      make_item):
    osaka = make_site("Osaka")
    safe = make_place("Safe O", osaka)
    other = make_item(name="Tokyo laptop", home_place_id=str(make_place("Cabinet T").id))
    c = client_for(app, admin)
    resp = post(c, "/admin/items/new", {"kind": "usb", "name": "Osaka stick", "data_class": "personal", "site": "",
                                        "home_place": str(safe.id)}, page="/admin/items/new")
    assert resp.status_code == 302
    item = session.scalar(select(Item).where(Item.name == "Osaka stick"))
    assert (item.site_id, item.home_place_id) == (osaka.id, safe.id)
    page = c.get(resp.headers["Location"]).get_data(as_text=True)
    assert "<dd>Osaka</dd>" in page and "<dd>Safe O</dd>" in page
    by_site = c.get(f"/admin/items/?site={osaka.id}").get_data(as_text=True)
    assert "Osaka stick" in by_site and "Tokyo laptop" not in by_site
    main = c.get("/admin/items/?site=main").get_data(as_text=True)
    assert "Tokyo laptop" in main and "Osaka stick" not in main
    by_place = c.get(f"/admin/items/?place={other.home_place_id}").get_data(as_text=True)
    assert "Tokyo laptop" in by_place and "Osaka stick" not in by_place
    edit = c.get(f"/admin/items/{item.asset_tag}/edit").get_data(as_text=True)
    assert f'<option selected value="{safe.id}">' in edit or f'value="{safe.id}" selected' in edit


def test_the_user_form_chooses_a_site_and_the_list_shows_it(app, session, admin, make_user, make_site):
    person = make_user(name="Tan Wei")
    c = client_for(app, admin)
    assert 'name="site"' not in c.get(f"/admin/users/{person.id}/edit").get_data(as_text=True)
    sg = make_site("Singapore")
    form = c.get(f"/admin/users/{person.id}/edit").get_data(as_text=True)
    assert 'name="site"' in form
    resp = post(c, f"/admin/users/{person.id}/edit", {"name": "Tan Wei", "role": "staff", "language": "", "site": str(sg.id)})
    assert resp.status_code == 302
    reread(session)
    assert session.get(User, person.id).site_id == sg.id
    listing = c.get("/admin/users/").get_data(as_text=True)
    assert "<td>Singapore</td>" in listing and "<td>Main office</td>" in listing
    resp = post(c, f"/admin/users/{person.id}/edit", {"name": "Tan Wei", "role": "staff", "language": "", "site": "999"})
    assert resp.status_code == 400 and "Choose a site from the list." in resp.get_data(as_text=True)
    reread(session)
    assert session.get(User, person.id).site_id == sg.id


# --- the CSV import -------------------------------------------------------------------------------------------------


def test_the_csv_import_finds_each_place_at_its_rows_site(session, admin, make_site, make_place):
    osaka = make_site("大阪")
    osaka_safe, main_safe = make_place("金庫", osaka), make_place("金庫")
    text = "種別,名称,拠点,保管場所\nUSBメモリ,大阪の USB,大阪,金庫\nUSBメモリ,本社の USB,,金庫\nノートPC,置き場なし,,\n"
    preview = csv_import.check(session, text)
    assert preview.ok, preview.errors
    ids = csv_import.run(session, NOW, preview, admin)
    session.commit()
    assert [(session.get(Item, i).site_id, session.get(Item, i).home_place_id) for i in ids] == [
        (osaka.id, osaka_safe.id), (None, main_safe.id), (None, None)]


def test_an_unknown_site_or_place_is_an_error_on_its_line_and_nothing_is_imported(session, admin, make_site,
                                                                                 make_place):
    osaka = make_site("Osaka")
    make_place("Safe", osaka)
    retired = make_place("Old cabinet")
    sites.retire_place(session, NOW, retired, actor=None)
    session.commit()
    text = ("kind,name,site,storage_place\nusb,fine,Osaka,Safe\nusb,no site,Kobe,Safe\nusb,not at main,,Safe\n"
            "usb,retired,,Old cabinet\n")
    preview = csv_import.check(session, text)
    assert [(e.line, e.message % e.params) for e in preview.errors] == [
        (3, "There is no site called Kobe."),
        (4, "There is no storage place called Safe at the main office."),
        (5, "The storage place Old cabinet is retired; it takes no new items."),
    ]
    with pytest.raises(csv_import.ImportFailed):
        csv_import.run(session, NOW, preview, admin)
    session.rollback()
    assert count(session, Item) == 0


def test_the_import_page_names_the_bad_row(app, session, admin):
    c = client_for(app, admin)
    data = {"file": (io.BytesIO(b"kind,name,storage_place\nusb,a,\nusb,b,Nowhere\n"), "items.csv"),
            "csrf_token": csrf_token(c, "/admin/items/import")}
    resp = c.post("/admin/items/import", data=data, content_type="multipart/form-data")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "There is no storage place called Nowhere at the main office." in page
    assert count(session, Item) == 0


# --- the records ---------------------------------------------------------------------------------------------------


def _csv_rows(resp) -> list[dict]:
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:] if r]


def test_the_ledger_and_the_registers_show_site_and_place_escaped(app, session, make_user, make_item, make_site,
                                                                  make_place, frozen_clock):
    from tracker.custody import operations as custody

    osaka = make_site("=Osaka")  # a name that a spreadsheet would take for a formula
    safe = make_place("Safe +1", osaka)
    staff, desk = make_user(), make_user("security")
    kept = make_item(Kind.usb, name="Osaka stick", home_place_id=str(safe.id))
    main = make_item(name="Main laptop")
    for item in (kept, main):
        custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=later(hours=4))
    session.commit()
    c = client_for(app, desk)
    ledger = {r["Asset tag"]: r for r in _csv_rows(c.get("/desk/records/ledger.csv?month=2026-06")) if r.get("Asset tag")}
    assert (ledger[kept.asset_tag]["Site"], ledger[kept.asset_tag]["Storage place"]) == ("'=Osaka", "Safe +1")
    assert (ledger[main.asset_tag]["Site"], ledger[main.asset_tag]["Storage place"]) == ("Main office", "")
    media = {r["Asset tag"]: r for r in _csv_rows(c.get("/desk/records/media-register.csv")) if r.get("Asset tag")}
    assert (media[kept.asset_tag]["Site"], media[kept.asset_tag]["Storage place"]) == ("'=Osaka", "Safe +1")
    register_csv = {r["Asset tag"]: r for r in _csv_rows(c.get("/desk/records/register.csv"))}
    assert (register_csv[kept.asset_tag]["Site"], register_csv[kept.asset_tag]["Storage place"]) == (
        "'=Osaka", "Safe +1")
    checkouts = {r["Asset tag"]: r for r in _csv_rows(c.get("/desk/records/checkouts.csv?from=2026-06-01&to=2026-06-30"))}
    assert checkouts[kept.asset_tag]["Site"] == "'=Osaka"
    pdf = c.get("/desk/records/ledger.pdf?month=2026-06")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_the_api_names_an_items_site_and_place(app, session, admin, make_site, make_place, frozen_clock):
    from tracker.accounts import tokens

    osaka = make_site("Osaka")
    safe = make_place("Safe", osaka)
    secret = tokens.create(session, NOW, user=admin, actor=None, name="t", scopes="read,admin", days=30).secret
    session.commit()
    c = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    resp = c.post("/api/v1/items", json={"kind": "usb", "name": "API stick", "site": "Osaka", "storage_place": "Safe"},
                  headers=headers)
    assert resp.status_code == 201, resp.get_json()
    assert (resp.get_json()["site"], resp.get_json()["storage_place"]) == ("Osaka", "Safe")
    item = session.scalar(select(Item).where(Item.name == "API stick"))
    assert (item.site_id, item.home_place_id) == (osaka.id, safe.id)
    resp = c.patch(f"/api/v1/items/{item.asset_tag}", json={"site": None}, headers=headers)
    assert resp.status_code == 200 and (resp.get_json()["site"], resp.get_json()["storage_place"]) == (None, None)
    resp = c.post("/api/v1/items", json={"kind": "usb", "name": "x", "storage_place": "Nowhere"}, headers=headers)
    assert resp.status_code == 422
    assert "There is no storage place called Nowhere at the main office." in resp.get_json()["detail"]


def test_the_trail_and_webhooks_name_the_new_actions_in_both_languages(app):
    from flask_babel import force_locale

    from tracker.i18n import EVENT_LABELS, label
    from tracker.notify import hooks

    actions = ["site_created", "site_updated", "place_created", "place_renamed", "place_retired"]
    assert set(actions) <= set(hooks.EVENT_TYPES)
    with app.test_request_context():
        with force_locale("en"):
            assert [label(EVENT_LABELS, a) for a in actions] == [
                "Site added", "Site changed", "Storage place added", "Storage place renamed", "Storage place retired"]
        with force_locale("ja"):
            assert [label(EVENT_LABELS, a) for a in actions] == [
                "拠点を追加", "拠点を変更", "保管場所を追加", "保管場所の名称を変更", "保管場所の使用を終了"]


@pytest.mark.postgres  # the demo data written through the rules
def test_the_demo_keeps_its_items_in_the_main_offices_places(runner, session):
    from tracker import demo

    assert runner.invoke(args=["demo"]).exit_code == 0
    reread(session)
    assert sorted(session.scalars(select(StoragePlace.name)).all()) == sorted(demo.PLACES)
    assert session.scalars(select(Item.id).where(Item.home_place_id.is_(None))).all() == []
    assert session.scalars(select(Item.id).where(Item.site_id.is_not(None))).all() == []
