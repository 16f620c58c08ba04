"""Departments as records: the rules (unique names after NFKC, a tree of parents, managers, audited changes),
the admin page, and the item and user forms that choose a department from the list."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from tests.helpers import NOW, client_for, count, events, flashes, post, reread
from tracker.errors import InvalidInput
from tracker.items import departments
from tracker.models import Department, Item, User

# --- rules --------------------------------------------------------------------------------------------------------


def test_create_rename_move_and_set_managers_each_leave_an_event(session, make_user):
    boss, deputy = make_user(name="Boss"), make_user(name="Deputy")
    head = departments.create(session, NOW, name="  本社 ", actor=boss)
    sales = departments.create(session, NOW, name="営業部", parent_id=str(head.id), manager_ids=[str(boss.id)],
                               actor=boss)
    assert (head.name, sales.parent, [m.name for m in sales.managers]) == ("本社", head, ["Boss"])
    departments.update(session, NOW, sales, name="営業本部", parent_id="", manager_ids=[boss.id, deputy.id],
                       actor=boss)
    session.commit()
    assert (sales.name, sales.parent_id, [m.name for m in sales.managers]) == ("営業本部", None, ["Boss", "Deputy"])
    actions = [(e.action, json.loads(e.data)) for e in events(session) if e.action.startswith("department_")]
    assert [a for a, _ in actions] == ["department_created", "department_created", "department_renamed",
                                       "department_moved", "department_managers_changed"]
    assert (actions[2][1]["before"], actions[2][1]["after"]) == ("営業部", "営業本部")
    assert (actions[4][1]["before"], actions[4][1]["after"]) == ([boss.id], sorted([boss.id, deputy.id]))


def test_saving_without_a_change_records_nothing(session):
    dept = departments.create(session, NOW, name="HR", actor=None)
    before = len(events(session))
    departments.update(session, NOW, dept, name="HR", parent_id=None, manager_ids=[], actor=None)
    assert len(events(session)) == before


@pytest.mark.parametrize("typed", ["営業部", " 営業部", "ＨＲ"])
def test_a_name_in_use_is_refused_even_in_another_spelling(session, typed):
    departments.create(session, NOW, name="営業部", actor=None)
    departments.create(session, NOW, name="HR", actor=None)
    session.commit()
    with pytest.raises(InvalidInput, match="already a department"):
        departments.create(session, NOW, name=typed, actor=None)


def test_a_department_cannot_sit_under_itself_or_its_own(session):
    top = departments.create(session, NOW, name="Top", actor=None)
    mid = departments.create(session, NOW, name="Mid", parent_id=top.id, actor=None)
    low = departments.create(session, NOW, name="Low", parent_id=mid.id, actor=None)
    for parent in (top, low):
        with pytest.raises(InvalidInput, match="under itself"):
            departments.update(session, NOW, top, name="Top", parent_id=parent.id, actor=None)
    assert top.parent_id is None


@pytest.mark.parametrize(("field", "bad"), [("parent_id", "999"), ("parent_id", "x"), ("manager_ids", ["999"])])
def test_unknown_parent_or_manager_is_refused(session, field, bad):
    with pytest.raises(InvalidInput):
        departments.create(session, NOW, name="New", actor=None, **{field: bad})


# --- the admin page -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "security"])
def test_only_admins_see_or_change_departments(app, session, make_user, make_department, role):
    dept = make_department("HR")
    c = client_for(app, make_user(role))
    assert c.get("/admin/departments/").status_code == 403
    assert c.get("/admin/departments/new").status_code == 403
    assert post(c, "/admin/departments/new", {"name": "Mine"}).status_code == 403
    assert post(c, f"/admin/departments/{dept.id}/edit", {"name": "Renamed"}).status_code == 403
    reread(session)
    assert session.scalars(select(Department.name)).all() == ["HR"]


def test_admin_adds_renames_moves_and_sets_managers(app, session, admin, make_user, make_department):
    head = make_department("本社")
    manager = make_user(name="Yamada Hanako")
    c = client_for(app, admin)
    new_form = c.get("/admin/departments/new").get_data(as_text=True)
    assert "Yamada Hanako" not in new_form and 'id="managers-0" list="managers-0-suggestions"' in new_form
    resp = post(c, "/admin/departments/new", {"name": "営業部", "parent": str(head.id), "managers-0": "",
                                               "managers-1": "yamada hanako"})
    assert resp.status_code == 302
    page = c.get(resp.headers["Location"]).get_data(as_text=True)
    assert ("success", "The department 営業部 is added.") in flashes(page)
    assert "Yamada Hanako" in page and "本社" in page
    sales = session.scalar(select(Department).where(Department.name == "営業部"))
    assert (sales.parent_id, [m.id for m in sales.managers]) == (head.id, [manager.id])

    form = html.unescape(c.get(f"/admin/departments/{sales.id}/edit").get_data(as_text=True))
    assert 'value="営業部"' in form and 'id="managers-0" list="managers-0-suggestions"' in form
    assert re.search(rf'id="managers-0"[^>]*value="Yamada Hanako <{manager.email}>"', form)
    resp = post(c, f"/admin/departments/{sales.id}/edit", {"name": "営業本部", "parent": "", "managers-0": ""},
                page=f"/admin/departments/{sales.id}/edit")
    assert resp.status_code == 302
    reread(session)
    sales = session.get(Department, sales.id)
    assert (sales.name, sales.parent_id, sales.managers) == ("営業本部", None, [])
    assert [e.actor_id for e in events(session) if e.action.startswith("department_")][1:] == [admin.id] * 4


def test_a_manager_who_is_no_one_or_two_is_refused_at_their_field(app, session, admin, make_user, make_department):
    sales = make_department("Sales")
    make_user(name="Ken Mori"), make_user(name="Ken Mori")
    one = make_user(name="Aiko Abe")
    c = client_for(app, admin)
    url = f"/admin/departments/{sales.id}/edit"
    for typed, message in (("Ken Mori", "More than one person is called Ken Mori"),
                           ("Nobody Here", "No one with an active account is called Nobody Here.")):
        resp = post(c, url, {"name": "Sales", "parent": "", "managers-0": one.email, "managers-1": typed}, page=url)
        assert resp.status_code == 400
        error = html.unescape(resp.get_data(as_text=True)).split('id="managers-1-error"')[1].split("</div>")[0]
        assert message in error
        reread(session)
        assert session.get(Department, sales.id).managers == []
    # The same person typed twice is one manager.
    post(c, url, {"name": "Sales", "parent": "", "managers-0": one.email, "managers-1": "aiko abe"}, page=url)
    reread(session)
    assert [m.id for m in session.get(Department, sales.id).managers] == [one.id]


def test_a_duplicate_name_is_refused_and_changes_nothing(app, session, admin, make_department):
    make_department("HR")
    other = make_department("Legal")
    c = client_for(app, admin)
    resp = post(c, f"/admin/departments/{other.id}/edit", {"name": "HR"})
    assert resp.status_code == 400
    assert "There is already a department called HR." in resp.get_data(as_text=True)
    reread(session)
    assert session.get(Department, other.id).name == "Legal"


def test_the_department_page_needs_the_csrf_token(app, session, admin):
    c = client_for(app, admin)
    c.get("/admin/departments/new")
    assert c.post("/admin/departments/new", data={"name": "No token"}).status_code == 400
    assert count(session, Department) == 0


# --- the item and user forms --------------------------------------------------------------------------------------


def test_the_item_form_offers_the_departments_and_refuses_an_unknown_id(app, session, admin, make_item,
                                                                       make_department):
    sales, hr = make_department("営業部"), make_department("HR")
    item = make_item(name="Laptop", department="営業部")
    c = client_for(app, admin)
    url = f"/admin/items/{item.asset_tag}/edit"
    form = c.get(url).get_data(as_text=True)
    assert f'<option selected value="{sales.id}">営業部</option>' in form and f'value="{hr.id}">HR</option>' in form
    fields = {"asset_tag": item.asset_tag, "kind": "laptop", "name": "Laptop", "data_class": "personal"}
    refused = post(c, url, {**fields, "department": "99999"}, page=url)
    assert refused.status_code == 400
    assert ("error", "Choose a department from the list.") in flashes(refused)
    reread(session)
    assert session.get(Item, item.id).department == "営業部"
    assert post(c, url, {**fields, "department": str(hr.id)}, page=url).status_code == 302
    reread(session)
    assert session.get(Item, item.id).department == "HR"


def test_the_item_form_in_japanese_says_so_in_japanese(app, session, make_user, make_item):
    item = make_item(name="Laptop")
    c = client_for(app, make_user("admin", language="ja"))
    url = f"/admin/items/{item.asset_tag}/edit"
    refused = post(c, url, {"asset_tag": item.asset_tag, "kind": "laptop", "name": "Laptop", "data_class": "none",
                            "department": "12345"}, page=url)
    assert refused.status_code == 400
    assert ("error", "部署は一覧から選んでください。") in flashes(refused)


def test_the_user_form_sets_the_department_and_refuses_an_unknown_id(app, session, admin, make_user,
                                                                     make_department):
    hr = make_department("HR")
    user = make_user(name="Sato")
    c = client_for(app, admin)
    url = f"/admin/users/{user.id}/edit"
    assert f'value="{hr.id}">HR</option>' in c.get(url).get_data(as_text=True)
    fields = {"name": "Sato", "role": "staff", "language": "", "phone": ""}
    refused = post(c, url, {**fields, "department": "4242"}, page=url)
    assert refused.status_code == 400
    assert ("error", "Choose a department from the list.") in flashes(refused)
    reread(session)
    assert session.get(User, user.id).department_id is None
    assert post(c, url, {**fields, "department": str(hr.id)}, page=url).status_code == 302
    reread(session)
    assert session.get(User, user.id).dept.name == "HR"
    listed = c.get("/admin/users/?q=Sato").get_data(as_text=True)
    assert "<td>HR</td>" in listed  # the users list shows the department
    # the user's own account page (language, phone) keeps the department
    own = client_for(app, user)
    assert post(own, "/account", {"language": "ja", "phone": ""}, page="/account").status_code in (200, 302)
    reread(session)
    assert session.get(User, user.id).department_id == hr.id


def test_a_new_user_gets_the_chosen_department(app, session, admin, make_department):
    hr = make_department("HR")
    c = client_for(app, admin)
    resp = post(c, "/admin/users/new", {"email": "new@example.com", "name": "New", "role": "staff", "language": "",
                                         "phone": "", "department": str(hr.id)}, page="/admin/users/new")
    assert resp.status_code == 200
    reread(session)
    assert session.scalar(select(User).where(User.email == "new@example.com")).department_id == hr.id
